"""What the manager answers from its cache: `docker ps` rows, `docker inspect`, `docker info`, version."""
from __future__ import annotations

import json
import os
import platform
import re
import socket
import time
from typing import Callable

from manager.api.jsonio import encode, parse_filters
from manager.api.timefmt import bytes_size, human_duration, parse_time, rfc3339
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.cluster.snapshot import node_of
from manager.errors import ApiError
from shoal.version import API_VERSION, MIN_API_VERSION, SERVER_VERSION, VERSION

UNSPECIFIED_IPS = ("", "0.0.0.0", "::")


def state_times(state: dict) -> tuple[float | None, float | None]:
    """(started, finished) unix times of a container state."""
    return parse_time(state.get("StartedAt")), parse_time(state.get("FinishedAt"))


def status_text(state: dict, now: float, times: tuple[float | None, float | None] | None = None) -> str:
    """The STATUS column, recomputed from cached state so it never goes stale."""
    started, finished = times or state_times(state)
    if state.get("Status") == "removing":
        return "Removal In Progress"
    if state.get("Dead") or state.get("Status") == "dead":
        return "Dead"
    if state.get("Restarting"):
        return f"Restarting ({state.get('ExitCode', 0)}) {human_duration(now - (finished or now))} ago"
    if state.get("Running"):
        text = "Up " + human_duration(now - (started or now))
        if state.get("Paused"):
            return text + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return text + " (health: starting)"
        return text + (f" ({health})" if health in ("healthy", "unhealthy") else "")
    if started is None:
        return "Created"
    return f"Exited ({state.get('ExitCode', 0)}) {human_duration(now - (finished or now))} ago"


def _summary_base(engine: Engine, c: dict) -> dict:
    return {
        "Id": c["Id"],
        "Names": ["/" + engine.name + c["Name"]],
        "Image": c["Config"].get("Image", ""),
        "ImageID": c.get("Image", ""),
        "Command": " ".join([c.get("Path", ""), *(c.get("Args") or [])]).strip(),
        "Created": int(parse_time(c.get("Created")) or 0),
        "Ports": _ports(engine, c),
        "Labels": c["Config"].get("Labels") or {},
        "State": c["State"].get("Status", ""),
        "HostConfig": {"NetworkMode": c["HostConfig"].get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": (c.get("NetworkSettings") or {}).get("Networks") or {}},
        "Mounts": [{k: m.get(k) for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode",
                                          "RW", "Propagation") if k in m} for m in c.get("Mounts") or []],
    }


def _ports(engine: Engine, c: dict) -> list[dict]:
    result: list[dict] = []
    for key, bindings in ((c.get("NetworkSettings") or {}).get("Ports") or {}).items():
        number, _, proto = key.partition("/")
        for b in bindings or [None]:
            entry = {"PrivatePort": int(number), "Type": proto or "tcp"}
            if b is not None:
                ip = engine.ip if b.get("HostIp") in UNSPECIFIED_IPS else b["HostIp"]
                entry = {"IP": ip, **entry, "PublicPort": int(b.get("HostPort") or 0)}
            if entry not in result:
                result.append(entry)
    return result


# ---- docker ps ---------------------------------------------------------------------------------
def _truthy(value: str | None) -> bool:
    return (value or "").lower() not in ("", "0", "no", "false", "none")


PS_FILTERS = ("id", "name", "label", "status", "node", "exited", "health", "ancestor", "network",
              "volume", "before", "since", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def list_containers(cluster: Cluster, query) -> bytes:
    """`GET /containers/json` from the cache: all nodes, filters, order and limits like dockerd.

    The answer is JSON text assembled from per-container pre-encoded rows (30,000 containers
    would otherwise spend most of the call in the JSON encoder).
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
    rows = [(e, c) for e, c in cluster.containers()
            if (everything or (c["State"].get("Running") and e.healthy))
            and all(check(e, c) for check in checks)]
    rows.sort(key=lambda ec: ec[1].get("Created", ""), reverse=True)
    rows = _window(rows, filters, cluster)
    if limit > 0:
        rows = rows[:limit]
    now = time.time()
    return b"[" + b",".join(_summary_json(e, c, now) for e, c in rows) + b"]\n"


def _summary_json(engine: Engine, c: dict, now: float) -> bytes:
    """One `GET /containers/json` entry, named `/node/name` like classic Swarm.

    Everything but the time-dependent Status is encoded once per change of the container.
    """
    head, times = engine.containers.derived(
        c["Id"], "ps", lambda c: (encode(_summary_base(engine, c))[:-1], state_times(c["State"])))
    status = status_text(c["State"], now, times) if engine.healthy else "Host Down"
    return head + b',"Status":' + json.dumps(status).encode() + b"}"


def _limit(value: str | None) -> int:
    """The `limit` parameter of `docker ps -n` (-1 when absent)."""
    if not value:
        return -1
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise ApiError(400, f"invalid value for limit: {value[:50]!r}: expected an integer")
    return int(value)


ContainerCheck = Callable[[Engine, dict], bool]


def _on_network(engine: Engine, c: dict, ref: str) -> bool:
    """`ps --filter network=`: a network name or ID prefix, or `node/name` (on that node)."""
    networks = (c.get("NetworkSettings") or {}).get("Networks") or {}

    def joined(name: str) -> bool:
        return name in networks or bool(name) and any(
            (n or {}).get("NetworkID", "").startswith(name) for n in networks.values())

    node, sep, name = ref.partition("/")
    return (bool(sep) and node in (engine.name, engine.id) and joined(name)) or joined(ref)


def _checks(filters: dict[str, list[str]]) -> list[ContainerCheck]:
    """One predicate per filter key: label values must all hold (dockerd's rule), others any."""
    def labels(c: dict) -> dict:
        return c["Config"].get("Labels") or {}

    def label_matches(c: dict, v: str) -> bool:
        key, eq, value = v.partition("=")
        return labels(c).get(key) == value if eq else key in labels(c)

    one: dict[str, Callable[[Engine, dict, str], bool]] = {
        "id": lambda e, c, v: c["Id"].startswith(v),
        "name": lambda e, c, v: bool(re.search(v, c["Name"][1:]) or re.search(v, e.name + c["Name"])),
        "status": lambda e, c, v: c["State"].get("Status") == v,
        "node": lambda e, c, v: v in (e.name, e.id, e.addr),
        "exited": lambda e, c, v: not c["State"].get("Running") and str(c["State"].get("ExitCode")) == v,
        "health": lambda e, c, v: ((c["State"].get("Health") or {}).get("Status") or "none") == v,
        "ancestor": lambda e, c, v: c["Config"].get("Image") == v or c.get("Image", "").startswith(v),
        "network": _on_network,
        "volume": lambda e, c, v: any(v in (m.get("Name"), m.get("Destination")) for m in c.get("Mounts") or []),
        "is-task": lambda e, c, v: ("com.docker.swarm.task" in labels(c)) == _truthy(v),
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
            created = pivot.get("Created", "")
            keep = (lambda c: c.get("Created", "") < created) if key == "before" \
                else (lambda c: c.get("Created", "") > created)
            rows = [(e, c) for e, c in rows if keep(c)]
    return rows


# ---- docker inspect ----------------------------------------------------------------------------
def node_json(engine: Engine) -> dict:
    """Classic Swarm's `Node` object in inspect output."""
    return {"ID": engine.id, "IP": engine.ip, "Addr": engine.addr, "Name": engine.name,
            "Cpus": engine.cpus, "Memory": engine.memory, "Labels": dict(engine.labels)}


def inspect_json(engine: Engine, cid: str) -> bytes:
    """`docker inspect` from the cache, plus `Node`, with ports shown at the node's address
    (encoded once per change of the container)."""
    def render(container: dict) -> bytes:
        body = json.loads(json.dumps(container))
        for bindings in ((body.get("NetworkSettings") or {}).get("Ports") or {}).values():
            for b in bindings or []:
                if b.get("HostIp") in UNSPECIFIED_IPS:
                    b["HostIp"] = engine.ip
        body["Node"] = node_json(engine)
        return json.dumps(body).encode() + b"\n"

    return engine.containers.derived(cid, "inspect", render)


# ---- docker info -------------------------------------------------------------------------------
def _node_rows(cluster: Cluster, engine: Engine) -> list[list[str]]:
    """An engine's rows, rebuilt only when what they show has changed."""
    return engine.derived("info rows", lambda e: _build_node_rows(cluster, e),
                          engine.state, engine.error, engine.updated_at)


def _build_node_rows(cluster: Cluster, engine: Engine) -> list[list[str]]:
    scheduler = cluster.scheduler
    node = node_of(engine)
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
        ["  └ Labels", ", ".join(f"{k}={v}" for k, v in sorted(engine.labels.items()))],
    ]
    if engine.error:
        rows.append(["  └ Error", engine.error])
    rows += [["  └ UpdatedAt", rfc3339(engine.updated_at)], ["  └ ServerVersion", engine.version]]
    return rows


def info(cluster: Cluster, role_rows: list[list[str]], experimental: bool = False) -> dict:
    """`GET /info`: cluster totals and classic Swarm's SystemStatus rows."""
    validated = cluster.validated()
    engines = cluster.listed_engines()
    total, running, paused, stopped = (sum(n) for n in zip((0, 0, 0, 0), *(e.containers.counts() for e in validated)))
    status = role_rows + [
        ["Strategy", cluster.scheduler.strategy_name],
        ["Filters", ", ".join(cluster.scheduler.filter_names)],
        ["Nodes", str(len(engines))],
    ]
    for engine in engines:
        status += _node_rows(cluster, engine)
    uname = platform.uname()
    return {
        "ID": "", "Containers": total, "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": stopped, "Images": sum(len(e.images) for e in validated),
        "Driver": "", "DriverStatus": None, "SystemStatus": status,
        "Plugins": {"Volume": [], "Network": [], "Authorization": None, "Log": []},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "IPv4Forwarding": True, "BridgeNfIptables": True,
        "BridgeNfIp6tables": True, "OomKillDisable": True, "Debug": False,
        "NFd": 0, "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "NEventsListener": cluster.events.listeners, "KernelVersion": uname.release,
        "OperatingSystem": "linux", "OSType": "linux", "Architecture": uname.machine,
        "NCPU": int(sum(e.cpus for e in validated)), "MemTotal": int(sum(e.memory for e in validated)),
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": experimental,
        "ServerVersion": SERVER_VERSION, "DockerRootDir": "",
        "HttpProxy": os.environ.get("HTTP_PROXY", ""), "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": False, "Warnings": None,
    }


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
