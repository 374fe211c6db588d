"""The Dagster UI in a real browser, and its GraphQL API.

A module fixture starts the real `dagster-webserver` on the project's
workspace.yaml, on a free localhost port, with DAGSTER_HOME, IGA_RAW_DIR and
IGA_WAREHOUSE in tmp_path; it waits (bounded) until the code location has
loaded and, whatever happens, terminates the server's process group at the
end. Headless Chromium is Debian's `chromium` (scripts/browser-deps.sh
installs it), driven by Playwright through its executable path: no browser
is ever downloaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

import pytest
from conftest import CHROMIUM_ARGS, chromium_or_skip

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# group -> some of its assets (the last part of their keys), as the graph labels them
GROUPS = {
    "raw": ["deliveries", "inventory"],
    "harmonised": ["participations", "outcomes"],
    "marts": ["fct_participation", "outcomes_by_cycle"],
    "warehouse": ["published", "parquet"],
}
READY_TIMEOUT_S = 180

LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
ASSET_NODES = """{ assetNodes {
    assetKey { path } groupName isPartitioned partitionKeys jobNames
    dependencyKeys { path } dependedByKeys { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(base: str, query: str, timeout: float = 30) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it and its code server), then SIGKILL if needed."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is None:
                time.sleep(0.1)
                continue
            try:
                os.killpg(proc.pid, 0)  # anyone left in the group?
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    shutil.copytree(REPO / "data" / "raw", tmp / "raw")
    env = {**os.environ, "DAGSTER_HOME": str(home), "IGA_RAW_DIR": str(tmp / "raw"),
           "IGA_WAREHOUSE": str(tmp / "warehouse" / "iga.duckdb"), "PYTHONWARNINGS": "ignore"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "webserver.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(REPO / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)

    def tail() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster-webserver exited ({proc.returncode}):\n{tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver not ready after {READY_TIMEOUT_S} s:\n{tail()}")
            try:
                entries = graphql(base, LOCATIONS, timeout=5)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                entries = None
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                failed = [e for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
                assert not failed, f"code location failed to load: {failed}\n{tail()}"
                break
            time.sleep(0.5)
        yield base
    finally:
        _stop(proc)
        log.close()


def test_graphql_lineage_from_raw_files_to_the_marts(webserver):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(webserver, ASSET_NODES)["assetNodes"]}

    # groups, and which assets are partitioned by cycle
    for group, assets in GROUPS.items():
        assert any(n["groupName"] == group for n in nodes.values()), group
    assert {k: nodes[k]["groupName"] for k in ("raw/deliveries", "raw/inventory",
                                               "harmonised/participations", "marts/outcomes_by_cycle",
                                               "warehouse/published", "warehouse/parquet")} == {
        "raw/deliveries": "raw", "raw/inventory": "raw", "harmonised/participations": "harmonised",
        "marts/outcomes_by_cycle": "marts", "warehouse/published": "warehouse",
        "warehouse/parquet": "warehouse"}
    assert all(n["groupName"] == "harmonised" for k, n in nodes.items() if k.startswith("harmonised/"))
    cycles = [str(c) for c in range(1, 9)]
    assert nodes["raw/deliveries"]["partitionKeys"] == cycles
    assert all(n["isPartitioned"] and n["partitionKeys"] == cycles
               for k, n in nodes.items() if k.startswith("harmonised/"))
    assert not nodes["marts/outcomes_by_cycle"]["isPartitioned"]
    assert {"build_all", "ingest_cycle"} <= set(nodes["harmonised/participations"]["jobNames"])

    # the edges, seen from both ends, agree
    down = {k: {"/".join(d["path"]) for d in n["dependedByKeys"]} for k, n in nodes.items()}
    up = {k: {"/".join(d["path"]) for d in n["dependencyKeys"]} for k, n in nodes.items()}
    for a, bs in down.items():
        for b in bs:
            assert a in up[b], f"{a} -> {b} is missing from {b}'s dependencies"
    assert up["raw/deliveries"] == set()

    # a path raw/deliveries -> ... -> marts/outcomes_by_cycle, through harmonised
    paths = _paths(down, "raw/deliveries", "marts/outcomes_by_cycle")
    assert paths, "no lineage from raw/deliveries to marts/outcomes_by_cycle"
    assert all(any(k.startswith("harmonised/") for k in p) for p in paths), \
        "a path from the raw files to the marts bypasses harmonised"
    assert ["raw/deliveries", "harmonised/participations", "marts/fct_participation",
            "marts/outcomes_by_cycle"] in paths
    # ... and on to the published warehouse and the Parquet exports
    assert _paths(down, "marts/outcomes_by_cycle", "warehouse/published")
    assert _paths(down, "marts/outcomes_by_cycle", "warehouse/parquet")

    # the checks the UI shows, blocking
    checks = {c["name"]: c["blocking"] for n in nodes.values()
              for c in (n["assetChecksOrError"].get("checks") or [])}
    assert checks.get("pandera_participations") is True
    assert checks.get("gx_outcomes_by_cycle") is True


def settled(locator, timeout_s: float = 10) -> dict:
    """The element's bounding box once it has stopped moving (the graph animates pan and zoom)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        box = locator.bounding_box()
        if box is not None and box == last:
            return box
        assert time.monotonic() < deadline, f"{locator} kept moving (or vanished): {box}"
        last = box
        time.sleep(0.2)


def _paths(down: dict[str, set[str]], start: str, goal: str) -> list[list[str]]:
    """Every simple path from start to goal (the graph is a small DAG)."""
    found, queue = [], deque([[start]])
    while queue:
        path = queue.popleft()
        for nxt in sorted(down.get(path[-1], ())):
            if nxt == goal:
                found.append([*path, nxt])
            elif nxt not in path:
                queue.append([*path, nxt])
    return found


@pytest.mark.browser
def test_the_asset_graph_in_a_browser_shows_the_groups_and_their_assets(webserver, tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    shot = tmp_path / "asset-graph.png"
    width, height = 1600, 1000
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(chromium), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": width, "height": height})
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{webserver}/asset-groups")  # "Lineage": the global asset graph
            graph = page.locator("svg foreignObject")

            def node(label: str):
                return graph.filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first

            # collapsed at first: one node per group
            for group in GROUPS:
                expect(node(group)).to_be_visible(timeout=60_000)
            # the graph's settings: "Expand all groups"
            page.get_by_role("button", name="settings", exact=True).click()
            page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
            page.keyboard.press("Escape")
            any_asset = "|".join(re.escape(a) for assets in GROUPS.values() for a in assets)
            expect(graph.filter(has_text=re.compile(rf"^\s*({any_asset})\s*$")).first).to_be_visible(
                timeout=30_000)
            zoom_out = page.get_by_role("button", name="zoom_out")
            # zoom out until no group is taller than half the window (labels still drawn)
            for _ in range(3):
                tall = [g for g in GROUPS if node(g).count() and settled(node(g))["height"] > height / 2]
                if not tall:
                    break
                zoom_out.click()
                settled(node(tall[0]))
            page.screenshot(path=str(shot))
            # each group in turn (the sidebar centres the graph on it): its assets are drawn
            # inside its box
            for group, assets in GROUPS.items():
                page.get_by_role("button", name=re.compile(rf"(^|\s){group} {group}$")).click()
                box = settled(node(group))
                for asset in assets:
                    expect(node(asset)).to_be_visible(timeout=15_000)
                    a = node(asset).bounding_box()
                    assert (box["x"] - 1 <= a["x"] and a["x"] + a["width"] <= box["x"] + box["width"] + 1
                            and box["y"] - 1 <= a["y"]
                            and a["y"] + a["height"] <= box["y"] + box["height"] + 1), \
                        f"{asset} is not drawn inside group {group}: {a} vs {box}"
        finally:
            browser.close()

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (width, height)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours and len(colours) > 50, "the screenshot is (almost) blank"
