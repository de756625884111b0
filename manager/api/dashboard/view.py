"""What the dashboard shows, as JSON: the cluster's nodes with their reservations and containers,
the last placements, and events in a short form; after the whole picture, only what changed."""
from __future__ import annotations

import dataclasses
import time

from manager.api.render import status_text
from manager.cluster.cluster import Cluster, natural_key
from manager.cluster.engine import Engine
from manager.cluster.placements import Placement

REASON_GROUPS = 10  # distinct no-fit reasons shown per placement (most nodes say the same thing)
NODES_NAMED = 5  # nodes named per reason


def _node(cluster: Cluster, engine: Engine, now: float) -> dict:
    """One engine: state, labels, reserved and total CPUs and memory, its containers."""
    node = cluster.node(engine) if engine.id else None  # the scheduler's own snapshot (one cache slot)
    scheduler = cluster.scheduler
    containers = sorted(engine.containers.values(), key=lambda c: natural_key(c.name))  # c2 before c10
    return {
        "name": engine.name, "addr": engine.addr, "state": engine.state, "error": engine.error,
        "availability": engine.availability, "labels": dict(sorted(engine.all_labels.items())),
        "cpus": {"used": node.used_cpus if node else 0, "total": scheduler.total_cpus(node) if node else 0},
        "memory": {"used": node.used_memory if node else 0,
                   "total": scheduler.total_memory(node) if node else 0},
        "containers": [{"id": c.id[:12], "name": c.name, "image": c.image, "state": c.state.status,
                        "status": status_text(c.state, now)} for c in containers],
    }


def _summary(cluster: Cluster) -> dict:
    return {"nodes": len(cluster.engines), "healthy": len(cluster.healthy()),
            "containers": sum(len(e.containers) for e in cluster.validated()),
            "strategy": cluster.scheduler.strategy_name}


def state(cluster: Cluster) -> dict:
    """The whole picture the page draws."""
    now = time.time()
    return {"cluster": _summary(cluster), "nodes": [_node(cluster, e, now) for e in cluster.listed_engines()],
            "placements": [placement(p) for p in cluster.placements.recent()]}


def update(cluster: Cluster, changed: list[str], removed: list[str], placements: bool) -> dict:
    """What changed since a state: the nodes (by address) whose cards are redrawn, those gone,
    and the placements when there are new ones."""
    now = time.time()
    message = {"cluster": _summary(cluster), "removed": removed,
               "nodes": [_node(cluster, cluster.engines[addr], now) for addr in changed]}
    if placements:
        message["placements"] = [placement(p) for p in cluster.placements.recent()]
    return message


def node_versions(cluster: Cluster) -> dict[str, tuple]:
    """Engine address -> a value that changes whenever its card may have (but the running times)."""
    return {addr: (e.generation, e.state, e.name) for addr, e in cluster.engines.items()}


def placement(decision: Placement) -> dict:
    """One decision; a no-fit's reasons grouped by their text, the commonest first, so that a
    no-fit on 1,000 nodes is a few lines: `{"reason", "nodes" (the first NODES_NAMED), "count"}`,
    and `unshown`, the nodes whose reasons are past the first REASON_GROUPS."""
    groups: dict[str, list[str]] = {}
    for node, why in decision.reasons.items():
        groups.setdefault(why, []).append(node)
    ordered = sorted(groups.items(), key=lambda group: -len(group[1]))
    return {**dataclasses.asdict(decision),
            "reasons": [{"reason": why, "nodes": nodes[:NODES_NAMED], "count": len(nodes)}
                        for why, nodes in ordered[:REASON_GROUPS]],
            "unshown": sum(len(nodes) for _, nodes in ordered[REASON_GROUPS:])}


def event(tagged: dict) -> dict:
    """A merged-stream event in short: when, which node, what happened to what."""
    actor = tagged.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return {"time": tagged.get("time", 0), "node": (tagged.get("node") or {}).get("Name", ""),
            "type": tagged.get("Type", ""), "action": tagged.get("Action") or tagged.get("status", ""),
            "actor": attributes.get("name") or (actor.get("ID") or "")[:12]}
