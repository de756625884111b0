"""`shoal manage`: flags (as classic Swarm's) and their checks; manager/serve.py serves the API."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import discovery
from discovery.addresses import is_host_port
from manager.cluster.options import EngineOptions
from manager.config import ManageConfig, listen_target
from scheduler import DEFAULT_FILTERS, Scheduler, SchedulerError
from shoal import logs
from shoal.flags import UsageError, add_log_format, duration, integer, key_values
from shoal.tls import add_tls_flags, tls_from_flags


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
    p.add_argument("-c", "--cluster-driver", default="swarm", help="swarm (the only one, as in classic Swarm)")
    p.add_argument("--refresh-on-node-filter", action="store_true",
                   help="accepted for classic Swarm's scripts: the container cache is always event-fed")
    p.add_argument("--container-name-refresh-filter", default="",
                   help="accepted for classic Swarm's scripts: the container cache is always event-fed")
    p.add_argument("--replication", action="store_true",
                   help="replicate with the other managers on the same etcd discovery: one primary "
                        "(leader election), the others forward to it")
    p.add_argument("--replication-ttl", default="20s", help="leader lock release time on failure")
    add_log_format(p)
    p.add_argument("--advertise", "--addr", default=os.environ.get("SWARM_ADVERTISE"),
                   help="host:port other managers reach this one at (env SWARM_ADVERTISE; used with "
                        "--replication)")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="also serve GET /metrics, and nothing else, in plain HTTP here (e.g. 127.0.0.1:9323 "
                        "for a local Prometheus when the API wants client certificates)")
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
    if args.cluster_driver != "swarm":
        raise UsageError(f'unsupported cluster "{args.cluster_driver}"')
    if args.replication:
        if not args.advertise:
            raise UsageError("--advertise address must be provided when using --leader-election")
        if not args.discovery.startswith("etcd://"):
            raise UsageError("Leader election is only supported with consul, etcd and zookeeper discovery.")
    replication_ttl = duration(args.replication_ttl, "--replication-ttl")
    if replication_ttl <= 0:
        raise UsageError("--replication-ttl should be a positive number")
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
    targets = [listen_target(host)[1] for host in hosts]
    if args.metrics_addr is not None:
        kind, target = listen_target(args.metrics_addr)
        if kind != "tcp" or target in targets:
            raise UsageError(f"--metrics-addr should be a host:port of its own (plain HTTP, not one of the -H "
                             f"addresses): {args.metrics_addr}")
    return ManageConfig(hosts=hosts, discovery=args.discovery,
                        discovery_opts=key_values(args.discovery_opt, "--discovery-opt"),
                        heartbeat=heartbeat, scheduler=scheduler,
                        engine=EngineOptions(refresh_min, refresh_max, args.engine_failure_retry,
                                             tls=tls.client_context() if tls else None, pull_stall=pull_stall),
                        cors=args.cors, advertise=args.advertise, create_retry=create_retry,
                        replication=args.replication, replication_ttl=replication_ttl, data_dir=args.data_dir,
                        experimental=getattr(args, "experimental", False), tls=tls,
                        metrics_addr=args.metrics_addr)


def run(args: argparse.Namespace) -> int:
    """Entry point of `shoal manage`."""
    try:
        logs.setup(args)
        config = configure(args)
        source = discovery.from_url(config.discovery, config.discovery_opts, config.heartbeat)
    except (UsageError, discovery.DiscoveryError) as exc:
        print(f"shoal manage: {exc}", file=sys.stderr)
        return 1
    from manager.serve import run_manager  # only now: a flag error is told without loading aiohttp and the cluster
    return run_manager(config, source)
