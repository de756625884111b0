"""Serving `shoal manage`: the cluster, the API on every -H address, discovery and leadership, until
SIGTERM/SIGINT."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
from pathlib import Path

import uvloop
from aiohttp import web

import discovery
from discovery.etcd import STATE_DIR, EtcdDiscovery
from discovery.etcd_store import StoreError
from manager import heap
from manager.api import render
from manager.api.listener import ApiRunner, TlsSite
from manager.api.routes import build_app
from manager.cluster.changes import CHANGES
from manager.cluster.cluster import Cluster
from manager.cluster.leader import Election, Solo
from manager.cluster.overlay_join import publish_overlay_join
from manager.cluster.reschedule import Rescheduler
from manager.cluster.state import ClusterState, EtcdState, FileState
from manager.config import ManageConfig, listen_target

log = logging.getLogger("shoal.manage")
METRICS_ONLY = frozenset({"/metrics"})
KEEP_UP_EVERY = 1.0  # seconds


def run_manager(config: ManageConfig, source: discovery.Discovery) -> int:
    """Serve until a signal; the exit code."""
    return uvloop.run(serve(config, source))


def state_file(data_dir: str, discovery_url: str) -> Path:
    """The state file for a nodes:// or file:// cluster: one per discovery URL under `data_dir`."""
    digest = hashlib.sha256(discovery_url.encode()).hexdigest()[:16]
    return Path(data_dir) / f"cluster-{digest}.json"


async def serve(config: ManageConfig, source: discovery.Discovery) -> int:
    """Run the API on every -H address until SIGTERM/SIGINT."""
    async with contextlib.AsyncExitStack() as stack:
        state: ClusterState
        leadership: Election | Solo = Solo(config.advertise)
        if isinstance(source, EtcdDiscovery):
            store = await stack.enter_async_context(source.store())
            state = EtcdState(store, source.state_prefix + STATE_DIR)
            await state.start()
            if config.replication:
                leadership = Election(store, source.state_prefix, config.advertise or "", config.replication_ttl)
        else:
            try:
                state = FileState(state_file(config.data_dir, config.discovery))
            except StoreError as exc:
                print(f"shoal manage: {exc}", file=sys.stderr)
                return 1
            log.info("state file path=%s", state.path)
        stack.push_async_callback(state.close)
        return await _serve(config, source, state, leadership)


async def _serve(config: ManageConfig, source: discovery.Discovery, state: ClusterState,
                 leadership: Election | Solo) -> int:
    cluster = Cluster(config.scheduler, config.engine, create_retry=config.create_retry, state=state)
    await cluster.start()
    runner = ApiRunner(build_app(cluster, leadership, cors=config.cors, experimental=config.experimental))
    await runner.setup()
    server_tls = config.tls.server_context() if config.tls else None
    mode = "off" if config.tls is None else "verify" if config.tls.verify else "on"
    for host in config.hosts:
        kind, target = listen_target(host)
        if kind == "unix":
            site: web.BaseSite = web.UnixSite(runner, target)
        else:
            site = TlsSite(runner, *target, server_tls) if server_tls else web.TCPSite(runner, *target)
        await site.start()
        log.info("listening addr=%s tls=%s", host, mode if kind == "tcp" else "off")
    metrics_runner = None
    if config.metrics_addr:
        metrics_runner = ApiRunner(build_app(cluster, leadership, only=METRICS_ONLY))
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, *listen_target(config.metrics_addr)[1]).start()
        log.info("listening addr=%s tls=off serves=/metrics", config.metrics_addr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    freezer = asyncio.create_task(heap.keep_frozen())  # first: it sets the collector up
    warmer = asyncio.create_task(_keep_up(cluster))
    follow = asyncio.create_task(_follow(source, cluster, config.heartbeat))
    publisher = asyncio.create_task(publish_overlay_join(cluster, min(config.heartbeat, 10.0)))
    if isinstance(leadership, Election):
        leadership.start()
    rescheduler = Rescheduler(cluster, leadership)
    await stop.wait()
    log.info("shutting down")
    await rescheduler.close()  # before the engines stop: their disconnects are not failures
    await leadership.close()
    for task in (follow, freezer, warmer, publisher):
        task.cancel()
    await asyncio.gather(follow, freezer, warmer, publisher, return_exceptions=True)
    await runner.cleanup()
    if metrics_runner:
        await metrics_runner.cleanup()
    await cluster.close()
    for host in config.hosts:
        kind, target = listen_target(host)
        if kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(target)
    return 0


async def _keep_up(cluster: Cluster, every: float = KEEP_UP_EVERY) -> None:
    """Every `every` seconds when an engine changed: the scheduler's snapshots and kept keys and the
    nodes' part of `docker info` brought up to date, a few engines at a time, so that the first
    placement or `docker info` after a busy spell (a start, thousands of inspects) does not take
    all 5,000 again."""
    seen = -1
    while True:
        await asyncio.sleep(every)
        if CHANGES.any == seen:
            continue
        seen = CHANGES.any
        try:
            cluster.keep_up()
            await asyncio.sleep(0)  # what waits meanwhile goes first
            await render.keep_up(cluster)
        except Exception:  # a bug must not end the task: the requests do the same work anyway
            log.exception("keeping views up to date failed")


async def _follow(source: discovery.Discovery, cluster: Cluster, retry: float) -> None:
    """Apply every membership change from discovery to the cluster; a failing backend is
    watched again after `retry` seconds (the last membership stays meanwhile)."""
    while True:
        try:
            async for addrs in source.watch():
                log.info("discovery members=%d", len(addrs))
                await cluster.set_members(addrs)
        except Exception as exc:  # the manager keeps serving what it knows
            log.error("discovery watch failed error=%r retry_in=%gs", str(exc) or type(exc).__name__, retry)
        await asyncio.sleep(retry)
