"""A discovery followed in the background, remembering every membership it reported and when
(for tests and benchmarks that wait on membership)."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from discovery.base import Discovery


class MembershipWatcher:
    """Runs `discovery.watch()` in the background and remembers every set it yielded, and when."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery
        self.history: list[tuple[float, frozenset[str]]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MembershipWatcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            async for addrs in self._discovery.watch():
                self.history.append((time.monotonic(), addrs))
                self._changed.set()
        finally:
            self._changed.set()

    @property
    def current(self) -> frozenset[str] | None:
        """The last set yielded, None before the first."""
        return self.history[-1][1] if self.history else None

    async def until(self, predicate: Callable[[frozenset[str]], bool], timeout: float) -> float:
        """Seconds until the watched set satisfies `predicate`; AssertionError after `timeout`."""
        assert self._task is not None
        start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while self.current is None or not predicate(self.current):
                    self._changed.clear()
                    if self._task.done():
                        self._task.result()
                        raise AssertionError("watch() ended")
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"watched membership is still {self.current} after {timeout} s") from None
        return time.monotonic() - start
