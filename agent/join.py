"""`shoal join` at run time: keep this host's engine registered while it answers, leave on a signal."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import ssl

from agent.engine import EngineProbe
from agent.overlay import overlay_join
from discovery import Discovery
from discovery.etcd import EtcdDiscovery
from shoal.durations import format_duration

log = logging.getLogger(__name__)


async def run_join(discovery: Discovery, addr: str, engine: str, heartbeat: float, ttl: float,
                   delay: float, tls: ssl.SSLContext | None = None, join_overlay: bool = False) -> None:
    """Register until SIGTERM/SIGINT, then leave (revoke) before returning; backend errors propagate.
    With `join_overlay` (etcd discovery only), also put the engine into the swarm-mode overlay."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    joining = None
    if join_overlay and isinstance(discovery, EtcdDiscovery):
        joining = asyncio.create_task(overlay_join(discovery, engine, addr.rsplit(":", 1)[0], heartbeat, tls))
    registration = asyncio.create_task(_register(discovery, addr, engine, heartbeat, ttl, delay, tls))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({registration, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if stop.is_set():
        log.info("agent: stopping addr=%s", addr)
    for task in (registration, joining):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _register(discovery: Discovery, addr: str, engine: str, heartbeat: float, ttl: float,
                    delay: float, tls: ssl.SSLContext | None) -> None:
    if delay > 0:
        wait = random.uniform(0, delay)
        log.info("agent: delaying join addr=%s delay=%s", addr, format_duration(round(wait, 3)))
        await asyncio.sleep(wait)
    async with EngineProbe(engine, timeout=min(heartbeat, 5.0), tls=tls) as probe:
        log.info("agent: joining addr=%s engine=%s heartbeat=%s ttl=%s", addr, engine,
                 format_duration(heartbeat), format_duration(ttl))
        await discovery.register(addr, ttl, heartbeat, alive=probe.alive)
