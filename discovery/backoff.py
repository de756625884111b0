"""Retry delays that double up to a cap, with jitter so a fleet does not retry in step."""
from __future__ import annotations

import random


class Backoff:
    """`next()` gives the delay before the next retry; `reset()` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 5.0) -> None:
        self._first = min(first, cap)
        self._cap = cap
        self._delay = self._first

    def next(self) -> float:
        """The delay to wait now (±20 % jitter); the following one doubles."""
        delay = self._delay
        self._delay = min(delay * 2, self._cap)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        """Start again from the first delay."""
        self._delay = self._first
