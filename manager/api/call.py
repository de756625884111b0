"""What a handler is given (`Call`) and returns, and the cache refreshes run after an engine call."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web

from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.cluster.leader import Election, Solo


@dataclass
class Call:
    """One API request as handlers see it."""

    request: web.Request
    cluster: Cluster
    path: str  # without the version prefix
    version: str | None  # the client's `/vX.Y`, if any
    args: dict[str, str] = field(default_factory=dict)
    leadership: Election | Solo = field(default_factory=Solo)
    experimental: bool = False  # `shoal --experimental`: reported by info and version


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
# Run once an engine has answered (engine, status): brings the cache up to date with what changed.
After = Callable[[Engine, int], Awaitable[None]]


def refresh_container(cid: str, action: str = "") -> After:
    """Re-inspect one container into the cache (after Shoal's `action` call on it: see
    Engine.refresh_after)."""
    async def after(engine: Engine, status: int) -> None:
        await engine.refresh_after(cid, action, status)
    return after


def forget_container(cid: str) -> After:
    """Drop a removed container from the cache (when the removal succeeded)."""
    async def after(engine: Engine, status: int) -> None:
        if status < 300:
            engine.forget_container(cid)
    return after


async def refresh_images(engine: Engine, status: int) -> None:
    """Re-list the engine's images."""
    await engine.refresh_images()


async def refresh_networks(engine: Engine, status: int) -> None:
    """Re-list the engine's networks."""
    await engine.refresh_networks()


async def refresh_all(engine: Engine, status: int) -> None:
    """Re-list the engine's containers and images."""
    await engine.refresh_all()
