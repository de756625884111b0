"""The refresh loop's pause (manager.cluster.engine.Wake): its full length unless set; set during it
or before it, it ends at once; either way it is clear afterwards; and it leaves no timer behind."""
from __future__ import annotations

import asyncio
import time

from manager.cluster.engine import Wake


async def test_a_pause_lasts_its_time_unless_set_and_leaves_nothing_behind():
    wake = Wake()
    began = time.monotonic()
    assert await wake.pause(0.2) is False
    assert time.monotonic() - began >= 0.19
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, wake.set)
    began = time.monotonic()
    assert await wake.pause(30) is True
    assert time.monotonic() - began < 1
    assert not wake.is_set()
    assert [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()] == []


async def test_a_wake_before_the_pause_is_not_lost():
    wake = Wake()
    wake.set()
    assert wake.is_set()
    began = time.monotonic()
    assert await wake.pause(30) is True
    assert time.monotonic() - began < 0.1
    assert await wake.pause(0.05) is False


async def test_a_cancelled_pause_can_be_woken_later_without_error():
    wake = Wake()
    task = asyncio.create_task(wake.pause(30))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    wake.set()  # no waiter any more: remembered for the next pause
    assert await wake.pause(30) is True
