"""The manager's collector schedule: no automatic full collections; each round collects the young
garbage (cycles too) and freezes the survivors; a full round thaws and collects everything."""
from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from manager import heap


class Cyclic:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_the_task_turns_pythons_full_collections_off(collector, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_EVERY", 60)
    task = asyncio.create_task(heap.keep_frozen())
    await asyncio.sleep(0)
    assert gc.get_threshold()[2] == heap.NEVER
    task.cancel()


def test_young_cycles_go_at_once_frozen_ones_at_the_full_round(collector):
    young = Cyclic()
    young_gone = weakref.ref(young)
    del young
    heap.collect_round(full=False)
    assert young_gone() is None
    old = Cyclic()
    heap.collect_round(full=False)  # survives: frozen
    old_gone = weakref.ref(old)
    del old  # garbage now, but frozen
    heap.collect_round(full=False)
    assert old_gone() is not None
    heap.collect_round(full=True)
    assert old_gone() is None
