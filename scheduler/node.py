"""Immutable scheduling snapshots of the cluster: nodes, their containers and images.

The manager builds these from its engine caches; the scheduler only reads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping


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
    state: str = "running"
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

    @property
    def healthy(self) -> bool:
        return self.health > 0

    @cached_property
    def used_cpus(self) -> float:
        return sum(c.cpus for c in self.containers)

    @cached_property
    def used_memory(self) -> int:
        return sum(c.memory for c in self.containers)
