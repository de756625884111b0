"""The scheduler: filters in order, then a strategy; or a no-fit error that explains itself."""
from __future__ import annotations

import math
import random
from collections import Counter
from typing import Collection, Mapping, Sequence

from scheduler.errors import NoFit, SchedulerError
from scheduler.filters import DEFAULT_FILTERS, FILTERS, Filter, Reason
from scheduler.node import Node
from scheduler.spec import ContainerSpec
from scheduler.strategy import STRATEGIES, Capacity

NO_NODES = "No nodes available in the cluster"
NO_HEALTHY_NODE = "No healthy node available in the cluster"
NO_ACTIVE_NODE = "No active node available in the cluster (docker node update --availability active)"
UNSATISFIED = "Unable to find a node that satisfies the following conditions "  # sic, trailing space
NO_RESOURCES = "no resources available to schedule container"
NODES_SHOWN = 10
UNFIT = (math.inf,)  # the sort key of a node that cannot take the container: after every other
MEMO_SIGNATURES = 16  # specs whose node keys `choose` keeps


class Scheduler:
    """Ranks nodes for a container: `filters` by name (default DEFAULT_FILTERS), a strategy by
    name, and the overcommit ratio applied to node CPU and memory totals."""

    def __init__(self, filters: Sequence[str] | None = None, strategy: str = "spread",
                 overcommit: float = 0.05, rng: random.Random | None = None) -> None:
        names = DEFAULT_FILTERS if filters is None else filters
        unknown = [n for n in names if n not in FILTERS]
        if unknown:
            raise SchedulerError(f"filter not supported: {unknown[0]}")
        if strategy not in STRATEGIES:
            raise SchedulerError(f"strategy not supported: {strategy}")
        if not overcommit > -1:  # NaN too
            raise SchedulerError(f"swarm.overcommit should be larger than -1, {overcommit:f} is invalid")
        self._filters = [FILTERS[n]() for n in names]
        self._strategy = STRATEGIES[strategy]
        self._capacity = Capacity(overcommit)
        self._rng = rng or random.Random()
        self._memo: dict[tuple, tuple[ContainerSpec, tuple[Node, ...], list[tuple]]] = {}  # see choose()

    @property
    def filter_names(self) -> list[str]:
        return [f.name for f in self._filters]

    @property
    def strategy_name(self) -> str:
        return self._strategy.name

    def total_cpus(self, node: Node) -> float:
        return self._capacity.total_cpus(node)

    def total_memory(self, node: Node) -> int:
        return self._capacity.total_memory(node)

    def rank(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[Node]:
        """The nodes that can take `spec`, best first; raises NoFit when there is none.

        Nodes that are not `active` (paused or drained) never take a container.

        Soft rules are tried first; if nothing fits with them, the spec is placed without them.
        """
        return self._strategy.order(self._scored(spec, nodes), self._rng)

    def choose(self, spec: ContainerSpec, nodes: Sequence[Node], avoid: Collection[str] = ()) -> Node | None:
        """The node `rank` would put first, leaving out the node IDs in `avoid` (None when every node
        that can take `spec` is in it); raises NoFit as `rank` does.

        What a placement among thousands of nodes needs: no sort, and each node's sort key is kept
        for specs the filters read alike (Filter.signature), so that the next placement, after which
        one node's snapshot is a new object, tests and scores that node alone."""
        keys = self._keys(spec, nodes)
        low = min(keys, default=UNFIT)
        if low == UNFIT and spec.has_soft_rules:
            keys = self._keys(spec.hard_only(), nodes)
            low = min(keys, default=UNFIT)
        if low == UNFIT:
            self._scored(spec, nodes)  # raises the NoFit that says why
        if avoid:
            keys = [UNFIT if node.id in avoid else key for node, key in zip(nodes, keys)]
            low = min(keys, default=UNFIT)
            if low == UNFIT:
                return None
        ties = [i for i, key in enumerate(keys) if key == low]
        return nodes[ties[int(self._rng.random() * len(ties))]]

    def _keys(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[tuple]:
        """The strategy's key of each node for `spec` (UNFIT where it cannot take it), reusing the
        keys of the last call with the same signature for the node objects found again in place."""
        signature = (tuple(f.signature(spec) for f in self._filters), spec.cpus, spec.memory)
        last = self._memo.pop(signature, None)
        if last is None or len(last[1]) != len(nodes):
            keys = self._keys_now(spec, nodes)
        else:
            _, before, keys = last
            changed = [i for i, (node, old) in enumerate(zip(nodes, before)) if node is not old]
            if len(changed) > len(nodes) // 4:
                keys = self._keys_now(spec, nodes)
            elif changed:
                keys = list(keys)
                for i, key in zip(changed, self._keys_now(spec, [nodes[i] for i in changed])):
                    keys[i] = key
        self._memo[signature] = (spec, tuple(nodes), keys)
        while len(self._memo) > MEMO_SIGNATURES:
            del self._memo[next(iter(self._memo))]
        return keys

    def keep_up(self, nodes: Sequence[Node]) -> None:
        """Bring the kept keys of the specs placed lately up to date with `nodes` (what a placement
        would do first): called often, each call has only a few changed nodes to take again,
        instead of a placement after a fleet-wide change taking all of them."""
        for spec, _, _ in list(self._memo.values()):
            self._keys(spec, nodes)

    def _keys_now(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[tuple]:
        candidates = self._filtered(spec, _active(nodes))[0]
        scored = self._capacity.score(spec, candidates)[0] if candidates else []
        keys = self._strategy.keys(scored)
        if len(scored) == len(nodes):  # every node can take it (the usual case): keys in node order
            return keys
        by_node = {id(node): key for (_, node), key in zip(scored, keys)}
        return [by_node.get(id(node), UNFIT) for node in nodes]

    def _scored(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[tuple[float, Node]]:
        if not nodes:
            raise NoFit(NO_NODES)
        active = _active(nodes)
        if not active:
            raise _explain(NO_ACTIVE_NODE, "availability", nodes,
                           {n.id: Reason(f"node is {n.availability}") for n in nodes})
        if spec.has_soft_rules:
            try:
                return self._score(spec, active)
            except NoFit:
                spec = spec.hard_only()
        return self._score(spec, active)

    def _score(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[tuple[float, Node]]:
        """(score, node) for every node that passes the filters and has room."""
        candidates, ran = self._filtered(spec, nodes)
        if not candidates:
            raise self._no_fit(spec, nodes, self._filters[:ran])
        scored, shortages = self._capacity.score(spec, candidates)
        if not scored:
            raise self._no_fit(spec, nodes, self._filters, shortages)
        return scored

    def _filtered(self, spec: ContainerSpec, nodes: Sequence[Node]) -> tuple[list[Node], int]:
        """The nodes every filter keeps, in order, and how many filters ran: all of them, or up to
        the one that left none."""
        candidates = list(nodes)
        for position, f in enumerate(self._filters):
            candidates = f.select(spec, candidates)
            if not candidates:
                return [], position + 1
        return candidates, len(self._filters)

    def _no_fit(self, spec: ContainerSpec, nodes: Sequence[Node], filters: Sequence[Filter],
                shortages: Mapping[str, Reason] | None = None) -> NoFit:
        """The error for a failed placement: `filters` are run again, this time keeping their
        reasons; the last one emptied the list, unless the strategy found no room (`shortages`)."""
        candidates, rejected = list(nodes), {}
        for f in filters:
            candidates, reasons = f.filter(spec, candidates)
            rejected.update(reasons)
        if shortages is not None:
            return _explain(NO_RESOURCES, "resources", nodes, {**rejected, **shortages})
        if filters[-1].name == "health":
            return NoFit(NO_HEALTHY_NODE, "health")
        conditions = (f.describe(spec) for f in filters)
        header = UNSATISFIED + "".join(f"\n[{' '.join(c)}]" for c in conditions if c)
        return _explain(header, filters[-1].name, nodes, rejected)


def _active(nodes: Sequence[Node]) -> list[Node]:
    """The nodes that take new containers (not paused or drained)."""
    return [n for n in nodes if n.availability == "active"]


def _explain(header: str, rule: str, nodes: Sequence[Node], rejected: Mapping[str, Reason]) -> NoFit:
    """The header, a summary by reason, then one line per node (the first NODES_SHOWN)."""
    counts = Counter(reason.text for reason in rejected.values())
    summary = ", ".join(f"{count} {text}" for text, count in counts.most_common())
    reasons = {node.name: rejected[node.id].explain(node) for node in nodes[:NODES_SHOWN] if node.id in rejected}
    lines = [header, f"0/{len(nodes)} nodes are available: {summary}.", *(f"{n}: {r}" for n, r in reasons.items())]
    if len(nodes) > NODES_SHOWN:
        more = len(nodes) - NODES_SHOWN
        lines.append(f"... and {more} more node{'s' if more > 1 else ''}")
    return NoFit("\n".join(lines), rule, reasons)
