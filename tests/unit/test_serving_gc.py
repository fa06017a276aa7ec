"""The collector settings `certdesk serve` runs with (webapp.serving.tune_gc)."""

from __future__ import annotations

import gc

import pytest

from webapp import serving


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_threshold(restored_gc):
    gc.unfreeze()
    kept = [[], []]  # a container the collector tracks
    serving.tune_gc()
    assert gc.get_threshold() == serving.GC_THRESHOLD
    assert serving.GC_THRESHOLD[0] >= 10 * 700  # far above Python's default
    # What existed before is frozen: no collection walks it any more ...
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())
    # ... while what is made afterwards is collected as usual.
    later = [[], []]
    assert any(obj is later for obj in gc.get_objects())
