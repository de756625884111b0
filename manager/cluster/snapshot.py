"""Engine caches to scheduler snapshots (the only place that knows both shapes)."""
from __future__ import annotations

from manager.cluster.engine import Engine
from manager.cluster.networks import local_ref
from scheduler import ImageInfo, Node


def node_snapshot(engine: Engine) -> Node:
    """The engine as an immutable scheduler Node (each cached container's `info`)."""
    return Node(
        id=engine.id, name=engine.name, addr=engine.addr, labels=engine.all_labels,
        availability=engine.availability,
        health=engine.health, cpus=engine.cpus, memory=engine.memory,
        containers=tuple(c.info for c in engine.containers.values()),
        images=tuple(ImageInfo(id=i["Id"], repo_tags=tuple(i.get("RepoTags") or ()))
                     for i in engine.images),
        networks=frozenset(local_ref(engine, n) for n in engine.networks))


def node_of(engine: Engine) -> Node:
    """The engine's snapshot, rebuilt only after its cache or health changed."""
    return engine.derived("node", node_snapshot)
