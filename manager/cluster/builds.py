"""Which engine runs each BuildKit build: `POST /build` names its session and build ID once the
scheduler has picked the engine; the session's hijack (`POST /session`, which the CLI sends at
the same time, often first) and `POST /build/cancel` are sent to that engine."""
from __future__ import annotations

import asyncio

from manager.cluster.engine import Engine

WAIT = 5.0  # how long a session or a cancel waits for its build to be placed (classic Swarm's 5 s)


class BuildSessions:
    """Session ID and build ID -> the engine of a build in progress."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Engine]] = {}

    def _future(self, key: str) -> asyncio.Future[Engine]:
        if key not in self._waiting:
            self._waiting[key] = asyncio.get_running_loop().create_future()
        return self._waiting[key]

    def placed(self, engine: Engine, *keys: str) -> None:
        """The build using these session / build IDs runs on `engine`."""
        for key in filter(None, keys):
            future = self._future(key)
            if not future.done():
                future.set_result(engine)

    def finished(self, *keys: str) -> None:
        """The build is over: forget its IDs."""
        for key in filter(None, keys):
            self._waiting.pop(key, None)

    async def engine_of(self, key: str, wait: float = WAIT) -> Engine | None:
        """The engine of the build using `key`, waiting up to `wait` seconds for it to be placed."""
        future = self._future(key)
        try:
            return await asyncio.wait_for(asyncio.shield(future), wait)
        except asyncio.TimeoutError:
            if self._waiting.get(key) is future:
                del self._waiting[key]
            return None
