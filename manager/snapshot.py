"""Engine caches to scheduler snapshots (the only place that knows both shapes)."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from scheduler import ContainerInfo, ContainerSpec, ImageInfo, Node, SchedulerError

if TYPE_CHECKING:
    from manager.engine import Engine


def container_info(inspect: dict) -> ContainerInfo:
    """A cached `docker inspect` as the scheduler sees it.

    Inspect's Config + HostConfig has the shape of a create body, so the scheduler's own parser
    reads the reservations, ports and rules exactly as it did at create time.
    """
    body = dict(inspect.get("Config") or {}, HostConfig=inspect.get("HostConfig") or {})
    name = inspect.get("Name", "").lstrip("/")
    try:
        info = ContainerSpec.from_create_body(body, name).as_container(inspect["Id"])
    except SchedulerError:  # made outside Shoal with labels we cannot read: no rules, no reservations
        info = ContainerInfo(id=inspect["Id"], image=body.get("Image", ""),
                             labels=body.get("Labels") or {})
    return dataclasses.replace(info, names=(name,), state=inspect.get("State", {}).get("Status", ""))


def node_snapshot(engine: "Engine") -> Node:
    """The engine as an immutable scheduler Node."""
    return Node(
        id=engine.id, name=engine.name, addr=engine.addr, labels=dict(engine.labels),
        health=engine.health, cpus=engine.cpus, memory=engine.memory,
        containers=tuple(container_info(c) for c in engine.containers.values()),
        images=tuple(ImageInfo(id=i["Id"], repo_tags=tuple(i.get("RepoTags") or ()))
                     for i in engine.images))
