"""The console's GC policy: freeze at login, full collections only when we ask, undone on exit."""

from __future__ import annotations

import gc
import weakref

from agent_tui import heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_and_release_restores() -> None:
    before = gc.get_threshold()
    previous = heap.settle()
    try:
        assert previous == before
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] > 10_000  # no automatic full collection
    finally:
        heap.release(previous)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_collect_if_due_runs_a_full_collection_only_when_due() -> None:
    previous = heap.settle()
    try:
        gc.collect()  # counts back to zero
        assert heap.collect_if_due() is False
        probe = _Cycle()
        ref = weakref.ref(probe)
        for _ in range(heap.FULL_EVERY):
            gc.collect(1)  # the cycle is alive: it ends up in the oldest generation
        del probe
        gc.collect(1)  # garbage now, but only a full collection reaches it
        assert ref() is not None
        assert heap.collect_if_due() is True
        assert ref() is None
        assert gc.get_count()[2] == 0
    finally:
        heap.release(previous)
