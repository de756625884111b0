"""How engines that join later get into the swarm-mode overlay: the manager keeps the join (the
cluster ID, its managers' `ip:2377`, a worker join token read from a manager engine) in the cluster
state (`overlay/swarm`: in etcd under the discovery prefix, where `shoal join --overlay-join` reads
it). The token is never logged."""
from __future__ import annotations

import asyncio
import logging

from manager.cluster.cluster import Cluster
from manager.cluster.overlay import SWARM

log = logging.getLogger("shoal.overlay")


async def swarm_join(cluster: Cluster) -> dict | None:
    """The join of the swarm-mode overlay most healthy nodes are in (None: there is none, or no
    manager engine of it answers)."""
    view, healthy = cluster.overlay(), cluster.healthy()
    domain = view.largest(healthy)
    creator = view.creator(domain, healthy) if domain and domain.kind == SWARM else None
    if creator is None:
        return None
    swarm = await creator.get_json("/swarm")
    return {"cluster": swarm["ID"], "managers": list(creator.membership.manager_addrs),
            "token": swarm["JoinTokens"]["Worker"]}


async def publish_overlay_join(cluster: Cluster, every: float) -> None:
    """Keep `overlay/swarm` current: checked every `every` seconds (every second until there is
    one), written when it changed (another manager's write counts: the state is shared)."""
    while True:
        kept = cluster.state.items("overlay").get("swarm")
        try:
            join = await swarm_join(cluster)
            if join is not None and join != kept:
                await cluster.state.save("overlay", "swarm", join)
                kept = join
                log.info("overlay join kept in the cluster state cluster=%s", join["cluster"])
        except Exception as exc:  # the state store or the engine away: try again at the next round
            log.warning("overlay join not kept error=%r", str(exc))
        await asyncio.sleep(every if kept else min(every, 1.0))
