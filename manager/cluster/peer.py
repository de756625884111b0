"""The primary manager as an upstream of the one proxy and the one hijack (replicas forward to it)."""
from __future__ import annotations

import logging
from typing import Any

import aiohttp

from manager.cluster.engine import CONNECTION_ERRORS, HEAD_TIMEOUT, STREAM_TIMEOUT, Addressed, NoAnswer, send
from manager.cluster.options import EngineOptions
from manager.errors import ApiError

log = logging.getLogger("shoal.replica")
SLACK = 10.0  # beyond a deadline: the primary's own deadline towards the engine ends first


class PrimaryUnreachable(ApiError):
    """The primary manager did not answer."""


class Peer(Addressed):
    """Another manager at `addr` (`host:port`); requests keep the client's own API version. The
    manager's TLS client context (the one towards the engines, `options.tls`) is used towards it."""

    def __init__(self, addr: str, session: aiohttp.ClientSession, options: EngineOptions) -> None:
        self.addr = addr
        self.name = f"primary {addr}"
        self.options = options
        self.url = f"{'https' if options.tls else 'http'}://{addr}"
        self.session = session

    def versioned(self, path: str, client_version: str | None = None) -> str:
        """The path as the client sent it: the primary negotiates versions with the engines itself."""
        return f"/v{client_version}{path}" if client_version else path

    async def open(self, method: str, path: str, *, query: str = "", params: Any = None,
                   data: Any = None, headers: Any = None,
                   timeout: aiohttp.ClientTimeout = STREAM_TIMEOUT, head: float | None = HEAD_TIMEOUT,
                   client_version: str | None = None) -> aiohttp.ClientResponse:
        """Send the request to the primary; the open response (caller releases it). Its answer must
        start within `head` (+ SLACK) seconds, as an engine's."""
        url = self.url + self.versioned(path, client_version) + (f"?{query}" if query else "")
        try:
            return await send(self.session, method, url, head=head and head + SLACK, params=params, data=data,
                              headers=headers, timeout=timeout)
        except (NoAnswer, *CONNECTION_ERRORS) as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: BaseException) -> ApiError:
        log.warning("primary unreachable primary=%s error=%r", self.addr, str(exc))
        return PrimaryUnreachable(503, f"Unable to reach primary cluster manager ({self.addr}): "
                                       f"{exc or type(exc).__name__}")
