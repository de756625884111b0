"""The one fan-out: a call on many engines at once, as results or as a merged stream; and the client's
request sent to several engines with their answers merged (broadcast)."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Sequence, TypeVar

import orjson

from manager.api.call import After, Call
from manager.api.jsonio import parse_filters
from manager.cluster.engine import HEAD_TIMEOUT, Engine
from manager.errors import ApiError, as_api_error, engine_error

T = TypeVar("T")
_DONE = object()


async def fan_out(engines: Sequence[Engine],
                  call: Callable[[Engine], Awaitable[T]]) -> list[tuple[Engine, T | Exception]]:
    """`call(engine)` on every engine concurrently; each result or exception, in engine order."""
    if len(engines) == 1:  # in this task: no task to start and wait for (a proxied call's common case)
        try:
            return [(engines[0], await call(engines[0]))]
        except Exception as exc:
            return [(engines[0], exc)]
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


class Tee:
    """The client's request body read once and streamed to several engines at once (`body(engine)`
    is what each upload sends), at the pace of the slowest: at most DEPTH chunks per engine are held,
    so a multi-GB `docker load` never sits in memory. An upload that stops is no longer waited for."""

    DEPTH = 4

    def __init__(self, source: AsyncIterator[bytes], engines: Sequence[Engine]) -> None:
        self._source = source
        self._queues: dict[str, asyncio.Queue] = {e.addr: asyncio.Queue(self.DEPTH) for e in engines}

    async def body(self, engine: Engine) -> AsyncIterator[bytes]:
        queue = self._queues[engine.addr]
        try:
            while (chunk := await queue.get()) is not _DONE:
                if isinstance(chunk, Exception):
                    raise chunk
                yield chunk
        finally:
            self._queues.pop(engine.addr, None)
            while not queue.empty():  # a pump waiting on this full queue goes on
                queue.get_nowait()

    async def pump(self) -> None:
        """Read the client's body to the end, handing each chunk to every upload still going."""
        try:
            async for chunk in self._source:
                for addr in list(self._queues):
                    queue = self._queues.get(addr)
                    if queue is not None:
                        await queue.put(chunk)
        except Exception as exc:  # the client went away: every upload is cut short, not completed
            end: object = ConnectionResetError(f"the client's upload stopped: {exc or type(exc).__name__}")
        else:
            end = _DONE
        for queue in list(self._queues.values()):
            await queue.put(end)


async def send_each(call: Call, engines: Sequence[Engine], *, method: str | None = None,
                    path: str | None = None, body: bytes | None = None, query: str | None = None,
                    after: After | None = None) -> list[tuple[Engine, object]]:
    """The client's request (method, path, query, body as given or the client's) on every engine at once.

    Each result is the engine's decoded JSON answer, or an ApiError with its status and message.
    `after(engine, status)` runs on each engine that succeeded (a cache refresh).
    """
    query = call.request.rel_url.raw_query_string if query is None else query

    async def one(engine: Engine) -> object:
        status, raw, _ = await engine.call_raw(method or call.request.method, path or call.path, query=query,
                                               body=body, client_version=call.version, head=HEAD_TIMEOUT)
        try:
            decoded = orjson.loads(raw) if raw.strip() else None
        except ValueError:
            decoded = {"message": raw.decode(errors="replace").strip()}
        if status >= 300:
            raise engine_error(status, decoded or {})
        if after is not None:
            await after(engine, status)
        return decoded

    return await fan_out(engines, one)


def successes(results: list[tuple[Engine, object]]) -> list:
    """The answers; if all failed, the first error; if some failed, a 500 naming each node."""
    failed = [(e, r) for e, r in results if isinstance(r, Exception)]
    if failed and len(failed) == len(results):
        raise as_api_error(failed[0][1])
    if failed:
        raise ApiError(500, "\n".join(f"{e.name}: {as_api_error(r).message}" for e, r in failed))
    return [r for _, r in results]


async def prune(call: Call, deleted_key: str, after: After | None = None) -> dict:
    """`docker * prune` on every healthy node: the deleted lists joined, space reclaimed summed. The
    filters are checked first (a 400 here rather than one per engine); they go on as sent."""
    parse_filters(call.request.query.get("filters"))
    deleted, reclaimed = [], 0
    for body in successes(await send_each(call, call.cluster.healthy(), after=after)):
        deleted += (body or {}).get(deleted_key) or []
        reclaimed += (body or {}).get("SpaceReclaimed") or 0
    return {deleted_key: deleted or None, "SpaceReclaimed": reclaimed}
