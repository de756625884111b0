"""Dashboard routes (all GET, read-only): the page, its two assets, and the live stream."""
from __future__ import annotations

import asyncio
import time
from importlib import resources

from aiohttp import web

from manager.api.call import Call
from manager.api.dashboard import view
from manager.api.jsonio import encode
from manager.errors import ApiError

STATIC = resources.files("manager.api.dashboard") / "static"
TYPES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
                "X-Frame-Options": "DENY"}
TICK = 0.25  # how often the stream looks for a changed cluster
STATE_EVERY = 10.0  # the whole picture goes out again at least this often (running times move on)...
REFRESH_SHARE = 0.005  # ...or less often, so that these refreshes cost at most this share of the time
BUILD_SHARE = 0.1  # at most this share of the time goes to building updates for one client


async def root(call: Call) -> web.StreamResponse:
    """`GET /` from a browser goes to the dashboard; anything else finds no page, as on dockerd."""
    if "text/html" in call.request.headers.get("Accept", ""):
        raise web.HTTPFound("/dashboard/")
    raise ApiError(404, "page not found")


async def bare(call: Call) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/dashboard/")


async def page(call: Call) -> web.Response:
    """The page or one of its assets, from the package."""
    name = call.args.get("asset") or "index.html"
    return web.Response(body=(STATIC / name).read_bytes(), content_type=TYPES[name], headers=PAGE_HEADERS)


def _message(kind: str, data: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + encode(data) + b"\n\n"


async def stream(call: Call) -> web.StreamResponse:
    """`GET /dashboard/stream`: server-sent events; `state`, the whole picture, first and then every
    STATE_EVERY seconds or less often on a large cluster (REFRESH_SHARE); `update` whenever nodes or
    placements changed, with only those; `event` for each event of the merged stream (the recent
    ones first)."""
    cluster = call.cluster
    queue = cluster.events.subscribe(since=0)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(call.request)
    shown: dict[str, tuple] = {}
    placements, next_look, next_state = -1, 0.0, 0.0
    try:
        while True:
            began = time.monotonic()
            if began >= next_look:
                versions = view.node_versions(cluster)
                if began >= next_state:
                    message = _message("state", view.state(cluster))
                    next_state = began + max(STATE_EVERY, (time.monotonic() - began) / REFRESH_SHARE)
                    next_look = began + TICK
                else:
                    changed = [addr for addr, version in versions.items() if shown.get(addr) != version]
                    removed = [addr for addr in shown if addr not in versions]
                    new_placements = cluster.placements.count != placements
                    message = _message("update", view.update(cluster, changed, removed, new_placements)) \
                        if changed or removed or new_placements else b""
                    next_look = began + max(TICK, (time.monotonic() - began) / BUILD_SHARE)
                shown, placements = versions, cluster.placements.count
                if message:
                    await resp.write(message)
            try:
                events = [await asyncio.wait_for(queue.get(), TICK)]
            except asyncio.TimeoutError:
                continue
            while not queue.empty():
                events.append(queue.get_nowait())
            for tagged in events:
                if tagged is None:  # the manager is closing
                    return resp
                await resp.write(_message("event", view.event(tagged)))
    finally:
        cluster.events.unsubscribe(queue)
