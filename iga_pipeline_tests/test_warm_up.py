"""The background imports of `iga-pipeline build` (iga_pipeline/warm_up.py), each in a new Python."""

from __future__ import annotations

import subprocess
import sys

from iga_pipeline import warm_up


def _in_a_fresh_interpreter(code: str) -> str:
    """Run `code` in a new Python (nothing imported yet); what it printed."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_each_step_finds_its_library_imported_once_it_has_waited():
    code = (
        "import sys\n"
        "from iga_pipeline import warm_up\n"
        "assert not any(m in sys.modules for m in warm_up.MODULES)\n"
        "warm_up.wait_for('scipy.stats')  # nothing started: returns at once\n"
        "warm_up.start()\n"
        "for name in warm_up.MODULES:\n"
        "    warm_up.wait_for(name)\n"
        "    assert name in sys.modules, name\n"
        "warm_up.finish(120)\n"
        "assert not warm_up._thread.is_alive()\n"
        "print(sorted(m for m in warm_up.MODULES if m in sys.modules))\n"
    )
    assert _in_a_fresh_interpreter(code) == repr(sorted(warm_up.MODULES))


def test_a_failed_import_never_leaves_a_step_waiting_and_the_others_still_happen():
    code = (
        "import importlib.abc, sys\n"
        "class NoGX(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'great_expectations':\n"
        "            raise ImportError('no GX here')\n"
        "sys.meta_path.insert(0, NoGX())\n"
        "from iga_pipeline import warm_up\n"
        "warm_up.start()\n"
        "warm_up.wait_for('great_expectations')\n"
        "warm_up.finish(120)\n"
        "assert not warm_up._thread.is_alive() and 'great_expectations' not in sys.modules\n"
        "print('scipy.stats' in sys.modules, 'matplotlib.figure' in sys.modules)\n"
    )
    assert _in_a_fresh_interpreter(code) == "True True"  # the marts' and the report's imports happened


def test_a_step_waits_for_its_own_library_alone():
    """wait_for('scipy.stats') returns once scipy.stats is imported, while the report's
    matplotlib is still held back (until the step has gone on, or at most 60 s): the marts'
    step does not wait for the imports of the steps after it."""
    code = (
        "import importlib.abc, sys, threading\n"
        "go, held = threading.Event(), []\n"
        "class HoldMatplotlib(importlib.abc.MetaPathFinder):  # finds nothing itself\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'matplotlib' and threading.current_thread().name == 'warm-up':\n"
        "            held.append(go.wait(60))\n"
        "sys.meta_path.insert(0, HoldMatplotlib())\n"
        "from iga_pipeline import warm_up\n"
        "warm_up.start()\n"
        "warm_up.wait_for('scipy.stats')\n"
        "ready = 'scipy.stats' in sys.modules and 'matplotlib' not in sys.modules\n"
        "go.set()\n"
        "warm_up.finish(120)\n"
        "print(ready, held, all(m in sys.modules for m in warm_up.MODULES))\n"
    )
    assert _in_a_fresh_interpreter(code) == "True [True] True"


def test_a_library_imported_before_the_start_leaves_the_others_to_the_thread():
    """start() does nothing only when every library is imported already; one imported before
    (scipy.stats, say) leaves the others to the thread as usual."""
    code = (
        "import sys\n"
        "import scipy.stats\n"
        "from iga_pipeline import warm_up\n"
        "assert not any(m in sys.modules for m in warm_up.MODULES[1:])\n"
        "warm_up.start()\n"
        "warm_up.finish(120)\n"
        "print(warm_up._thread is not None, all(m in sys.modules for m in warm_up.MODULES))\n"
    )
    assert _in_a_fresh_interpreter(code) == "True True"


def test_the_thread_imports_nothing_of_the_packages_dagster_uses_on_the_main_thread_meanwhile():
    """Great Expectations imports sqlalchemy.orm; made in the thread while Dagster's storage
    queried SQLAlchemy on the main thread, it failed the build now and then (warm_up.FIRST)."""
    code = (
        "import importlib.abc, sys, threading, warnings\n"
        "warnings.filterwarnings('ignore')\n"
        "from dagster import DagsterInstance\n"
        "from iga_pipeline.definitions import defs\n"
        "instance = DagsterInstance.ephemeral()  # what `iga-pipeline build` holds when the ingest starts\n"
        "in_thread = []\n"
        "class Note(importlib.abc.MetaPathFinder):  # who imports what: finds nothing itself\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if threading.current_thread().name == 'warm-up':\n"
        "            in_thread.append(name)\n"
        "sys.meta_path.insert(0, Note())\n"
        "from iga_pipeline import warm_up\n"
        "warm_up.start()\n"
        "warm_up.finish(120)\n"
        "assert all(m in sys.modules for m in warm_up.MODULES) and 'great_expectations' in in_thread\n"
        "print(sorted(m for m in in_thread if m.split('.')[0] in ('sqlalchemy', 'dagster', 'alembic')))\n"
    )
    assert _in_a_fresh_interpreter(code) == "[]"


def test_dagsters_storage_answers_while_the_thread_imports():
    """What failed builds now and then (a review reproduced it every time this way): the
    asset records Dagster's steps ask for, asked for over and over during the warm-up. Each
    call takes 25-50 ms beside the imports (107-210 calls in 5 s, three runs on 2026-12-02;
    CI once made fewer than 100), so 10 only shows that the calls ran beside the thread."""
    code = (
        "import warnings\n"
        "warnings.filterwarnings('ignore')\n"
        "from dagster import AssetKey, DagsterInstance\n"
        "from iga_pipeline.definitions import defs\n"
        "from iga_pipeline import warm_up\n"
        "instance = DagsterInstance.ephemeral()\n"
        "warm_up.start()\n"
        "calls, failed = 0, []\n"
        "while warm_up._thread.is_alive():\n"
        "    try:\n"
        "        instance.get_asset_records([AssetKey(['harmonised', 'participations'])])\n"
        "    except Exception as e:\n"
        "        failed.append(type(e).__name__)\n"
        "    calls += 1\n"
        "print(calls >= 10, sorted(set(failed)))\n"
    )
    assert _in_a_fresh_interpreter(code) == "True []"
