"""Counts of the writes to what engines show, process-wide, so that a view of the whole cluster
(its sorted engines, the overlay domains, the `ps` order, the `docker info` rows) is keyed by a few
integers instead of by a walk over thousands of engines, and rebuilt only after one of them changed."""
from __future__ import annotations

from collections import Counter, deque
from typing import Any, Iterable

# The Engine attributes whose writes are counted (`generation` stands for all of its cache and health).
WATCHED = frozenset({"id", "name", "state", "error", "updated_at", "availability", "generation", "networks",
                     "membership"})


class Changes:
    """How often each watched attribute of any engine was written, how often any was, and by whom
    lately (the last LOG writes)."""

    LOG = 8192

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self.any = 0
        self._log: deque[tuple[int, Any]] = deque(maxlen=self.LOG)

    def wrote(self, attribute: str, owner: Any) -> None:
        self._counts[attribute] += 1
        self.any += 1
        self._log.append((self.any, owner))

    def writers_since(self, seen: int) -> Iterable[Any] | None:
        """Who wrote since `any` was `seen` (repeats possible); None: too long ago to tell."""
        if seen == self.any:
            return ()
        if not self._log or self._log[0][0] > seen + 1:
            return None
        writers = []
        for count, owner in reversed(self._log):
            if count <= seen:
                break
            writers.append(owner)
        return writers

    def key(self, *attributes: str) -> tuple[int, ...]:
        """Changes whenever one of `attributes` of some engine was written."""
        return tuple(self._counts[a] for a in attributes)


CHANGES = Changes()
