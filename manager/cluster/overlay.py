"""Multi-host networking through the engines' own overlay drivers (never a tunnel of ours).

Two mechanisms, one behaviour:
* swarm-mode attachable overlays: the engines form a swarm-mode cluster used for networking only;
  an overlay made with `Attachable: true` on one of its managers can be joined by a plain
  `docker run --net` on any member (a worker lists it only once a container of its uses it);
* legacy KV overlays (dockerd <= 20.10): engines sharing a `cluster-store` see the same
  global-scope overlay networks.

An engine belongs to at most one overlay *domain*: its swarm-mode cluster (or else its cluster
store). This module works out, from the engines' `/info` (`Membership`) and network lists, which
domain each engine is in (`overlay_view`, which no network create or removal changes), which
cluster-wide networks each domain has (`shared_networks`), where to create one, and the `docker
info` rows.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from manager.cluster.engine import Engine, Membership

SWARM, KV = "swarm-mode overlay", "kv overlay"


@dataclass(frozen=True)
class Domain:
    """One set of engines that share overlay networks: a swarm-mode cluster or a cluster store."""

    kind: str  # SWARM or KV
    key: str  # the swarm cluster ID (or its managers' node IDs while no manager is known), or the store URL

    def describe(self) -> str:
        """`swarm-mode overlay (cluster 3x7...)`, `kv overlay (etcd://10.0.0.1:2379)`."""
        what = "cluster" if self.kind == SWARM else "store"
        return f"{self.kind} ({what} {self.key})"


@dataclass
class OverlayView:
    """The cluster's overlay domains as its engines describe them."""

    domains: dict[str, Domain | None] = field(default_factory=dict)  # engine addr -> its domain

    def domain_of(self, engine: Engine) -> Domain | None:
        return self.domains.get(engine.addr)

    def members(self, domain: Domain, engines: Iterable[Engine]) -> list[Engine]:
        return [e for e in engines if self.domains.get(e.addr) == domain]

    def largest(self, engines: Sequence[Engine]) -> Domain | None:
        """The domain most of `engines` are in (None when none is in any)."""
        counts: dict[Domain, int] = defaultdict(int)
        for engine in engines:
            if (domain := self.domain_of(engine)) is not None:
                counts[domain] += 1
        return max(counts, key=lambda d: (counts[d], d.key)) if counts else None

    def everywhere(self, engines: Sequence[Engine]) -> Domain | None:
        """The domain every one of `engines` is in, if there is one (and they are not none)."""
        domains = {self.domain_of(e) for e in engines}
        return next(iter(domains)) if len(domains) == 1 and engines else None

    def creator(self, domain: Domain, engines: Iterable[Engine]) -> Engine | None:
        """A healthy engine that can create an overlay of `domain`: a swarm manager, any KV member."""
        return next((e for e in self.members(domain, engines) if e.healthy
                     and (domain.kind == KV or e.membership.swarm_manager)), None)

    def default_driver(self, healthy: Sequence[Engine]) -> str:
        """The driver of a create that names none (docker-compose's default network, docker-py's
        `networks.create(name)`): `overlay` when every healthy node is in one overlay domain that
        has a node able to create it, else `bridge` (a network on one node)."""
        domain = self.everywhere(healthy)
        return "overlay" if domain is not None and self.creator(domain, healthy) is not None else "bridge"


def _domain(membership: Membership, clusters_by_manager: dict[str, str]) -> Domain | None:
    if membership.swarm_active:
        cluster = membership.cluster_id or next(
            (clusters_by_manager[m] for m in membership.manager_ids if m in clusters_by_manager), "")
        return Domain(SWARM, cluster or "managers " + ",".join(membership.manager_ids))
    if membership.cluster_store:
        return Domain(KV, membership.cluster_store)
    return None


def _shared(network: dict, domain: Domain) -> bool:
    """A network every member of its domain can join: an attachable swarm-scope one (never the
    routing mesh's `ingress`), or a global-scope one of a cluster store."""
    if domain.kind == SWARM:
        return network.get("Scope") == "swarm" and bool(network.get("Attachable")) and not network.get("Ingress")
    return network.get("Scope") == "global"


def overlay_view(engines: Iterable[Engine]) -> OverlayView:
    """Each engine's domain (from the engines' memberships alone)."""
    engines = list(engines)
    clusters_by_manager = {e.membership.node_id: e.membership.cluster_id for e in engines
                           if e.membership.cluster_id and e.membership.node_id}
    return OverlayView({e.addr: _domain(e.membership, clusters_by_manager) for e in engines})


def shared_networks(view: OverlayView, engines: Iterable[Engine]) -> dict[Domain, frozenset[str]]:
    """The names of the cluster-wide networks of each domain that has some (from every member's list)."""
    engines = list(engines)
    networks: dict[Domain, set[str]] = defaultdict(set)
    managed = {view.domain_of(e) for e in engines if e.membership.swarm_manager}
    for engine in engines:
        domain = view.domain_of(engine)
        # a swarm's managers know its networks; a worker's list lags behind (or is all there is)
        if domain is not None and (engine.membership.swarm_manager or domain not in managed):
            networks[domain].update(n["Name"] for n in engine.networks if _shared(n, domain))
    return {domain: frozenset(names) for domain, names in networks.items() if names}


def role(engine: Engine, domain: Domain | None) -> str:
    """One engine's multi-host networking, for its `docker info` row."""
    if domain is None:
        return "none (not in a swarm-mode cluster, no cluster-store)"
    if domain.kind == KV:
        return f"{KV} member (store {domain.key})"
    return f"{SWARM} {'manager' if engine.membership.swarm_manager else 'worker'} (cluster {domain.key})"


def summary(view: OverlayView, engines: Sequence[Engine]) -> str:
    """The cluster's row: `swarm-mode overlay (cluster <id>, 3/3 nodes)`, or `none`."""
    domain = view.largest(engines)
    if domain is None:
        return "none (no node is in a swarm-mode cluster or has a cluster-store)"
    what = "cluster" if domain.kind == SWARM else "store"
    return f"{domain.kind} ({what} {domain.key}, {len(view.members(domain, engines))}/{len(engines)} nodes)"
