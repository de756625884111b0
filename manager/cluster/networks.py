"""The cluster's networks as its engines list them: a node-local network belongs to one node and is
named `node/name`; a cluster-wide one (swarm or global scope) is one network, seen by many nodes.
How a reference (ID, name, `node/name`, ID prefix) resolves, and the create-body rewriting that
places a container beside the networks it joins."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from manager.cluster.engine import Engine
from manager.errors import ApiError
from scheduler.spec import network_refs

BUILTIN_NAMES = frozenset({"bridge", "host", "none"})


@dataclass(frozen=True)
class ClusterNetwork:
    """One network: its engines' list entry, and the engines that list it."""

    body: dict
    holders: tuple[Engine, ...]

    @property
    def id(self) -> str:
        return self.body["Id"]

    @property
    def name(self) -> str:
        return self.body["Name"]

    @property
    def local(self) -> bool:
        return self.body.get("Scope", "local") == "local"

    @property
    def ref(self) -> str:
        """How the cluster names it: `node/name` when node-local, else the plain name."""
        return f"{self.holders[0].name}/{self.name}" if self.local else self.name

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_NAMES and self.local


def local_ref(engine: Engine, network: dict) -> str:
    """A network of `engine` as the cluster names it (see `ClusterNetwork.ref`)."""
    scope = network.get("Scope", "local")
    return f"{engine.name}/{network['Name']}" if scope == "local" else network["Name"]


def _stale_on(engines: list[Engine]) -> Callable[[Engine, dict], bool]:
    """Is a swarm-scope network a worker lists gone already? Its managers are the authority: a
    removed overlay lingers on a worker for a moment."""
    managers = {e.membership.node_id for e in engines if e.membership.swarm_manager}
    on_managers = {n["Id"] for e in engines if e.membership.swarm_manager for n in e.networks
                   if n.get("Scope") == "swarm"}

    def stale(engine: Engine, network: dict) -> bool:
        return (network.get("Scope") == "swarm" and not engine.membership.swarm_manager
                and network["Id"] not in on_managers and bool(managers & set(engine.membership.manager_ids)))
    return stale


def cluster_networks(engines: Iterable[Engine]) -> list[ClusterNetwork]:
    """Every network of these engines; a cluster-wide one once (by ID), with all its holders."""
    engines = list(engines)
    stale = _stale_on(engines)
    local: list[ClusterNetwork] = []
    shared: dict[str, tuple[dict, list[Engine]]] = {}
    for engine in engines:
        for network in engine.networks:
            if network.get("Scope", "local") == "local":
                local.append(ClusterNetwork(network, (engine,)))
            elif not stale(engine, network):
                shared.setdefault(network["Id"], (network, []))[1].append(engine)
    return local + [ClusterNetwork(body, tuple(holders)) for body, holders in shared.values()]


def _ambiguous(ref: str, matches: Sequence[ClusterNetwork], based_on: str) -> ApiError:
    """dockerd's 400 for an ambiguous reference, naming the `node/name` forms that are not."""
    refs = ", ".join(sorted(m.ref for m in matches))
    return ApiError(400, f"network {ref} is ambiguous ({len(matches)} matches found based on "
                         f"{based_on}: {refs}); name one as node/name")


def find_network(networks: Sequence[ClusterNetwork], ref: str) -> ClusterNetwork:
    """Resolve a reference among `networks` (`cluster_networks`) the way classic Swarm does: full ID;
    `node/name` (node name or ID); a unique name; a unique ID prefix. 404 when nothing matches, 400
    when several do."""
    for network in networks:
        if network.id == ref:
            return network
    node, sep, name = ref.partition("/")
    if sep:
        on_node = [n for n in networks if n.name == name and any(node in (e.name, e.id) for e in n.holders)]
        if on_node:
            return on_node[0]
    for matches, based_on in (([n for n in networks if n.name == ref], "name"),
                              ([n for n in networks if n.id.startswith(ref)] if ref else [], "ID prefix")):
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise _ambiguous(ref, matches, based_on)
    raise ApiError(404, f"network {ref} not found")


def place_networks(networks: Sequence[ClusterNetwork], body: dict) -> tuple[dict, tuple[str, ...]]:
    """A create body's networks resolved among `networks`: (the body with each `node/name` reference rewritten to
    the name the engine knows, the cluster's reference of every network it joins).

    An unknown network is a 400 here, not dockerd's 404: the docker CLI takes a 404 from create
    for a missing image and would try to pull it."""
    refs = network_refs(body)
    if not refs:
        return body, ()
    try:
        found = {ref: find_network(networks, ref) for ref in refs}
    except ApiError as exc:
        raise ApiError(400, exc.message) from None
    renamed = {ref: net.name for ref, net in found.items() if ref != net.name and ref != net.id
               and not net.id.startswith(ref)}
    if renamed:
        body = copy.deepcopy(body)
        host = body.get("HostConfig") or {}
        if host.get("NetworkMode") in renamed:
            host["NetworkMode"] = renamed[host["NetworkMode"]]
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig")
        if isinstance(endpoints, dict):
            body["NetworkingConfig"]["EndpointsConfig"] = {renamed.get(k, k): v for k, v in endpoints.items()}
    return body, tuple(dict.fromkeys(net.ref for net in found.values()))
