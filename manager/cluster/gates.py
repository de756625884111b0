"""How much engine work runs at once across all engines, and what waits for what."""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Callable


class Foreground:
    """A semaphore for foreground work (listings) that background work can wait out: `quiet()`
    returns once none is running or waiting, so that after a start every engine's listing (what
    makes it Healthy) goes before the background inspects of the containers listed so far."""

    def __init__(self, limit: int) -> None:
        self._gate = asyncio.Semaphore(limit)
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        self._enter()
        try:
            async with self._gate:
                yield
        finally:
            self._leave()

    def expect(self) -> Callable[[], None]:
        """Foreground work on its way (an engine from its validation to its first listing): `quiet()`
        waits for it too, until the function returned is called (calls after the first do nothing)."""
        self._enter()
        pending = [True]

        def done() -> None:
            if pending:
                pending.clear()
                self._leave()
        return done

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if not self._busy:
            self._idle.set()

    async def quiet(self) -> None:
        """Until no foreground work is running or waiting."""
        await self._idle.wait()


# Full refreshes (one listing each) at once across all engines.
LISTINGS = Foreground(64)
# Inspects at once across all engines of containers known from a listing only: after a start the
# engines are Healthy from their listings, and the details (reservations, exact times, the inspect
# document) follow in the background, after the listings and without crowding out the clients' calls.
DETAILS = asyncio.Semaphore(16)
