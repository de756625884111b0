"""The listing gate: background work waits until no listing runs or waits."""
from __future__ import annotations

import asyncio

from manager.cluster.gates import Foreground


async def test_background_work_waits_out_running_and_waiting_listings():
    gate = Foreground(1)
    order: list[str] = []
    release = asyncio.Event()

    async def listing(name: str) -> None:
        async with gate.hold():
            order.append(name)
            await release.wait()

    async def background() -> None:
        await gate.quiet()
        order.append("inspect")

    tasks = [asyncio.create_task(listing("first")), asyncio.create_task(listing("second"))]
    await asyncio.sleep(0)
    waiting = asyncio.create_task(background())
    await asyncio.sleep(0.05)
    assert order == ["first"]  # the second listing waits for the gate, the inspect for both
    release.set()
    await asyncio.gather(*tasks, waiting)
    assert order == ["first", "second", "inspect"]


async def test_quiet_returns_at_once_when_nothing_lists():
    await asyncio.wait_for(Foreground(4).quiet(), 1)
