"""The scheduler: filters in order, then a strategy; or a no-fit error that explains itself."""
from __future__ import annotations

import math
import operator
import random
from collections import Counter
from functools import partial
from itertools import compress, repeat
from typing import Callable, Collection, Mapping, Sequence

from scheduler.errors import NoFit, SchedulerError
from scheduler.filters import DEFAULT_FILTERS, FILTERS, Filter, Reason, Rule
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
MEMO_SIGNATURES = 16  # specs whose parts `keep_up` keeps up to date
MEMO_PARTS = 64  # parts `choose` keeps (see Scheduler._part)
PLAIN = ContainerSpec(body={})  # no rules, no reservations


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
        # what choose() keeps between placements (see _keys and _part)
        self._recent: dict[tuple, ContainerSpec] = {}  # the specs placed lately, by signature
        self._parts: dict[tuple, tuple[tuple[Node, ...], list]] = {}
        self._lows: dict[tuple, tuple[list, tuple[Node, ...], tuple, set[int]]] = {}  # see _lowest
        self._nodes_now: tuple[Node, ...] = ()
        self._nodes_before: tuple[Node, ...] = ()
        self._changed: list[int] | None = None  # positions where _nodes_now differs from _nodes_before

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
        keys, part = self._keys(spec, nodes)
        low, lowest = self._lowest(keys, part)
        if low == UNFIT and spec.has_soft_rules:
            keys, part = self._keys(spec.hard_only(), nodes)
            low, lowest = self._lowest(keys, part)
        if low == UNFIT:
            self._scored(spec, nodes)  # raises the NoFit that says why
        ties = sorted(lowest)
        if avoid:
            ties = [i for i in ties if nodes[i].id not in avoid]
            if not ties:
                keys = [UNFIT if node.id in avoid else key for node, key in zip(nodes, keys)]
                low = min(keys, default=UNFIT)
                if low == UNFIT:
                    return None
                ties = _positions(keys, low)
        return nodes[ties[int(self._rng.random() * len(ties))]]

    def _lowest(self, keys: list[tuple], part: tuple) -> tuple[tuple, set[int]]:
        """The lowest key and the positions that have it (a kept set: never modify it): kept with
        the part, and brought up to date at the positions that hold other node objects than then
        (`_part` takes the keys again there, in place; a placement changes one node's key; at 5,000
        nodes a walk over all keys for their minimum and its ties was 60 % of a placement)."""
        kept = self._lows.pop(part, None)
        ties: set[int] = set()
        if kept is not None and kept[0] is keys:  # the same list: its length, and changes in place
            low, ties = kept[2], kept[3]
            for i in self._changes_since(kept[1]) if kept[1] is not self._nodes_now else ():
                key = keys[i]
                if key < low:
                    low, ties = key, {i}
                elif key == low:
                    ties.add(i)
                else:
                    ties.discard(i)
        if not ties:
            low = min(keys, default=UNFIT)
            ties = set(_positions(keys, low))
        self._lows[part] = (keys, self._nodes_now, low, ties)
        while len(self._lows) > MEMO_PARTS:
            del self._lows[next(iter(self._lows))]
        return low, ties

    def _keys(self, spec: ContainerSpec, nodes: Sequence[Node]) -> tuple[list[tuple], tuple]:
        """The strategy's key of each node for `spec` (UNFIT where it cannot take it), and the
        signature of the part that keeps them.

        Worked out in parts, each kept apart (`_part`): whether each node is active, passes each
        filter that has rules for the spec (per what the filter reads of it, Filter.signature), and
        its key for the spec's reservations. A spec placed for the first time reuses the parts it
        shares with the specs placed before (availability, health, slots, the keys), so at 5,000
        nodes it tests its own rules alone instead of walking every node object seven times."""
        reads = tuple(f.signature(spec) for f in self._filters)
        signature = reads, spec.cpus, spec.memory
        self._recent.pop(signature, None)
        self._recent[signature] = spec
        while len(self._recent) > MEMO_SIGNATURES:
            del self._recent[next(iter(self._recent))]
        now = tuple(nodes)
        if not (len(now) == len(self._nodes_now) and all(map(operator.is_, now, self._nodes_now))):
            self._nodes_before, self._nodes_now = self._nodes_now, now
            self._changed = None
        parts = [self._part(("availability",), self._on_nodes(_is_active))]
        for f, read in zip(self._filters, reads):
            rules = f.rules(spec)
            if rules:
                parts.append(self._part((f.name, read), self._on_nodes(partial(_passing, rules))))
        keys = self._part(("keys", spec.cpus, spec.memory), self._on_nodes(partial(self._node_keys, spec)))

        def combined(at: list[int] | None) -> list[tuple]:
            if at is not None:
                return [keys[i] if all(part[i] for part in parts) else UNFIT for i in at]
            ok = parts[0]
            for part in parts[1:]:
                ok = list(map(operator.and_, ok, part))
            return [key if fits else UNFIT for key, fits in zip(keys, ok)]

        part = ("combined", signature)
        return self._part(part, combined), part

    def _on_nodes(self, compute: Callable[[Sequence[Node]], list]) -> Callable[[list[int] | None], list]:
        """`compute` over all the current nodes (None) or those at the positions given."""
        now = self._nodes_now
        return lambda at: compute(now if at is None else [now[i] for i in at])

    def _part(self, signature: tuple, compute: Callable[[list[int] | None], list]) -> list:
        """A part for the current nodes (`compute(None)`: for all of them), kept, and taken again
        only at the positions that hold other node objects than when it was last worked out."""
        now = self._nodes_now
        kept = self._parts.pop(signature, None)
        if kept is None or len(kept[0]) != len(now):
            values = compute(None)
        else:
            values = kept[1]
            if kept[0] is not now:
                changed = self._changes_since(kept[0])
                if len(changed) > len(now) // 4:
                    values = compute(None)
                else:  # in place: the kept list is this part's own
                    for i, value in zip(changed, compute(changed)):
                        values[i] = value
        self._parts[signature] = (now, values)
        while len(self._parts) > MEMO_PARTS:
            del self._parts[next(iter(self._parts))]
        return values

    def _changes_since(self, nodes: tuple[Node, ...]) -> list[int]:
        """The positions where the current nodes are other objects than in `nodes` (of equal length)."""
        if nodes is not self._nodes_before:
            return _changed(self._nodes_now, nodes)
        if self._changed is None:  # the parts of the last placement share one walk
            self._changed = _changed(self._nodes_now, nodes)
        return self._changed

    def keep_up(self, nodes: Sequence[Node]) -> None:
        """Bring the kept parts of the specs placed lately up to date with `nodes` (what a placement
        would do first, their lowest key too): called often, each call has only a few changed nodes
        to take again, instead of a placement after a fleet-wide change taking all of them. Before
        any placement, the parts of a spec without rules or reservations, which every spec shares,
        are made. Then the nodes before are let go, so that the snapshots replaced since are freed
        here and not in the next placement (after a start at 5,000 nodes: 3,600 of them, 20 ms)."""
        for spec in list(self._recent.values()) or [PLAIN]:
            self._lowest(*self._keys(spec, nodes))
        self._nodes_before, self._changed = self._nodes_now, None

    def _node_keys(self, spec: ContainerSpec, nodes: Sequence[Node]) -> list[tuple]:
        """The strategy's key of each node with room for the spec's reservations, else UNFIT."""
        scored = self._capacity.score(spec, nodes)[0]
        keys = self._strategy.keys(scored)
        if len(scored) == len(nodes):  # every node has room (the usual case): keys in node order
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


def _is_active(nodes: Sequence[Node]) -> list[bool]:
    return [n.availability == "active" for n in nodes]


def _passing(rules: Sequence[Rule], nodes: Sequence[Node]) -> list[bool]:
    """Whether each node passes every rule."""
    ok = [True] * len(nodes)
    for rule in rules:
        ok = list(map(operator.and_, ok, rule.test(nodes)))
    return ok


def _positions(keys: list[tuple], low: tuple) -> list[int]:
    """The positions of the keys equal to `low` (in C: 5,000 keys)."""
    return list(compress(range(len(keys)), map(operator.eq, keys, repeat(low))))


def _changed(now: Sequence[Node], before: Sequence[Node]) -> list[int]:
    """The positions holding another node object than before."""
    return list(compress(range(len(now)), map(operator.is_not, now, before)))


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
