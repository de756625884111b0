"""What the manager answers from its cache: `docker ps` rows, `docker inspect`, `docker info`, version."""
from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import platform
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from manager.api.jsonio import encode, list_chunks, parse_filters
from manager.cluster.cluster import DOMAINS, Cluster
from manager.cluster import overlay
from manager.cluster.changes import PerEngine
from manager.cluster.containers import UNSPECIFIED_IPS, Container, State
from manager.cluster.engine import PENDING, Engine
from manager.cluster.leader import Election, Solo
from manager.cluster.overlay import OverlayView
from manager.cluster.reschedule import pending_summary
from manager.cluster.timefmt import bytes_size, human_duration, next_change, rfc3339
from manager.errors import ApiError
from shoal.version import API_VERSION, MIN_API_VERSION, SERVER_VERSION, VERSION


def status_text(state: State, now: float) -> str:
    """The STATUS column, recomputed from cached state so it never goes stale."""
    return _status(state, now)[0]


def _status(state: State, now: float) -> tuple[str, float]:
    """(STATUS text, the time until which it stays the same)."""
    if state.status == "removing":
        return "Removal In Progress", math.inf
    if state.dead or state.status == "dead":
        return "Dead", math.inf
    if state.restarting:
        base = state.finished or now
        text = f"Restarting ({state.exit_code}) {human_duration(now - base)} ago"
    elif state.running:
        base = state.started or now
        text = "Up " + human_duration(now - base)
        if state.paused:
            text += " (Paused)"
        elif state.health == "starting":
            text += " (health: starting)"
        elif state.health in ("healthy", "unhealthy"):
            text += f" ({state.health})"
    elif state.started is None:
        return "Created", math.inf
    else:
        base = state.finished or now
        text = f"Exited ({state.exit_code}) {human_duration(now - base)} ago"
    return text, base + next_change(now - base)


# ---- docker ps ---------------------------------------------------------------------------------
def _truthy(value: str | None) -> bool:
    return (value or "").lower() not in ("", "0", "no", "false", "none")


PS_FILTERS = ("id", "name", "label", "status", "node", "exited", "health", "ancestor", "network",
              "volume", "before", "since", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
PS_ROWS = 100  # `ps` rows per write (about 60 KiB)
HOST_DOWN = b',"Status":"Host Down"}'


def list_containers(cluster: Cluster, query) -> Iterator[bytes]:
    """`GET /containers/json` from the cache: all nodes, filters, order and limits like dockerd.

    Filters are checked (and a bad one raised) before this returns; the answer is then produced in
    chunks of JSON text assembled from per-container pre-encoded rows, so a 30,000-row answer is
    never built whole.
    """
    filters = parse_filters(query.get("filters"))
    for key in filters:
        if key not in PS_FILTERS:
            raise ApiError(400, f"invalid filter '{key}'")
    for status in filters.get("status", []):
        if status not in STATUSES:
            raise ApiError(400, f"invalid filter 'status={status}'")
    limit = _limit(query.get("limit"))
    everything = _truthy(query.get("all")) or limit > 0 or "exited" in filters or any(
        s != "running" for s in filters.get("status", []))
    checks = _checks(filters)
    rows = cluster.newest_first(running_only=not everything)
    if checks:
        rows = [ec for ec in rows if all(check(*ec) for check in checks)]
    rows = _window(rows, filters, cluster)
    if limit > 0:
        rows = rows[:limit]
    return _ps_chunks(rows, time.time())


def _ps_chunks(rows: list[tuple[Engine, Container]], now: float) -> Iterator[bytes]:
    """The JSON list, PS_ROWS rows at a time (one chunk when it is short)."""
    return list_chunks(rows, lambda row: row[1].summary + (_status_json(row[1], now) if row[0].healthy
                                                            else HOST_DOWN), PS_ROWS)


def _limit(value: str | None) -> int:
    """The `limit` parameter of `docker ps -n` (-1 when absent)."""
    if not value:
        return -1
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise ApiError(400, f"invalid value for limit: {value[:50]!r}: expected an integer")
    return int(value)




def _status_json(c: Container, now: float) -> bytes:
    """`,"Status":"Up 2 hours"}`, re-rendered only when the text changes."""
    memo = c.status_memo
    if memo and memo[0] <= now < memo[1]:
        return memo[2]
    text, until = _status(c.state, now)
    memo[:] = [now, until, b',"Status":' + json.dumps(text).encode() + b"}"]
    return memo[2]


ContainerCheck = Callable[[Engine, Container], bool]


def _on_network(engine: Engine, c: Container, ref: str) -> bool:
    """`ps --filter network=`: a network name or ID prefix, or `node/name` (on that node)."""
    def joined(name: str) -> bool:
        return any(name == net or bool(name) and net_id.startswith(name) for net, net_id in c.networks)

    node, sep, name = ref.partition("/")
    return (bool(sep) and node in (engine.name, engine.id) and joined(name)) or joined(ref)


def _checks(filters: dict[str, list[str]]) -> list[ContainerCheck]:
    """One predicate per filter key: label values must all hold (dockerd's rule), others any."""
    def label_matches(c: Container, v: str) -> bool:
        key, eq, value = v.partition("=")
        return c.labels.get(key) == value if eq else key in c.labels

    one: dict[str, Callable[[Engine, Container, str], bool]] = {
        "id": lambda e, c, v: c.id.startswith(v),
        "name": lambda e, c, v: bool(re.search(v, c.name) or re.search(v, f"{e.name}/{c.name}")),
        "status": lambda e, c, v: c.state.status == v,
        "node": lambda e, c, v: v in (e.name, e.id, e.addr),
        "exited": lambda e, c, v: not c.state.running and str(c.state.exit_code) == v,
        "health": lambda e, c, v: (c.state.health or "none") == v,
        "ancestor": lambda e, c, v: c.image == v or c.image_id.startswith(v),
        "network": _on_network,
        "volume": lambda e, c, v: any(v in mount for mount in c.mounts),
        "is-task": lambda e, c, v: ("com.docker.swarm.task" in c.labels) == _truthy(v),
    }
    checks: list[ContainerCheck] = []
    for key, values in filters.items():
        if not values:
            continue
        if key == "label":
            checks.append(lambda e, c, vs=values: all(label_matches(c, v) for v in vs))
        elif key in one:
            checks.append(lambda e, c, vs=values, f=one[key]: any(f(e, c, v) for v in vs))
    return checks


def _window(rows: list, filters: dict[str, list[str]], cluster: Cluster) -> list:
    """`before` / `since`: containers created before / after the one named."""
    for key in ("before", "since"):
        for ref in filters.get(key, []):
            _, pivot = cluster.find_container(ref, healthy_only=False)
            keep = (lambda c: c.created < pivot.created) if key == "before" \
                else (lambda c: c.created > pivot.created)
            rows = [(e, c) for e, c in rows if keep(c)]
    return rows


# ---- docker inspect ----------------------------------------------------------------------------
def node_json(engine: Engine) -> dict:
    """Classic Swarm's `Node` object in inspect output."""
    return {"ID": engine.id, "IP": engine.ip, "Addr": engine.addr, "Name": engine.name,
            "Cpus": engine.cpus, "Memory": engine.memory, "Labels": engine.all_labels}


def inspect_json(engine: Engine, container: Container) -> bytes | None:
    """`docker inspect` of a cached container, plus `Node`, ports shown at the node's address (None
    while it has only been listed). The last few renderings are kept: a record never changes, and
    a client that inspects a container tends to do it again."""
    return _inspect_json(engine, container, engine.generation) if container.inspected is not None else None


@functools.lru_cache(maxsize=256)
def _inspect_json(engine: Engine, container: Container, generation: int) -> bytes:
    body = container.inspect()
    for bindings in ((body.get("NetworkSettings") or {}).get("Ports") or {}).values():
        for b in bindings or []:
            if b.get("HostIp") in UNSPECIFIED_IPS:
                b["HostIp"] = engine.ip
    body["Node"] = node_json(engine)
    return json.dumps(body).encode() + b"\n"


# ---- docker info -------------------------------------------------------------------------------
def _node_rows(cluster: Cluster, engine: Engine, view: OverlayView) -> bytes:
    """An engine's rows as JSON list items (`["  └ ID","..."],...`), rebuilt only when what they
    show has changed. A refresh (every 30-60 s on each engine: about 110 a second at 5,000) changes
    the UpdatedAt row alone: the rows above it are kept."""
    domain = view.domain_of(engine)
    head = engine.derived("info rows",
                          lambda e: encode(_build_node_rows(cluster, e, view, overlay.role(e, domain)))[1:-1],
                          engine.state, engine.error, domain)
    tail = engine.derived("info updated", lambda e: encode([["  └ UpdatedAt", rfc3339(e.updated_at)],
                                                             ["  └ ServerVersion", e.version]])[1:-1],
                          engine.updated_at)
    return head + b"," + tail


def _build_node_rows(cluster: Cluster, engine: Engine, view: OverlayView, multihost: str) -> list[list[str]]:
    scheduler = cluster.scheduler
    node = cluster.node(engine, view)
    total, running, paused, stopped = engine.containers.counts()
    containers = f"{total} ({running} Running, {paused} Paused, {stopped} Stopped)" \
        if engine.healthy else str(total)
    rows = [
        [f" {engine.name or '(unknown)'}", engine.addr],
        ["  └ ID", engine.id],
        ["  └ Status", engine.state],
        ["  └ Containers", containers],
        ["  └ Reserved CPUs", f"{node.used_cpus:g} / {scheduler.total_cpus(node):g}"],
        ["  └ Reserved Memory",
         f"{bytes_size(node.used_memory)} / {bytes_size(scheduler.total_memory(node))}"],
        ["  └ Labels", ", ".join(f"{k}={v}" for k, v in sorted(engine.all_labels.items()))],
        ["  └ Multi-host networking", multihost],
    ]
    if engine.availability != "active":
        rows.append(["  └ Availability", engine.availability])
    if engine.error:
        rows.append(["  └ Error", engine.error])
    return rows  # UpdatedAt and ServerVersion follow (_node_rows)


def role_rows(leadership: Election | Solo) -> list[list[str]]:
    """`Role: primary` (with `Replicas:` when replicated), or `Role: replica` and `Primary:`."""
    if leadership.is_primary:
        rows = [["Role", "primary"]]
        if leadership.replicated:
            rows.append(["Replicas", ", ".join(leadership.replicas)])
        return rows
    return [["Role", "replica"], ["Primary", leadership.primary or ""]]


def info(cluster: Cluster, role_rows: list[list[str]], experimental: bool = False) -> list[bytes]:
    """`GET /info` (JSON): cluster totals and classic Swarm's SystemStatus rows, each node's rows
    encoded once per change of that node, and all of them joined once per change of any node."""
    moves = cluster.state.items("reschedule")
    nodes = _info_nodes(cluster, moves) if moves else cluster.view("info", InfoMemo).current(cluster).nodes
    status = role_rows + [
        ["Strategy", cluster.scheduler.strategy_name],
        ["Filters", ", ".join(cluster.scheduler.filter_names)],
        ["Multi-host networking", nodes.multihost],
        ["Nodes", str(nodes.count)],
    ]
    uname = platform.uname()
    body = {
        "ID": "", "Containers": nodes.total, "ContainersRunning": nodes.running, "ContainersPaused": nodes.paused,
        "ContainersStopped": nodes.stopped, "Images": nodes.images,
        "Driver": "", "DriverStatus": None, "SystemStatus": status,
        "Plugins": {"Volume": [], "Network": [], "Authorization": None, "Log": []},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "IPv4Forwarding": True, "BridgeNfIptables": True,
        "BridgeNfIp6tables": True, "OomKillDisable": True, "Debug": False,
        "NFd": 0, "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "NEventsListener": cluster.events.listeners, "KernelVersion": uname.release,
        "OperatingSystem": "linux", "OSType": "linux", "Architecture": uname.machine,
        "NCPU": nodes.cpus, "MemTotal": nodes.memory,
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": experimental,
        "ServerVersion": SERVER_VERSION, "DockerRootDir": "",
        "HttpProxy": os.environ.get("HTTP_PROXY", ""), "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": False, "Warnings": None,
    }
    status_json = encode(status)
    head, _, tail = encode(body).partition(b'"SystemStatus":' + status_json)
    return [head + b'"SystemStatus":[' + status_json[1:-1], *nodes.rows, b"]" + tail + b"\n"]


KEEP_UP_SLICE = 64  # engines whose `docker info` rows keep_up takes again before it lets others run


async def keep_up(cluster: Cluster) -> None:
    """Bring the nodes' part of `docker info` up to date (called every second: the engines changed
    since, not all of them at the next `docker info` after a busy spell), KEEP_UP_SLICE engines at a
    time: at 5,000 engines under a stream of placements some 200 engines a second change, 15-20 ms
    in one piece, which a create waited for."""
    while cluster.view("info", InfoMemo).current(cluster, KEEP_UP_SLICE).behind:
        await asyncio.sleep(0)


@dataclass(frozen=True)
class InfoNodes:
    """What `docker info` says of the nodes: totals, and their SystemStatus rows as JSON list items
    (each after a comma), in blocks of the rows of INFO_BLOCK nodes (the answer is written block by
    block: at 5,000 nodes it is megabytes, never joined in one piece)."""

    count: int
    total: int
    running: int
    paused: int
    stopped: int
    images: int
    cpus: int
    memory: int
    multihost: str
    rows: tuple[bytes, ...]


def _info_nodes(cluster: Cluster, moves: dict[str, dict]) -> InfoNodes:
    """Everything built anew, with the rows of containers waiting to be rescheduled."""
    engines, view = cluster.listed_engines(), cluster.overlay()
    parts = []
    for engine in engines:
        parts.append(_node_part(cluster, engine, view))
        waiting = pending_summary(moves, (engine.id,)) if engine.id else ""
        if waiting:
            parts.append((b"," + encode(["  └ Rescheduling", waiting]), ZERO_STATS))
    unlisted = {r["from_node"] for r in moves.values()} - {e.id for e in cluster.validated()}
    if unlisted and (waiting := pending_summary(moves, unlisted, named=True)):  # gone, or not answering
        parts.append((b"," + encode(["Rescheduling off nodes not connected", waiting]), ZERO_STATS))
    return _nodes(cluster, view, (b"".join(p[0] for p in parts),), map(sum, zip(ZERO_STATS, *(p[1] for p in parts))))


def _nodes(cluster: Cluster, view: OverlayView, rows: tuple[bytes, ...], totals: Iterable[float]) -> InfoNodes:
    total, running, paused, stopped, images, cpus, memory = totals
    return InfoNodes(
        count=len(cluster.engines), total=total, running=running, paused=paused, stopped=stopped,
        images=images, cpus=int(cpus), memory=int(memory),
        multihost=cluster.view("overlay summary", lambda: overlay.summary(view, cluster.validated()), *DOMAINS),
        rows=rows)


class InfoMemo:
    """The nodes' part of `docker info` for one membership, brought up to date from the engines that
    changed since (manager.cluster.changes), not by a walk over all of them; rebuilt whole when the
    order of the engines or the overlay view changed, or too much happened since."""

    def __init__(self) -> None:
        self.parts: PerEngine[tuple[bytes, tuple]] = PerEngine()  # each engine's rows and stats
        self.blocks: list[bytes] = []  # the rows of parts[k * INFO_BLOCK:(k + 1) * INFO_BLOCK] joined
        self.totals = list(ZERO_STATS)
        self.nodes: InfoNodes | None = None

    @property
    def behind(self) -> bool:
        """Whether engines that changed are still to be taken again (a `limit` was reached)."""
        return bool(self.parts.behind)

    def current(self, cluster: Cluster, limit: int | None = None) -> "InfoMemo":
        """Up to date (with `limit`, at most that many changed engines taken again: see `behind`);
        `nodes` is what `docker info` shows of them."""
        engines, view = cluster.listed_engines(), cluster.overlay()
        changed = self.parts.update(engines, (view,), lambda e: _node_part(cluster, e, view), limit)
        parts = self.parts.values
        if changed is None:
            self.totals = [sum(column) for column in zip(ZERO_STATS, *(stats for _, stats in parts))]
            starts: Iterable[int] = range(0, len(parts), INFO_BLOCK)
            self.blocks = [b""] * len(starts)
        elif not changed and self.nodes is not None:
            return self
        else:
            starts = set()
            for i, (_, old_stats) in changed:
                self.totals = [t - old + new for t, old, new in zip(self.totals, old_stats, parts[i][1])]
                starts.add(i - i % INFO_BLOCK)
        for start in starts:
            self.blocks[start // INFO_BLOCK] = b"".join([row for row, _ in parts[start:start + INFO_BLOCK]])
        self.nodes = _nodes(cluster, view, tuple(self.blocks), self.totals)
        return self


ZERO_STATS = (0, 0, 0, 0, 0, 0, 0)
INFO_BLOCK = 16  # nodes whose `docker info` rows are joined and written together


def _node_part(cluster: Cluster, engine: Engine, view: OverlayView) -> tuple[bytes, tuple]:
    """An engine's rows (after a comma), and what it adds to the totals: its container counts,
    images, CPUs and memory (nothing until it is validated)."""
    stats = (*engine.containers.counts(), len(engine.images), engine.cpus, engine.memory) \
        if engine.state != PENDING and engine.id else ZERO_STATS
    return b"," + _node_rows(cluster, engine, view), stats


def version(experimental: bool = False) -> dict:
    """`GET /version`: the manager itself, as one component; `Version` is classic-compatible."""
    uname = platform.uname()
    return {
        "Platform": {"Name": "Shoal"},
        "Components": [{"Name": "Shoal", "Version": VERSION,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION}}],
        "Version": SERVER_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": uname.machine, "KernelVersion": uname.release,
        "BuildTime": "", "Experimental": experimental,
    }
