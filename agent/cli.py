"""`shoal join`, `shoal list`, `shoal create`: classic Swarm's flags, defaults and error texts."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import uuid

from discovery import Discovery, DiscoveryError, from_url
from discovery.addresses import is_host_port
from shoal import logs
from shoal.flags import UsageError, add_log_format, duration, key_values
from shoal.tls import add_tls_flags, tls_from_flags


def register(sub: argparse._SubParsersAction) -> None:
    """Add `join`, `list` and `create` to the `shoal` command line."""
    join = sub.add_parser("join", aliases=["j"], help="Join a docker cluster (keep this host's engine registered)",
                          description="Register the engine at --advertise in discovery and keep it there "
                                      "while it answers /_ping; leave at once on SIGTERM/SIGINT.")
    add_log_format(join)
    join.add_argument("--advertise", "--addr", default=os.environ.get("SWARM_ADVERTISE", ""),
                      help="address of this host's Docker engine, host:port (env SWARM_ADVERTISE)")
    join.add_argument("--heartbeat", default="60s", help="time between refreshes (default 60s)")
    join.add_argument("--ttl", default="180s", help="expire the registration after this long without refresh "
                                                     "(default 180s)")
    join.add_argument("--delay", default="0s", help="wait a random time in [0, delay) before joining "
                                                     "(default 0s)")
    join.add_argument("--engine", default="", help="engine to health-check: host:port, tcp://, https://, "
                                                    "unix:// (default: the --advertise address)")
    add_tls_flags(join, "the engine health check (as `shoal manage` towards engines)")
    join.add_argument("--overlay-join", action="store_true",
                      help="also join the engine to the cluster's swarm-mode overlay (etcd discovery: "
                           "the manager keeps the join token under the discovery prefix); the host must "
                           "let 2377/tcp, 7946/tcp+udp and 4789/udp through")
    _discovery_args(join)
    join.set_defaults(func=join_cmd)

    lst = sub.add_parser("list", aliases=["l"], help="List nodes in a cluster",
                         description="Print one host:port per line for the engines in discovery.")
    lst.add_argument("--timeout", default="10s", help="give up after this long without an answer (default 10s)")
    _discovery_args(lst)
    lst.set_defaults(func=list_cmd)

    create = sub.add_parser("create", aliases=["c"], help="Create a cluster ID (to use as the etcd prefix)")
    create.set_defaults(func=create_cmd)


def _discovery_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--discovery-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="kv.path, kv.cacertfile, kv.certfile, kv.keyfile (repeatable)")
    parser.add_argument("discovery", nargs="?", default=os.environ.get("SWARM_DISCOVERY", ""),
                        help="etcd://host:port/<prefix>, nodes://…, file://… (env SWARM_DISCOVERY)")


def join_cmd(args: argparse.Namespace) -> int:
    """Run `shoal join` until a signal; exit code."""
    try:
        logs.setup(args)
        _require_discovery(args, "join")
        if not args.advertise:
            raise UsageError("missing mandatory --advertise flag")
        if not is_host_port(args.advertise):
            raise UsageError("--advertise should be of the form ip:port or hostname:port")
        heartbeat, ttl, delay = (_duration(args, flag) for flag in ("heartbeat", "ttl", "delay"))
        if delay < 0:
            raise UsageError("--delay should not be a negative number")
        if heartbeat < 1:
            raise UsageError("--heartbeat should be at least one second")
        if ttl <= heartbeat:
            raise UsageError("--ttl must be strictly superior to the heartbeat value")
        tls = tls_from_flags(args)
        if args.engine.startswith("https://") and tls is None:
            raise UsageError("--engine https://... needs --tls or --tlsverify (and their certificates)")
        if args.overlay_join and not args.discovery.startswith("etcd://"):
            raise UsageError("--overlay-join needs etcd:// discovery (the join token is kept there)")
        discovery = from_url(args.discovery, key_values(args.discovery_opt, "--discovery-opt"), heartbeat)
        from agent.join import run_join  # only now: a flag error is told without loading aiohttp
        asyncio.run(run_join(discovery, args.advertise, args.engine or args.advertise, heartbeat, ttl, delay,
                             tls.client_context() if tls else None, args.overlay_join))
    except (UsageError, DiscoveryError) as err:
        return _fail("join", err)
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    """Print the cluster's engines, one per line; exit code."""
    try:
        logs.setup(args, logging.WARNING)
        _require_discovery(args, "list")
        timeout = _duration(args, "timeout")
        if timeout <= 0:
            raise UsageError("--timeout should be a positive number")
        discovery = from_url(args.discovery, key_values(args.discovery_opt, "--discovery-opt"), timeout)
        addrs = asyncio.run(_first_members(discovery, timeout))
    except (UsageError, DiscoveryError) as err:
        return _fail("list", err)
    if not addrs:
        return _fail("list", "Timed out")
    for addr in sorted(addrs):
        print(addr)
    return 0


def create_cmd(args: argparse.Namespace) -> int:
    """Print a new random cluster ID (32 hex digits)."""
    print(uuid.uuid4().hex)
    return 0


async def _first_members(discovery: Discovery, timeout: float) -> frozenset[str]:
    """The first non-empty membership within `timeout`, else an empty set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout), contextlib.aclosing(discovery.watch()) as updates:
            async for addrs in updates:
                if addrs:
                    return addrs
    return frozenset()


def _fail(command: str, error: Exception | str) -> int:
    """Tell the user what went wrong, as `shoal <command>: <message>`; exit code 1."""
    print(f"shoal {command}: {error}", file=sys.stderr)
    return 1


def _duration(args: argparse.Namespace, flag: str) -> float:
    return duration(getattr(args, flag), f"--{flag}")


def _require_discovery(args: argparse.Namespace, command: str) -> None:
    if not args.discovery:
        raise UsageError(f"discovery required to {command} a cluster. See 'shoal {command} --help'.")

