"""The discovery interface: membership only, never Docker."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import AsyncIterator, Protocol

HealthCheck = Callable[[], Awaitable[bool]]


class DiscoveryError(Exception):
    """A bad discovery URL or option, or a backend that cannot do what was asked."""


class Discovery(Protocol):
    """A membership backend chosen by URL scheme."""

    def watch(self) -> AsyncIterator[frozenset[str]]:
        """Yield the full current set of engine addresses, then again after every change."""
        ...

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Keep `addr` registered (refresh every `heartbeat`, expire `ttl` after the last refresh)
        until cancelled, refreshing only while `alive()` answers True; leave at once when cancelled."""
        ...
