"""Immutable scheduling snapshots of the cluster: nodes, their containers and images.

The manager builds these from its engine caches; the scheduler only reads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

SWARM_ID_LABEL = "com.docker.swarm.id"


@dataclass(frozen=True)
class PortBinding:
    """One published port: host side (ip may be '' = all interfaces) and container side."""

    host_ip: str
    host_port: str
    container_port: str  # "80/tcp"


@dataclass(frozen=True)
class ContainerInfo:
    """A container on a node (existing or pending placement)."""

    id: str
    names: tuple[str, ...] = ()  # without the leading '/'
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    port_bindings: tuple[PortBinding, ...] = ()
    network_mode: str = "default"
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", used for --net=host
    cpus: float = 0.0  # reserved CPUs
    memory: int = 0  # reserved bytes


@dataclass(frozen=True)
class ImageInfo:
    """An image on a node."""

    id: str
    repo_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    """Scheduling snapshot of one engine.

    `health` is classic Swarm's health indicator: 100 when the engine is healthy with no
    failed calls, lower with recent failures, 0 when it is not healthy.
    `cpus` / `memory` are the engine's real totals, before overcommit.
    `networks` are the networks a container here can join: `<node name>/<name>` for each of the
    node's own (local-scope) networks, the plain name of each cluster-wide one it reaches.
    `availability` is set with `docker node update`: only `active` nodes take new containers.
    `multihost` names the overlay domain the node is in (e.g. `swarm-mode overlay (cluster
    x)`), '' when it has no multi-host networking.
    """

    id: str
    name: str
    addr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    health: int = 100
    cpus: float = 0.0
    memory: int = 0
    containers: tuple[ContainerInfo, ...] = ()
    images: tuple[ImageInfo, ...] = ()
    networks: frozenset[str] = frozenset()
    availability: str = "active"
    multihost: str = ""

    @property
    def healthy(self) -> bool:
        return self.health > 0

    @cached_property
    def used_cpus(self) -> float:
        return sum(c.cpus for c in self.containers)

    @cached_property
    def used_memory(self) -> int:
        return sum(c.memory for c in self.containers)

    # ---- lazily built indexes (a Node never changes, so each is computed at most once) ----
    @property
    def container_slots(self) -> int | None:
        """The engine label `containerslots=N`, or None (unlimited) when missing or not an integer.
        Not cached: most nodes have no such label, and a cached property's first read (every node's,
        after a fleet-wide change) costs more than this."""
        slots = self.labels.get("containerslots")
        if slots is None:
            return None
        try:
            return int(slots)
        except ValueError:
            return None

    @cached_property
    def container_refs(self) -> frozenset[str]:
        """What names a container here: full and 12-char IDs, names, Swarm IDs."""
        refs: set[str] = set()
        for c in self.containers:
            refs.update((c.id, c.id[:12], *c.names))
            swarm_id = c.labels.get(SWARM_ID_LABEL)
            if swarm_id:
                refs.update((swarm_id, swarm_id[:12]))
        return frozenset(refs)

    @cached_property
    def image_refs(self) -> frozenset[str]:
        """Image IDs, repo tags and repo names (tag or digest removed) of the images here."""
        refs: set[str] = set()
        for image in self.images:
            refs.add(image.id)
            refs.update(image.repo_tags)
            refs.update(repo_name(tag) for tag in image.repo_tags)
        return frozenset(refs)

    @cached_property
    def ports_in_use(self) -> Mapping[tuple[str, str], tuple[tuple[str, str], ...]]:
        """(host port, protocol) -> ((host IP, container name), ...) for every published port,
        counting the exposed ports of --net=host containers as bound on all interfaces."""
        used: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for c in self.containers:
            owner = c.names[0] if c.names else c.id[:12]
            for b in c.port_bindings:
                if b.host_port:
                    used.setdefault((b.host_port, protocol(b.container_port)), []).append((b.host_ip, owner))
            if c.network_mode == "host":
                for port in c.exposed_ports:
                    used.setdefault(split_port(port), []).append(("", owner))
        return {key: tuple(owners) for key, owners in used.items()}

    def affinity_candidates(self, key: str) -> frozenset[str]:
        """What an affinity on `key` matches here: `container` -> container_refs, `image` ->
        image_refs, any other key -> that container label's values ('' where it is missing)."""
        values = self._affinity_candidates.get(key)
        if values is None:
            if key == "container":
                values = self.container_refs
            elif key == "image":
                values = self.image_refs
            else:
                values = frozenset(c.labels.get(key, "") for c in self.containers)
            self._affinity_candidates[key] = values
        return values

    @cached_property
    def _affinity_candidates(self) -> dict[str, frozenset[str]]:
        return {}

    def has_container(self, ref: str) -> bool:
        """True when `ref` (ID, short ID, name, Swarm ID, or `<node name>/<name>`) is here."""
        ref = ref.lstrip("/")
        if ref.startswith(self.name + "/"):
            ref = ref[len(self.name) + 1:]
        return ref in self.container_refs


def repo_name(tag: str) -> str:
    """`registry:5000/repo:tag` or `repo@sha256:...` -> the repository without tag or digest."""
    if "@" in tag:
        return tag.split("@", 1)[0]
    colon = tag.rfind(":")
    return tag[:colon] if colon > tag.rfind("/") else tag


def protocol(port: str) -> str:
    """'80/udp' -> 'udp'; a bare '80' is tcp."""
    return port.partition("/")[2] or "tcp"


def split_port(port: str) -> tuple[str, str]:
    """'80/udp' -> ('80', 'udp'); '80' -> ('80', 'tcp')."""
    return port.partition("/")[0], protocol(port)
