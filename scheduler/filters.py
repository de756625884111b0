"""Filters: each keeps the nodes a container may go to and says why it dropped the others.

A filter has a `name`, `describe(spec)` (the conditions a no-fit message lists, as classic
Swarm prints them) and `filter(spec, nodes) -> (kept, {node id: Reason})`. A filter is a list
of rules applied in turn; a rule selects the nodes that pass it over the whole list at once
(so it can share work between nodes) and explains, per dropped node, what the node had.
"""
from __future__ import annotations

from itertools import compress
from typing import Callable, ClassVar, Hashable, NamedTuple, Sequence

from scheduler.expr import Expr
from scheduler.node import Node, protocol, split_port
from scheduler.spec import ContainerSpec

_ALL_INTERFACES = frozenset({"", "0.0.0.0", "::"})


def _no_detail(node: Node) -> str:
    return ""


class Reason(NamedTuple):
    """Why nodes were dropped: `text` names the rule (`constraint size==xxl`) and is shared by
    all nodes it drops; `detail(node)` says what one node had (`node has size=small`), and is
    only computed when a no-fit message needs it."""

    text: str
    detail: Callable[[Node], str] = _no_detail

    def __str__(self) -> str:
        return self.text

    def explain(self, node: Node) -> str:
        """The text with this node's detail: `constraint size==xxl (node has size=small)`."""
        detail = self.detail(node)
        return f"{self.text} ({detail})" if detail else self.text


class Rule(NamedTuple):
    """One condition: `test(nodes)` says, node by node, whether each passes; `reason` is why the
    others fail. Testing the whole list at once lets a rule share work between nodes."""

    reason: Reason
    test: Callable[[Sequence[Node]], list[bool]]


class Filter:
    """Base: applies `rules(spec)` in order, each narrowing the nodes the previous one kept."""

    name: ClassVar[str]

    def describe(self, spec: ContainerSpec) -> list[str]:
        return []

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        raise NotImplementedError

    def signature(self, spec: ContainerSpec) -> Hashable:
        """What of `spec` the filter reads: two specs with equal signatures keep the same nodes."""
        raise NotImplementedError

    def filter(self, spec: ContainerSpec, nodes: Sequence[Node]) -> tuple[list[Node], dict[str, Reason]]:
        """The nodes kept, and the Reason for each node dropped (by ID)."""
        rejected: dict[str, Reason] = {}
        return self._apply(spec, nodes, rejected), rejected

    def select(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[Node]:
        """`filter` without the reasons: the fast path for a placement that succeeds."""
        return self._apply(spec, nodes, None)

    def _apply(self, spec: ContainerSpec, nodes: Sequence[Node],
               rejected: dict[str, Reason] | None) -> list[Node]:
        kept = list(nodes)
        for rule in self.rules(spec):
            passes = rule.test(kept)
            if not all(passes):
                if rejected is not None:
                    rejected.update({node.id: rule.reason for node, ok in zip(kept, passes) if not ok})
                kept = list(compress(kept, passes))
        return kept


class HealthFilter(Filter):
    """Only healthy nodes."""

    name = "health"

    def signature(self, spec: ContainerSpec) -> Hashable:
        return ()

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [Rule(Reason("node is unhealthy"), lambda nodes: [n.health > 0 for n in nodes])]


class PortFilter(Filter):
    """A host port is usable once per node: bridge bindings (host IP aware, per protocol) and,
    with --net=host, the exposed ports; pending placements count."""

    name = "port"

    @staticmethod
    def _requests(spec: ContainerSpec) -> list[tuple[tuple[str, str], str, str]]:
        """((port, protocol), host IP, description) for each host port the spec needs."""
        if spec.network_mode == "host":
            return [(split_port(p), "", f"port {p} (Host mode)") for p in spec.exposed_ports]
        return [((b.host_port, protocol(b.container_port)), b.host_ip, f"port {b.host_port} (Bridge mode)")
                for b in spec.port_bindings if b.host_port]

    def signature(self, spec: ContainerSpec) -> Hashable:
        return tuple(self._requests(spec))

    def describe(self, spec: ContainerSpec) -> list[str]:
        return [description for _, _, description in self._requests(spec)]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [self._rule(port, proto, ip) for (port, proto), ip, _ in self._requests(spec)]

    @staticmethod
    def _rule(port: str, proto: str, ip: str) -> Rule:
        def user(node: Node) -> str | None:
            """The container already using this port on the node, if any."""
            for used_ip, owner in node.ports_in_use.get((port, proto), ()):
                if ip == used_ip or ip in _ALL_INTERFACES or used_ip in _ALL_INTERFACES:
                    return owner
            return None

        shown = port if proto == "tcp" else f"{port}/{proto}"
        return Rule(Reason(f"port {shown} already in use", lambda node: f"by {user(node)}"),
                    lambda nodes: [user(n) is None for n in nodes])


class ContainerSlotsFilter(Filter):
    """Engine label containerslots=N caps the containers (any state, pending too) of a node."""

    name = "containerslots"

    def signature(self, spec: ContainerSpec) -> Hashable:
        return ()

    def describe(self, spec: ContainerSpec) -> list[str]:
        return ["available container slots"]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        reason = Reason("no available container slots", lambda node:
                        f"{len(node.containers)} containers, containerslots={node.container_slots}")
        return [Rule(reason, _slots_left)]


def _slots_left(nodes: Sequence[Node]) -> list[bool]:
    if not any("containerslots" in n.labels for n in nodes):  # the usual case, in one quick pass
        return [True] * len(nodes)
    return [n.container_slots is None or len(n.containers) < n.container_slots for n in nodes]


class DependencyFilter(Filter):
    """--volumes-from, --link and --net=container:X go where their target container is."""

    name = "dependency"

    @staticmethod
    def _targets(spec: ContainerSpec) -> list[tuple[str, str]]:
        """(description, container reference) for every dependency of the spec."""
        deps = [(f"--volumes-from={v}", v.split(":")[0]) for v in spec.volumes_from]
        deps += [(f"--link={link}", link.split(":")[0]) for link in spec.links]
        if spec.network_mode.startswith("container:"):
            deps.append((f"--net={spec.network_mode}", spec.network_mode.partition(":")[2]))
        return deps

    def signature(self, spec: ContainerSpec) -> Hashable:
        return tuple(self._targets(spec))

    def describe(self, spec: ContainerSpec) -> list[str]:
        return [description for description, _ in self._targets(spec)]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [self._rule(description, ref) for description, ref in self._targets(spec)]

    @staticmethod
    def _rule(description: str, ref: str) -> Rule:
        return Rule(Reason(f"dependency {description}", lambda node: f"no container {ref.lstrip('/')} here"),
                    lambda nodes: [n.has_container(ref) for n in nodes])


class AffinityFilter(Filter):
    """Affinities: `container` (IDs, names), `image` (IDs, tags, repos), else a container label."""

    name = "affinity"

    def signature(self, spec: ContainerSpec) -> Hashable:
        return tuple(str(e) for e in spec.affinities)

    def describe(self, spec: ContainerSpec) -> list[str]:
        return [f"{e.key}{e.operator}{e.value} (soft={str(e.soft).lower()})" for e in spec.affinities]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [self._rule(e) for e in spec.affinities]

    @staticmethod
    def _rule(e: Expr) -> Rule:
        key = e.key
        noun = key if key in ("container", "image") else f"container with label {key}"

        def detail(node: Node) -> str:
            match = e.first_match(node.affinity_candidates(key))
            return f"no matching {noun}" if match is None else f"node has {noun} {match!r}"

        return Rule(Reason(f"affinity {e}", detail),
                    lambda nodes: e.matches_each([n.affinity_candidates(key) for n in nodes]))


class ConstraintFilter(Filter):
    """Constraints: `node` matches the node name or ID, any other key the node label."""

    name = "constraint"

    def signature(self, spec: ContainerSpec) -> Hashable:
        return tuple(str(e) for e in spec.constraints)

    def describe(self, spec: ContainerSpec) -> list[str]:
        return [f"{e.key}{e.operator}{e.value}" for e in spec.constraints]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [self._node_rule(e) if e.key == "node" else self._label_rule(e) for e in spec.constraints]

    @staticmethod
    def _node_rule(e: Expr) -> Rule:
        return Rule(Reason(f"constraint {e}", lambda node: f"node is {node.name}"),
                    lambda nodes: e.matches_each([(n.name, n.id) for n in nodes]))

    @staticmethod
    def _label_rule(e: Expr) -> Rule:
        key = e.key

        def test(nodes: Sequence[Node]) -> list[bool]:
            # nodes share few label values: match each distinct value once
            values = [n.labels.get(key, "") for n in nodes]
            good = {v for v in set(values) if e.matches((v,))}
            return [v in good for v in values]

        def detail(node: Node) -> str:
            return f"node has {key}={node.labels[key]}" if key in node.labels else f"node has no label {key}"

        return Rule(Reason(f"constraint {e}", detail), test)


class NetworkFilter(Filter):
    """A container goes where every network it joins is: a node-local network (`node/name`) on
    its node only, a cluster-wide one on the nodes that reach it."""

    name = "network"

    def signature(self, spec: ContainerSpec) -> Hashable:
        return spec.networks

    def describe(self, spec: ContainerSpec) -> list[str]:
        return [f"network {ref}" for ref in spec.networks]

    def rules(self, spec: ContainerSpec) -> list[Rule]:
        return [self._rule(ref) for ref in spec.networks]

    @staticmethod
    def _rule(ref: str) -> Rule:
        where = ref.partition("/")[0] if "/" in ref else ""

        def detail(node: Node) -> str:
            if where:
                return f"only {where} has it"
            if node.multihost:
                return f"not in the node's {node.multihost}"
            return "node has no multi-host networking"

        return Rule(Reason(f"network {ref}", detail), lambda nodes: [ref in n.networks for n in nodes])


FILTERS: dict[str, type[Filter]] = {f.name: f for f in (
    HealthFilter, PortFilter, ContainerSlotsFilter, DependencyFilter, AffinityFilter, ConstraintFilter,
    NetworkFilter)}
DEFAULT_FILTERS = ("health", "port", "containerslots", "dependency", "affinity", "constraint", "network")
