"""The one fan-out: run a call on many engines at once, as results or as a merged stream."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Sequence, TypeVar

from manager.engine import Engine

T = TypeVar("T")
_DONE = object()


async def fan_out(engines: Sequence[Engine],
                  call: Callable[[Engine], Awaitable[T]]) -> list[tuple[Engine, T | Exception]]:
    """`call(engine)` on every engine concurrently; each result or exception, in engine order."""
    results = await asyncio.gather(*(call(e) for e in engines), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    return list(zip(engines, results))


async def fan_out_stream(engines: Sequence[Engine],
                         stream: Callable[[Engine], AsyncIterator[T]]
                         ) -> AsyncIterator[tuple[Engine, T | Exception]]:
    """Merge `stream(engine)` of every engine: items as they come; a failure arrives as its exception."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(engine: Engine) -> None:
        try:
            async for item in stream(engine):
                await queue.put((engine, item))
        except Exception as exc:  # reported to the consumer, never lost
            await queue.put((engine, exc))
        finally:
            await queue.put((engine, _DONE))

    tasks = [asyncio.create_task(pump(e)) for e in engines]
    try:
        remaining = len(tasks)
        while remaining:
            engine, item = await queue.get()
            if item is _DONE:
                remaining -= 1
            else:
                yield engine, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
