"""One client request sent to several engines, and their answers merged (built on the fan-out)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

from manager.engine import Engine
from manager.errors import ApiError
from manager.fanout import fan_out

if TYPE_CHECKING:
    from manager.cluster import Cluster
    from manager.routes import Call


async def send_each(call: "Call", engines: Sequence[Engine], *, method: str | None = None,
                    path: str | None = None, body: bytes | None = None,
                    after: Callable[[Engine], Awaitable[None]] | None = None
                    ) -> list[tuple[Engine, object]]:
    """The client's request (query; method, path, body as given or the client's) on every engine at once.

    Each result is the engine's decoded JSON answer, or an ApiError with its status and message.
    `after(engine)` runs on each engine that succeeded (a cache refresh).
    """
    query = call.request.rel_url.raw_query_string
    headers = {"Content-Type": "application/json"} if body is not None else None

    async def one(engine: Engine) -> object:
        resp = await engine.open(method or call.request.method, path or call.path, query=query, data=body,
                                 headers=headers, client_version=call.version)
        async with resp:
            raw = await resp.read()
        try:
            decoded = json.loads(raw) if raw.strip() else None
        except ValueError:
            decoded = {"message": raw.decode(errors="replace").strip()}
        if resp.status >= 300:
            raise ApiError(resp.status, (decoded or {}).get("message", f"status {resp.status}"))
        if after is not None:
            await after(engine)
        return decoded

    return await fan_out(engines, one)


def successes(results: list[tuple[Engine, object]]) -> list:
    """The answers; if all failed, the first error; if some failed, a 500 naming each node."""
    failed = [(e, r) for e, r in results if isinstance(r, Exception)]
    if failed and len(failed) == len(results):
        first = failed[0][1]
        raise ApiError(getattr(first, "status", 500), getattr(first, "message", str(first)))
    if failed:
        raise ApiError(500, "\n".join(f"{e.name}: {getattr(r, 'message', r)}" for e, r in failed))
    return [r for _, r in results]


def node_qualified(cluster: "Cluster", ref: str) -> tuple[Engine | None, str]:
    """`node1/net` -> (node1's engine, "net"); anything else -> (None, ref)."""
    node, sep, rest = ref.partition("/")
    engine = cluster.engine_by_name(node) if sep else None
    return (engine, rest) if engine and rest else (None, ref)


async def prune(call: "Call", deleted_key: str,
                after: Callable[[Engine], Awaitable[None]] | None = None) -> dict:
    """`docker * prune` on every healthy node: the deleted lists joined, space reclaimed summed."""
    deleted, reclaimed = [], 0
    for body in successes(await send_each(call, call.cluster.healthy(), after=after)):
        deleted += (body or {}).get(deleted_key) or []
        reclaimed += (body or {}).get("SpaceReclaimed") or 0
    return {deleted_key: deleted or None, "SpaceReclaimed": reclaimed}
