"""One engine's containers as the manager keeps them.

Each container is a compact `Container` record: what `docker ps` (its pre-encoded row), the lookups,
the ps filters and the scheduler (`info`) read. A record is first built from the engine's
`/containers/json` row (cheap: the engine lists all its containers in one call) and replaced by one
built from `docker inspect` as soon as the container has been inspected; from then on it also holds
the engine's inspect document, zlib-compressed (`inspect()`, `create_config()`), so that `docker
inspect` and rescheduling work while the engine cannot be reached.

Records are immutable values: a change of the container replaces its record (`ContainerCache.store`).
"""
from __future__ import annotations

import orjson
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from manager.cluster.names import plain_name
from manager.cluster.timefmt import parse_duration, parse_time
from scheduler import ContainerInfo, ContainerSpec, SchedulerError
from scheduler.node import SWARM_ID_LABEL, PortBinding
from scheduler.spec import RULE_LABELS

RESCHEDULE_LABEL = RULE_LABELS["reschedule"]
UNSPECIFIED_IPS = ("", "0.0.0.0", "::")
MOUNT_KEYS = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")


@dataclass(frozen=True, slots=True)
class State:
    """A container's state (inspect's `State`, or what a list row says of it)."""

    status: str = "created"  # created, running, paused, restarting, removing, exited, dead
    running: bool = False
    paused: bool = False
    restarting: bool = False
    dead: bool = False
    exit_code: int = 0
    started: float | None = None  # unix seconds; None: never started
    finished: float | None = None
    health: str = ""  # "", starting, healthy, unhealthy


@dataclass(frozen=True, slots=True, eq=False)
class Container:
    """One cached container: compact values plus the engine's inspect document once known.

    `summary` is its `GET /containers/json` entry as JSON without `Status` and the closing brace
    (the status text is time-dependent; see manager/api/render.py). `networks` are the attached
    networks as (name, network ID) pairs (`endpoints()` has their aliases and addresses); `mounts`
    (name, destination) pairs; `info` the scheduler's view of it.
    """

    id: str
    name: str  # without the leading '/'
    image: str  # as asked for (Config.Image)
    image_id: str
    created: float  # unix seconds
    labels: Mapping[str, str]
    state: State
    network_mode: str
    networks: tuple[tuple[str, str], ...]
    mounts: tuple[tuple[str, str], ...]
    info: ContainerInfo
    summary: bytes
    inspected: bytes | None = None  # zlib-compressed inspect JSON; None while only listed
    status_memo: list = field(default_factory=list, compare=False)  # render's status text memo

    @property
    def swarm_id(self) -> str:
        """The cluster-wide ID Shoal gave the container (label `com.docker.swarm.id`), or ''."""
        return self.labels.get(SWARM_ID_LABEL, "")

    @property
    def reschedules_on_node_failure(self) -> bool:
        """Its labels ask for re-creation elsewhere when its node fails."""
        return "on-node-failure" in self.labels.get(RESCHEDULE_LABEL, "")

    def endpoints(self) -> dict[str, dict]:
        """`NetworkSettings.Networks`: network name -> endpoint (NetworkID, Aliases, IPAddress...)."""
        return orjson.loads(self.summary + b"}")["NetworkSettings"]["Networks"]

    def inspect(self) -> dict | None:
        """The engine's inspect document (a fresh copy), or None while the container is only listed."""
        return orjson.loads(zlib.decompress(self.inspected)) if self.inspected is not None else None

    def create_config(self) -> dict | None:
        """What re-creates this container elsewhere: `{"Name", "Config", "HostConfig", "NetworkingConfig"}`
        (a create body's parts; the network attachments with their aliases), or None while only listed."""
        body = self.inspect()
        if body is None:
            return None
        networks = (body.get("NetworkSettings") or {}).get("Networks") or {}
        endpoints = {name: {k: ep.get(k) for k in ("IPAMConfig", "Links", "Aliases") if ep.get(k)}
                     for name, ep in networks.items()}
        return {"Name": body.get("Name", ""), "Config": body.get("Config") or {},
                "HostConfig": body.get("HostConfig") or {},
                "NetworkingConfig": {"EndpointsConfig": endpoints}}

    def same(self, other: Container | None) -> bool:
        """Nothing a client or the scheduler sees differs."""
        return other is not None and (self.summary, self.state, self.inspected, self.info) == (
            other.summary, other.state, other.inspected, other.info)


# ---- building records --------------------------------------------------------------------------
NO_LABELS: Mapping[str, str] = {}  # every record without labels shares it (never modified)


class Interner:
    """Equal label maps and scheduler views shared between records (containers of one app look alike).
    A view is keyed by the `id()` of its interned label map: both caches are cleared together, so
    every key names a map the interner (or NO_LABELS) still holds and no freed map's id comes back."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._labels: dict[tuple, Mapping[str, str]] = {}
        self._views: dict[tuple, ContainerInfo] = {}

    def labels(self, labels: Mapping[str, str] | None) -> Mapping[str, str]:
        if not labels:
            return NO_LABELS
        key = tuple(labels.items())
        shared = self._labels.get(key)
        if shared is None:
            if len(self._labels) > self.LIMIT:
                self._labels.clear()
                self._views.clear()
            shared = self._labels[key] = {sys.intern(k): sys.intern(v) for k, v in labels.items()}
        return shared

    def listed_view(self, cid: str, name: str, image: str, labels: Mapping[str, str], network_mode: str,
                    ports: tuple[PortBinding, ...]) -> ContainerInfo:
        """The scheduler's view of a listed container: its rules parsed once per distinct
        (image, labels, network mode); the ID, name and published ports its own."""
        key = (image, id(labels), network_mode)
        template = self._views.get(key)
        if template is None:
            if len(self._views) > self.LIMIT:
                self._views.clear()
            body = {"Image": image, "Labels": labels, "HostConfig": {"NetworkMode": network_mode}}
            template = self._views[key] = _scheduler_view("", "", body)
        return ContainerInfo(id=cid, names=(name,), image=template.image, labels=template.labels,
                             port_bindings=ports, network_mode=template.network_mode,
                             exposed_ports=template.exposed_ports, cpus=template.cpus, memory=template.memory)


def _encode(obj: object) -> bytes:
    """Compact JSON of what an engine answered (orjson: its ints fit 64 bits, orjson decoded them)."""
    return orjson.dumps(obj)


def _scheduler_view(cid: str, name: str, body: dict) -> ContainerInfo:
    """A create-shaped body as the scheduler sees it."""
    try:
        return ContainerSpec.from_create_body(body, name).as_container(cid)
    except SchedulerError:  # made outside Shoal with labels we cannot read: no rules, no reservations
        return ContainerInfo(id=cid, names=(name,), image=body.get("Image", ""),
                             labels=body.get("Labels") or {},
                             network_mode=(body.get("HostConfig") or {}).get("NetworkMode") or "default")


def _ps_ports(bindings: Mapping[str, Any], node_ip: str) -> list[dict]:
    """Inspect's `NetworkSettings.Ports` as `ps` shows them, published ports at the node's address."""
    result: list[dict] = []
    for key, published in (bindings or {}).items():
        number, _, proto = key.partition("/")
        for b in published or [None]:
            entry = {"PrivatePort": int(number), "Type": proto or "tcp"}
            if b is not None:
                ip = node_ip if b.get("HostIp") in UNSPECIFIED_IPS else b["HostIp"]
                entry = {"IP": ip, **entry, "PublicPort": int(b.get("HostPort") or 0)}
            if entry not in result:
                result.append(entry)
    return result


def _attachments(networks: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((sys.intern(name), (ep or {}).get("NetworkID") or "") for name, ep in networks.items())


def command_line(path: str, args: list[str]) -> str:
    """The COMMAND column as dockerd lists it: arguments with a space in them quoted."""
    return " ".join([path, *(f"'{a}'" if " " in a else a for a in args)]).strip()


def _record(cid: str, node_name: str, name: str, image: str, image_id: str, command: str, created: float,
            ports: list[dict], labels: Mapping[str, str], state: State, network_mode: str,
            networks: Mapping[str, Any], mounts: list[dict], info: ContainerInfo,
            inspected: bytes | None) -> Container:
    """A record and its `ps` row, named `/node/name` like classic Swarm."""
    row = {"Id": cid, "Names": [f"/{node_name}/{name}"], "Image": image, "ImageID": image_id,
           "Command": command, "Created": int(created), "Ports": ports, "Labels": labels,
           "State": state.status, "HostConfig": {"NetworkMode": network_mode},
           "NetworkSettings": {"Networks": networks}, "Mounts": mounts}
    return Container(
        id=cid, name=name, image=sys.intern(image), image_id=sys.intern(image_id), created=created,
        labels=labels, state=state, network_mode=sys.intern(network_mode), networks=_attachments(networks),
        mounts=tuple((m.get("Name", ""), m.get("Destination", "")) for m in mounts),
        info=info, summary=_encode(row)[:-1], inspected=inspected)


def from_inspect(body: dict, node_name: str, node_ip: str, interner: Interner,
                 raw: bytes | None = None) -> Container:
    """The record of an inspected container (`GET /containers/{id}/json` answer, `raw` its bytes)."""
    config, host = body.get("Config") or {}, body.get("HostConfig") or {}
    raw_state, settings = body.get("State") or {}, body.get("NetworkSettings") or {}
    cid, name = body["Id"], plain_name(body.get("Name", ""))
    labels = interner.labels(config.get("Labels"))
    networks = settings.get("Networks") or {}
    mounts = [{k: m.get(k) for k in MOUNT_KEYS if k in m} for m in body.get("Mounts") or []]
    network_mode = host.get("NetworkMode") or "default"
    state = State(status=raw_state.get("Status", ""), running=bool(raw_state.get("Running")),
                  paused=bool(raw_state.get("Paused")), restarting=bool(raw_state.get("Restarting")),
                  dead=bool(raw_state.get("Dead")), exit_code=int(raw_state.get("ExitCode") or 0),
                  started=parse_time(raw_state.get("StartedAt")),
                  finished=parse_time(raw_state.get("FinishedAt")),
                  health=sys.intern((raw_state.get("Health") or {}).get("Status") or ""))
    created = parse_time(body.get("Created")) or 0.0
    return _record(
        cid, node_name, name, config.get("Image", ""), body.get("Image", ""),
        command_line(body.get("Path", ""), body.get("Args") or []), created,
        _ps_ports(settings.get("Ports") or {}, node_ip), labels, state, network_mode, networks, mounts,
        _scheduler_view(cid, name, dict(config, HostConfig=host)),
        zlib.compress(raw if raw is not None else _encode(body), 1))


def from_list_row(row: dict, node_name: str, node_ip: str, interner: Interner, now: float) -> Container:
    """The record of a container known from the engine's `GET /containers/json?all=1` row only.

    The row has no start/finish times: they are read back from its Status text (`Up 2 hours`), so
    the STATUS column is right to the unit it shows until the container is inspected.
    """
    cid = row["Id"]
    names = [plain_name(n) for n in row.get("Names") or []]
    name = next((n for n in names if "/" not in n), names[0] if names else cid[:12])  # not a link alias
    labels = interner.labels(row.get("Labels"))
    status, text = row.get("State", ""), row.get("Status", "")
    age = now - parse_duration(text)
    exit_code = int(text.split("(", 1)[1].split(")", 1)[0]) if text.startswith(("Exited (", "Restarting (")) \
        else 0
    health = next((h for h in ("starting", "unhealthy", "healthy") if f"({h}" in text
                   or f"(health: {h}" in text), "")
    running = status in ("running", "paused", "restarting")
    state = State(status=status, running=running, paused=status == "paused",
                  restarting=status == "restarting", dead=status == "dead", exit_code=exit_code,
                  started=age if running else (None if status == "created" else age - 1),
                  finished=None if running or status == "created" else age, health=health)
    ports = []
    published = []
    for p in row.get("Ports") or []:
        entry = dict(p)
        if "IP" in entry and entry["IP"] in UNSPECIFIED_IPS:
            entry["IP"] = node_ip
        if entry not in ports:
            ports.append(entry)
        if p.get("PublicPort"):
            published.append(PortBinding("" if p.get("IP") in UNSPECIFIED_IPS else p["IP"],
                                         str(p["PublicPort"]), f"{p['PrivatePort']}/{p.get('Type') or 'tcp'}"))
    network_mode = (row.get("HostConfig") or {}).get("NetworkMode") or "default"
    networks = (row.get("NetworkSettings") or {}).get("Networks") or {}
    mounts = [{k: m.get(k) for k in MOUNT_KEYS if k in m} for m in row.get("Mounts") or []]
    created = float(row.get("Created") or 0)
    image = row.get("Image", "")
    return _record(cid, node_name, name, image, row.get("ImageID", ""), row.get("Command", ""), created,
                   ports, labels, state, network_mode, networks, mounts,
                   interner.listed_view(cid, name, image, labels, network_mode, tuple(published)), None)


# ---- the cache ---------------------------------------------------------------------------------
def ref_keys(container: Container) -> list[str]:
    """What else a container is looked up by, besides its full ID and its name."""
    keys = [container.id[:12]]
    if container.swarm_id:
        keys += [container.swarm_id, container.swarm_id[:12]]
    return keys


# How many records of all the caches of the process hold each name: a name it lacks is in no
# cache, without asking thousands of them (it also counts the caches of engines no longer used).
NAMES_SEEN: Counter[str] = Counter()
# Container ID -> the owner (engine) of the cache holding it, over every cache: a container found by
# its full ID (start, inspect, rm) without asking each of 5,000 engines' caches in turn (1-2 ms).
OWNERS: dict[str, object] = {}


class ContainerCache:
    """Records by container ID, with indexes by short ID, Swarm ID and name (counted in NAMES_SEEN)."""

    def __init__(self, owner: object = None) -> None:
        self.owner = owner  # the engine, named in OWNERS for each of its containers
        self._by_id: dict[str, Container] = {}
        self._refs: dict[str, str] = {}  # short ID, Swarm ID and its short form -> ID
        self._names: dict[str, str] = {}  # name (no leading slash) -> ID
        self._counts: tuple[int, int, int, int] | None = None
        self.interner = Interner()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_id))

    def get(self, cid: str) -> Container | None:
        """A container by full ID."""
        return self._by_id.get(cid)

    def values(self) -> Iterator[Container]:
        return iter(list(self._by_id.values()))

    def by_ref(self, ref: str) -> Container | None:
        """A container by full ID, short ID, Swarm ID or short Swarm ID."""
        cid = ref if ref in self._by_id else self._refs.get(ref)
        return self._by_id.get(cid) if cid else None

    def by_name(self, name: str) -> Container | None:
        """A container by name (with or without the leading slash)."""
        cid = self._names.get(plain_name(name))
        return self._by_id.get(cid) if cid else None

    def reschedulable(self) -> list[Container]:
        """Containers whose labels ask for re-creation on another node when theirs fails
        (`create_config()` of each is known once it has been inspected; policy containers are
        inspected before their engine turns Healthy)."""
        return [c for c in self._by_id.values() if c.reschedules_on_node_failure]

    def store(self, cid: str, record: Container | None) -> bool:
        """Put one container's record in the cache and its indexes (None: drop it); True if it changed."""
        old = self._by_id.pop(cid, None)
        if old is not None:
            if record is None and self.owner is not None and OWNERS.get(cid) is self.owner:
                del OWNERS[cid]
            for key in ref_keys(old):
                if self._refs.get(key) == cid:
                    del self._refs[key]
            if self._names.get(old.name) == cid:
                del self._names[old.name]
            NAMES_SEEN[old.name] -= 1
            if NAMES_SEEN[old.name] <= 0:
                del NAMES_SEEN[old.name]
        if record is not None:
            self._by_id[cid] = record
            if self.owner is not None:
                OWNERS[cid] = self.owner
            self._refs.update(dict.fromkeys(ref_keys(record), cid))
            self._names[record.name] = cid
            NAMES_SEEN[record.name] += 1
        changed = (old is None) != (record is None) or (record is not None and not record.same(old))
        if changed:
            self._counts = None
        return changed

    def release(self) -> None:
        """Take this cache's containers out of OWNERS (its engine has left the cluster)."""
        for cid in self._by_id:
            if OWNERS.get(cid) is self.owner:
                del OWNERS[cid]

    def counts(self) -> tuple[int, int, int, int]:
        """(containers, running, paused, stopped), recounted only after a change."""
        if self._counts is None:
            total = running = paused = 0
            for c in self._by_id.values():
                total += 1
                paused += c.state.paused
                running += c.state.running and not c.state.paused
            self._counts = (total, running, paused, total - running - paused)
        return self._counts
