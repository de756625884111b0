"""The last placements the scheduler decided: the node chosen, or why no node fitted."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Mapping

from manager.cluster.metrics import PLACEMENTS, SCHEDULING_SECONDS
from scheduler import ContainerSpec, NoFit

RECENT_PLACEMENTS = 50
PLACED, NO_FIT = "placed", "no_fit"


@dataclass(frozen=True)
class Placement:
    """One scheduling decision; `rule` and `reasons` (node -> why) are set for a no-fit."""

    time: float
    kind: str  # container, build, network
    name: str
    image: str
    outcome: str
    took_ms: float
    node: str = ""
    rule: str = ""
    reasons: Mapping[str, str] = field(default_factory=dict)


class PlacementLog:
    """The last RECENT_PLACEMENTS decisions of one `strategy`; `count` grows with every one (a
    change marker); each also counts in the placement metrics."""

    def __init__(self, strategy: str, size: int = RECENT_PLACEMENTS) -> None:
        self.strategy = strategy
        self._recent: collections.deque[Placement] = collections.deque(maxlen=size)
        self.count = 0

    def placed(self, kind: str, spec: ContainerSpec, node: str, took: float) -> None:
        self._add(Placement(time.time(), kind, spec.name or "", spec.image or "", PLACED, round(took * 1000, 2),
                            node))

    def no_fit(self, kind: str, spec: ContainerSpec, error: NoFit, took: float) -> None:
        self._add(Placement(time.time(), kind, spec.name or "", spec.image or "", NO_FIT, round(took * 1000, 2),
                            rule=error.rule, reasons=dict(error.reasons)))

    def recent(self) -> list[Placement]:
        """Oldest first."""
        return list(self._recent)

    def _add(self, placement: Placement) -> None:
        self._recent.append(placement)
        self.count += 1
        PLACEMENTS.labels(self.strategy, placement.outcome, placement.rule).inc()
        SCHEDULING_SECONDS.labels(placement.outcome).observe(placement.took_ms / 1000)
