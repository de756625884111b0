"""Engine caches to scheduler snapshots (the only place that knows both shapes)."""
from __future__ import annotations

from manager.cluster.engine import Engine
from manager.cluster.networks import local_ref
from scheduler import ImageInfo, Node


def node_snapshot(engine: Engine, multihost: str = "", shared: frozenset[str] = frozenset()) -> Node:
    """The engine as an immutable scheduler Node (each cached container's `info`); `multihost` names
    its overlay domain, `shared` are that domain's cluster-wide networks (a swarm worker does not
    list them all itself)."""
    return Node(
        id=engine.id, name=engine.name, addr=engine.addr, labels=engine.all_labels,
        availability=engine.availability,
        health=engine.health, cpus=engine.cpus, memory=engine.memory,
        containers=tuple(c.info for c in engine.containers.values()),
        images=tuple(ImageInfo(id=i["Id"], repo_tags=tuple(i.get("RepoTags") or ()))
                     for i in engine.images),
        networks=frozenset(local_ref(engine, n) for n in engine.networks) | shared, multihost=multihost)


def node_of(engine: Engine, multihost: str = "", shared: frozenset[str] = frozenset()) -> Node:
    """The engine's snapshot, rebuilt only after its cache, its health or its overlay domain's
    networks changed."""
    return engine.derived("node", lambda e: node_snapshot(e, multihost, shared), multihost, shared)
