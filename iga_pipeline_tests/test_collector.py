"""Python's cycle collector kept out of bulk decoding (iga_pipeline/collector.py)."""

from __future__ import annotations

import gc

from rawfiles import astorp_entry, people

from iga_pipeline import collector
from iga_pipeline.sources import providers
from iga_pipeline.sources.common import classify


def test_paused_leaves_the_collector_as_it_found_it():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # not switched on behind a caller's back
    finally:
        gc.enable()


def test_an_astorp_export_is_decoded_without_one_collection(raw, key):
    """30,000 entries are some 100,000 dicts and lists: without the pause the collector ran
    on them over and over (a full collection at 1M cost ~0.7 s per cycle's export)."""
    raw.astorp(5, [astorp_entry(p) for p in people(750)] * 40)  # the adapter keeps repeats
    delivery = classify(raw.root, raw.root / raw.astorp_rel(5))
    collections = []
    during = False

    def note(phase, info):
        if phase == "start" and during:
            collections.append(info["generation"])

    gc.callbacks.append(note)
    try:
        during = True
        out = providers.read_astorp(delivery, key)
        during = False
    finally:
        gc.callbacks.remove(note)
    assert len(out.rows) == 30_000
    # the pandas work after the decode may collect; the decode itself must not
    assert collections.count(2) == 0 and len(collections) < 5, collections
