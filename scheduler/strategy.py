"""Strategies: rank the nodes that passed the filters, dropping those without room.

Scores are classic Swarm's (`scheduler/strategy/weighted_node.go`): CPU% + memory% of the node
after placement (100 each when the container reserves nothing), plus/minus 10 x health.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from scheduler.filters import Reason
from scheduler.node import Node
from scheduler.spec import ContainerSpec

_EPSILON = 1e-9  # CPUs are floats: tolerate rounding when a node is filled exactly


class Capacity:
    """Node totals including the overcommit ratio, and how full a placement leaves a node."""

    def __init__(self, overcommit: float = 0.05) -> None:
        self.overcommit = overcommit

    def total_cpus(self, node: Node) -> float:
        return node.cpus * (1 + self.overcommit)

    def total_memory(self, node: Node) -> int:
        return int(node.memory * (1 + self.overcommit))

    def score(self, spec: ContainerSpec,
              nodes: Sequence[Node]) -> tuple[list[tuple[float, Node]], dict[str, Reason]]:
        """(score, node) for the nodes with room, and a Reason for each node without."""
        if spec.cpus <= 0 and spec.memory <= 0:
            return [(200.0, node) for node in nodes], {}
        scored, rejected = [], {}
        shortages = self._shortages(spec)
        cpus, memory, factor = spec.cpus, spec.memory, 1 + self.overcommit
        for node in nodes:  # hot loop: the totals of total_cpus() / total_memory(), inlined
            cpu = _percent(node.used_cpus, cpus, node.cpus * factor)
            mem = _percent(node.used_memory, memory, int(node.memory * factor))
            if cpu is not None and mem is not None:
                scored.append((cpu + mem, node))
            else:
                rejected[node.id] = shortages[cpu is None, mem is None]
        return scored, rejected

    def _shortages(self, spec: ContainerSpec) -> dict[tuple[bool, bool], Reason]:
        """Reason by (CPUs short, memory short)."""
        def cpus(node: Node) -> str:
            return _describe(spec.cpus, node.used_cpus, self.total_cpus(node), _cpus)

        def memory(node: Node) -> str:
            return _describe(spec.memory, node.used_memory, self.total_memory(node), _bytes)

        return {(True, False): Reason("insufficient cpus", cpus),
                (False, True): Reason("insufficient memory", memory),
                (True, True): Reason("insufficient cpus and memory",
                                     lambda node: f"cpus: {cpus(node)}; memory: {memory(node)}")}


def _percent(used: float, request: float, total: float) -> float | None:
    """Usage in % after adding `request`: 100 when nothing is requested, None when it won't fit."""
    if request <= 0:
        return 100.0
    after = used + request
    if total <= 0 or after > total + _EPSILON:
        return None
    return after * 100 / total


def _describe(request: float, used: float, total: float, unit: Callable[[float], str]) -> str:
    return f"{unit(request)} requested, {unit(max(total - used, 0))} free of {unit(total)}"


def _cpus(n: float) -> str:
    return f"{round(n, 2):g}"


_BYTE_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def _bytes(n: float) -> str:
    """1073741824 -> '1 GiB', 1536 -> '1.5 KiB'."""
    for unit, scale in _BYTE_UNITS:
        if n >= scale:
            return f"{round(n / scale, 2):g} {unit}"
    return f"{int(n)} B"


class Strategy:
    """Orders scored nodes best first: by `keys` (lowest first), remaining ties at random."""

    name: str

    def keys(self, scored: list[tuple[float, Node]]) -> list[tuple]:
        """The sort key of each (score, node)."""
        raise NotImplementedError

    def order(self, scored: list[tuple[float, Node]], rng: random.Random) -> list[Node]:
        keys, rand = self.keys(scored), rng.random
        order = sorted(range(len(scored)), key=lambda i: (keys[i], rand()))
        return [scored[i][1] for i in order]


class Weighted(Strategy):
    """Spread (direction +1): lowest score, then fewest containers.
    Binpack (direction -1): highest score, then most containers. Healthier nodes first in both;
    remaining ties are broken at random."""

    def __init__(self, name: str, direction: int) -> None:
        self.name, self.direction = name, direction

    def keys(self, scored: list[tuple[float, Node]]) -> list[tuple]:
        d = self.direction
        return [(d * score - 10 * node.health, d * len(node.containers)) for score, node in scored]


class RandomStrategy(Strategy):
    """Any node with room, at random."""

    name = "random"

    def keys(self, scored: list[tuple[float, Node]]) -> list[tuple]:
        return [(0,)] * len(scored)


_BINPACK = Weighted("binpack", -1)
STRATEGIES: dict[str, Strategy] = {
    "spread": Weighted("spread", 1), "binpack": _BINPACK, "binpacking": _BINPACK, "random": RandomStrategy()}
