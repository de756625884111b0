"""`shoal manage`: flags (as classic Swarm's), validation, and serving the API."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import uvloop
from aiohttp import web

import discovery
from discovery.addresses import is_host_port
from manager import heap
from manager.api.listener import ApiRunner, TlsSite
from discovery.etcd import STATE_DIR, EtcdDiscovery
from discovery.etcd_store import StoreError
from manager.api.routes import build_app
from manager.cluster.cluster import Cluster
from manager.cluster.engine import EngineOptions
from manager.cluster.leader import Election, Solo
from manager.cluster.reschedule import Rescheduler
from manager.cluster.state import ClusterState, EtcdState, FileState
from manager.cluster.overlay_join import publish_overlay_join
from scheduler import DEFAULT_FILTERS, Scheduler, SchedulerError
from shoal import logs
from shoal.flags import UsageError, add_log_format, duration, integer, key_values
from shoal.tls import TlsConfig, add_tls_flags, tls_from_flags

log = logging.getLogger("shoal.manage")


@dataclass
class ManageConfig:
    hosts: list[str]
    discovery: str
    discovery_opts: dict[str, str]
    heartbeat: float
    scheduler: Scheduler
    engine: EngineOptions
    cors: bool
    advertise: str | None
    create_retry: int = 0
    experimental: bool = False
    tls: TlsConfig | None = None
    replication: bool = False
    replication_ttl: float = 20.0
    data_dir: str = ""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `manage` (alias `m`) to the command line."""
    p = sub.add_parser("manage", aliases=["m"], help="Manage a docker cluster")
    p.add_argument("-H", "--host", action="append", default=None,
                   help="ip:port to listen on (tcp://... or unix://...; repeatable, env SWARM_HOST)")
    p.add_argument("--strategy", default="spread", help="placement strategy: spread, binpack, random")
    p.add_argument("-f", "--filter", action="append", default=None,
                   help=f"filter to use (repeatable; default: {', '.join(DEFAULT_FILTERS)})")
    p.add_argument("--engine-refresh-min-interval", default="30s")
    p.add_argument("--engine-refresh-max-interval", default="60s")
    p.add_argument("--engine-failure-retry", type=int, default=3)
    p.add_argument("--engine-pull-stall-timeout", default="60s",
                   help="end a pull (docker pull, or run of a missing image) that shows no progress for this long")
    p.add_argument("--engine-refresh-retry", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--heartbeat", default="60s", help="period to re-read file:// discovery")
    p.add_argument("--cluster-opt", action="append", default=[],
                   help="swarm.overcommit=0.05, swarm.createretry=0")
    p.add_argument("--discovery-opt", action="append", default=[],
                   help="kv.path=..., kv.cacertfile=..., kv.certfile=..., kv.keyfile=...")
    p.add_argument("--api-enable-cors", "--cors", dest="cors", action="store_true",
                   help="answer CORS preflights and add Access-Control-Allow-* headers")
    p.add_argument("--replication", action="store_true",
                   help="replicate with the other managers on the same etcd discovery: one primary "
                        "(leader election), the others forward to it")
    p.add_argument("--replication-ttl", default="20s", help="leader lock release time on failure")
    add_log_format(p)
    p.add_argument("--advertise", "--addr", default=os.environ.get("SWARM_ADVERTISE"),
                   help="host:port other managers reach this one at (env SWARM_ADVERTISE; used with "
                        "--replication)")
    p.add_argument("--data-dir", default=os.environ.get("SHOAL_DATA_DIR", str(Path.home() / ".shoal")),
                   help="where the cluster state file lives with nodes:// and file:// discovery "
                        "(node availability and labels, rescheduling in progress)")
    add_tls_flags(p, "the API and towards the engines")
    p.add_argument("discovery", nargs="?", default=os.environ.get("SWARM_DISCOVERY"),
                   help="nodes://h1:2375,h2:2375 | h1:2375,h2:2375 | file:///path | etcd://h:2379/prefix")
    p.set_defaults(func=run)


def configure(args: argparse.Namespace) -> ManageConfig:
    """Validate the flags the way classic Swarm does; raise UsageError with its messages."""
    if not args.discovery:
        raise UsageError("discovery required to manage a cluster. See 'shoal manage --help'.")
    if args.replication:
        if not args.advertise:
            raise UsageError("--advertise address must be provided when using --leader-election")
        if not args.discovery.startswith("etcd://"):
            raise UsageError("Leader election is only supported with consul, etcd and zookeeper discovery.")
    replication_ttl = duration(args.replication_ttl, "--replication-ttl")
    if replication_ttl <= 0:
        raise UsageError("--replication-ttl should be a positive number")
        raise UsageError("--replication is not supported by Shoal yet")
    tls = tls_from_flags(args)
    if args.advertise and not is_host_port(args.advertise):
        raise UsageError("--advertise should be of the form ip:port or hostname:port")
    refresh_min = duration(args.engine_refresh_min_interval, "--engine-refresh-min-interval")
    refresh_max = duration(args.engine_refresh_max_interval, "--engine-refresh-max-interval")
    pull_stall = duration(args.engine_pull_stall_timeout, "--engine-pull-stall-timeout")
    if pull_stall <= 0:
        raise UsageError("--engine-pull-stall-timeout should be a positive duration")
    if refresh_min <= 0:
        raise UsageError("min refresh interval should be a positive number")
    if refresh_max < refresh_min:
        raise UsageError("max refresh interval cannot be less than min refresh interval")
    if args.engine_failure_retry <= 0:
        raise UsageError("invalid failure retry count")
    if args.engine_refresh_retry != 3:
        raise UsageError("--engine-refresh-retry is deprecated. Use --engine-failure-retry")
    heartbeat = duration(args.heartbeat, "--heartbeat")
    if heartbeat < 1:
        raise UsageError("--heartbeat should be at least one second")
    cluster_opts = key_values(args.cluster_opt, "--cluster-opt")
    unknown = set(cluster_opts) - {"swarm.overcommit", "swarm.createretry"}
    if unknown:
        raise UsageError(f"unsupported cluster option: {sorted(unknown)[0]}")
    try:
        overcommit = float(cluster_opts.get("swarm.overcommit", "0.05"))
    except ValueError:
        raise UsageError(f"invalid swarm.overcommit: {cluster_opts['swarm.overcommit']}") from None
    if overcommit <= -1:
        raise UsageError(f"swarm.overcommit should be larger than -1, {overcommit:f} is invalid")
    create_retry = integer(cluster_opts.get("swarm.createretry", "0"), "swarm.createretry")
    if create_retry < 0:
        raise UsageError(f"swarm.createretry can not be negative, {create_retry} is invalid")
    try:
        scheduler = Scheduler(filters=args.filter, strategy=args.strategy, overcommit=overcommit)
    except SchedulerError as exc:
        raise UsageError(exc.message) from None
    hosts = args.host or os.environ.get("SWARM_HOST", "tcp://127.0.0.1:2375").split(",")
    for host in hosts:
        _listen_target(host)
    return ManageConfig(hosts=hosts, discovery=args.discovery,
                        discovery_opts=key_values(args.discovery_opt, "--discovery-opt"),
                        heartbeat=heartbeat, scheduler=scheduler,
                        engine=EngineOptions(refresh_min, refresh_max, args.engine_failure_retry,
                                             tls=tls.client_context() if tls else None, pull_stall=pull_stall),
                        cors=args.cors, advertise=args.advertise, create_retry=create_retry,
                        replication=args.replication, replication_ttl=replication_ttl, data_dir=args.data_dir,
                        experimental=getattr(args, "experimental", False), tls=tls)


def _listen_target(host: str) -> tuple[str, str | int]:
    """`tcp://h:p`, `h:p`, `:p` or `unix:///path` -> ("tcp", (h, p)) / ("unix", path)."""
    if host.startswith("unix://"):
        return "unix", host[len("unix://"):]
    rest = host.removeprefix("tcp://")
    hostname, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"invalid listen address {host!r}: expected tcp://host:port or unix:///path")
    return "tcp", (hostname or "0.0.0.0", int(port))


def run(args: argparse.Namespace) -> int:
    """Entry point of `shoal manage`."""
    try:
        logs.setup(args)
        config = configure(args)
        source = discovery.from_url(config.discovery, config.discovery_opts, config.heartbeat)
    except (UsageError, discovery.DiscoveryError) as exc:
        print(f"shoal manage: {exc}", file=sys.stderr)
        return 1
    return uvloop.run(serve(config, source))


def state_file(data_dir: str, discovery_url: str) -> Path:
    """The state file for a nodes:// or file:// cluster: one per discovery URL under `data_dir`."""
    digest = hashlib.sha256(discovery_url.encode()).hexdigest()[:16]
    return Path(data_dir) / f"cluster-{digest}.json"


async def serve(config: ManageConfig, source: "discovery.Discovery") -> int:
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


async def _serve(config: ManageConfig, source: "discovery.Discovery", state: ClusterState,
                 leadership: Election | Solo) -> int:
    cluster = Cluster(config.scheduler, config.engine, create_retry=config.create_retry, state=state)
    await cluster.start()
    runner = ApiRunner(build_app(cluster, leadership, cors=config.cors, experimental=config.experimental))
    await runner.setup()
    server_tls = config.tls.server_context() if config.tls else None
    mode = "off" if config.tls is None else "verify" if config.tls.verify else "on"
    for host in config.hosts:
        kind, target = _listen_target(host)
        if kind == "unix":
            site: web.BaseSite = web.UnixSite(runner, target)
        else:
            site = TlsSite(runner, *target, server_tls) if server_tls else web.TCPSite(runner, *target)
        await site.start()
        log.info("listening addr=%s tls=%s", host, mode if kind == "tcp" else "off")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    follow = asyncio.create_task(_follow(source, cluster, config.heartbeat))
    freezer = asyncio.create_task(heap.keep_frozen())
    publisher = asyncio.create_task(publish_overlay_join(cluster, min(config.heartbeat, 10.0)))
    if isinstance(leadership, Election):
        leadership.start()
    rescheduler = Rescheduler(cluster, leadership)
    await stop.wait()
    log.info("shutting down")
    await rescheduler.close()  # before the engines stop: their disconnects are not failures
    await leadership.close()
    for task in (follow, freezer, publisher):
        task.cancel()
    await asyncio.gather(follow, freezer, publisher, return_exceptions=True)
    await runner.cleanup()
    await cluster.close()
    for host in config.hosts:
        kind, target = _listen_target(host)
        if kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(target)
    return 0


async def _follow(source: "discovery.Discovery", cluster: Cluster, retry: float) -> None:
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
