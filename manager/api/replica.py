"""A replica's answer to everything but ping, version and info: the request forwarded to the primary
through the one proxy (bodies and streams as they come) or the one hijack (attach, exec)."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from manager.api.call import Call
from manager.api.jsonio import read_body
from manager.api.proxy import hijack, is_upgrade, proxy
from manager.cluster.peer import Peer, PrimaryUnreachable
from manager.errors import ApiError

LOCAL = frozenset({"/_ping", "/version", "/info", "/metrics"})  # /metrics: this process's own
EXTRA_WAIT = 5.0  # beyond the TTL: how long a request waits for a primary before a 503


async def _primary(call: Call, deadline: float, not_this: str | None = None) -> str:
    """The primary's address (other than `not_this`, one that just failed), waiting until `deadline`."""
    leadership = call.leadership
    while True:
        addr = await leadership.wait_for_primary(max(0.0, deadline - time.monotonic()))
        if addr and addr != not_this and addr != getattr(leadership, "advertise", None):
            return addr
        if time.monotonic() >= deadline:
            raise ApiError(503, "No elected primary cluster manager: none answered within "
                                f"{EXTRA_WAIT + getattr(leadership, 'ttl', 0):g}s; retry shortly")
        await asyncio.sleep(0.1)


async def forward(call: Call) -> web.StreamResponse:
    """Send the request to the primary. A request with no streamed body is tried again on the next
    primary when the current one cannot be reached (it has died and the lease has not expired yet)."""
    deadline = time.monotonic() + getattr(call.leadership, "ttl", 0) + EXTRA_WAIT
    request = call.request
    upgrade = is_upgrade(request)
    retryable = upgrade or not request.body_exists
    failed: str | None = None
    while True:
        peer = Peer(await _primary(call, deadline, failed), call.cluster.session, call.cluster.options)
        try:
            if upgrade:
                return await hijack(request, peer, call.path, call.version, await read_body(call))
            return await proxy(request, peer, call.path, call.version)
        except PrimaryUnreachable:
            if not retryable or time.monotonic() >= deadline:
                raise
            failed = peer.addr
