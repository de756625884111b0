"""Counts of the writes to what engines show, process-wide, so that a view of the whole cluster
(its sorted engines, the overlay domains, the `ps` order, the `docker info` rows) is keyed by a few
integers instead of by a walk over thousands of engines, and rebuilt only after one of them changed."""
from __future__ import annotations

from collections import Counter, deque
from typing import Any, Callable, Generic, Iterable, TypeVar

T = TypeVar("T")

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


class PerEngine(Generic[T]):
    """One value for each engine of a list (`values[i]` for the i-th), taken again only for the
    engines that wrote since the last `update` while the list and the context the values depend on
    stay the same objects; all of them otherwise, or when more was written than CHANGES logs."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self.index: dict[str, int] = {}  # engine address -> its place in `values`
        self._basis: tuple = ()  # the engines and the context of the last update (kept alive)
        self._seen = -1  # CHANGES.any at the last update
        self.behind: set = set()  # engines that wrote and are not taken again yet (update's `limit`)

    def update(self, engines: list, context: tuple, take: Callable[[Any], T],
               limit: int | None = None) -> list[tuple[int, T]] | None:
        """Bring `values` up to date with `engines`: the (place, old value) of each value taken
        again, or None when all of them were. With `limit`, at most that many are taken again; the
        others wait in `behind` for the next update."""
        seen, basis = CHANGES.any, (engines, *context)
        same = len(basis) == len(self._basis) and all(a is b for a, b in zip(basis, self._basis))
        writers = CHANGES.writers_since(self._seen) if same else None
        self._seen = seen
        if writers is None:
            self._basis, self.index = basis, {e.addr: i for i, e in enumerate(engines)}
            self.values = [take(e) for e in engines]
            self.behind = set()
            return None
        pending, self.behind = self.behind.union(writers), set()
        while limit is not None and len(pending) > limit:
            self.behind.add(pending.pop())
        changed = []
        for engine in pending:
            i = self.index.get(engine.addr)
            if i is not None and engines[i] is engine:
                changed.append((i, self.values[i]))
                self.values[i] = take(engine)
        return changed
