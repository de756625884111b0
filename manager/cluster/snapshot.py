"""Engine caches to scheduler snapshots (the only place that knows both shapes)."""
from __future__ import annotations

from manager.cluster.engine import Engine
from manager.cluster.names import plain_name
from manager.cluster.networks import local_ref
from scheduler import ContainerInfo, ContainerSpec, ImageInfo, Node, SchedulerError


def container_info(inspect: dict) -> ContainerInfo:
    """A cached `docker inspect` as the scheduler sees it.

    Inspect's Config + HostConfig has the shape of a create body, so the scheduler's own parser
    reads the reservations, ports and rules exactly as it did at create time.
    """
    body = dict(inspect.get("Config") or {}, HostConfig=inspect.get("HostConfig") or {})
    name = plain_name(inspect.get("Name", ""))
    try:
        return ContainerSpec.from_create_body(body, name).as_container(inspect["Id"])
    except SchedulerError:  # made outside Shoal with labels we cannot read: no rules, no reservations
        return ContainerInfo(id=inspect["Id"], names=(name,), image=body.get("Image", ""),
                             labels=body.get("Labels") or {})


def node_snapshot(engine: Engine) -> Node:
    """The engine as an immutable scheduler Node."""
    return Node(
        id=engine.id, name=engine.name, addr=engine.addr, labels=dict(engine.labels),
        health=engine.health, cpus=engine.cpus, memory=engine.memory,
        containers=tuple(container_info(c) for c in engine.containers.values()),
        images=tuple(ImageInfo(id=i["Id"], repo_tags=tuple(i.get("RepoTags") or ()))
                     for i in engine.images),
        networks=frozenset(local_ref(engine, n) for n in engine.networks))


def node_of(engine: Engine) -> Node:
    """The engine's snapshot, rebuilt only after its cache or health changed."""
    return engine.derived("node", node_snapshot)
