"""What the dashboard shows, as JSON: the cluster's nodes with their reservations and containers,
the last placements, and events in a short form."""
from __future__ import annotations

import dataclasses
import time

from manager.api.render import status_text
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.cluster.snapshot import node_of


def _node(cluster: Cluster, engine: Engine, now: float) -> dict:
    """One engine: state, labels, reserved and total CPUs and memory, its containers."""
    node = node_of(engine) if engine.id else None
    scheduler = cluster.scheduler
    containers = sorted(engine.containers.values(), key=lambda c: c.name)
    return {
        "name": engine.name, "addr": engine.addr, "state": engine.state, "error": engine.error,
        "labels": dict(sorted(engine.labels.items())),
        "cpus": {"used": node.used_cpus if node else 0, "total": scheduler.total_cpus(node) if node else 0},
        "memory": {"used": node.used_memory if node else 0,
                   "total": scheduler.total_memory(node) if node else 0},
        "containers": [{"id": c.id[:12], "name": c.name, "image": c.image, "state": c.state.status,
                        "status": status_text(c.state, now)} for c in containers],
    }


def state(cluster: Cluster) -> dict:
    """The whole picture the page draws."""
    now = time.time()
    engines = cluster.listed_engines()
    return {
        "cluster": {"nodes": len(engines), "healthy": len(cluster.healthy()),
                    "containers": sum(len(e.containers) for e in cluster.validated()),
                    "strategy": cluster.scheduler.strategy_name},
        "nodes": [_node(cluster, e, now) for e in engines],
        "placements": [dataclasses.asdict(p) for p in cluster.placements.recent()],
    }


def state_version(cluster: Cluster) -> tuple:
    """Changes whenever what `state` shows may have changed (but the running times)."""
    return (cluster.placements.count,
            tuple((e.addr, e.generation, e.state, e.name) for e in cluster.listed_engines()))


def event(tagged: dict) -> dict:
    """A merged-stream event in short: when, which node, what happened to what."""
    actor = tagged.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return {"time": tagged.get("time", 0), "node": (tagged.get("node") or {}).get("Name", ""),
            "type": tagged.get("Type", ""), "action": tagged.get("Action") or tagged.get("status", ""),
            "actor": attributes.get("name") or (actor.get("ID") or "")[:12]}
