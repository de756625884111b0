"""Static backends: `nodes://` (addresses in the URL) and `file://` (addresses in a file)."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import AsyncIterator

from discovery.addresses import parse_list
from discovery.base import DiscoveryError, HealthCheck
from shoal.durations import format_duration

log = logging.getLogger(__name__)


class NodesDiscovery:
    """A fixed list of engines, given in the URL."""

    def __init__(self, addrs: list[str]) -> None:
        self._addrs = frozenset(addrs)

    async def watch(self) -> AsyncIterator[frozenset[str]]:
        """The list once; it never changes."""
        yield self._addrs
        await asyncio.Event().wait()

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Not possible: the list is the URL itself."""
        raise DiscoveryError("nodes:// discovery is a fixed list and cannot be joined: "
                             "put the engine's address in the manager's discovery URL, or use etcd://")


def _stamp(path: str) -> tuple[int, int, int]:
    """What changes when a file is rewritten or replaced."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class FileDiscovery:
    """Engines listed in a file (one `host:port` or range per line, `#` comments), re-read on change.

    The file is checked every `poll` seconds; while it is missing or unreadable (also before it first
    appears) it keeps being retried, with a warning at most every `warn_every` seconds.
    """

    def __init__(self, path: str, poll: float, warn_every: float | None = None) -> None:
        self._path = path
        self._poll = poll
        self._warn_every = poll if warn_every is None else warn_every

    def _load(self) -> tuple[tuple[int, int, int], frozenset[str]]:
        """The file's identity stamp and its addresses; bad lines are logged and skipped."""
        stamp = _stamp(self._path)
        with open(self._path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        addrs: set[str] = set()
        for number, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                addrs.update(parse_list([entry]))
            except ValueError as err:
                log.warning("discovery: skipped line file=%s line=%d reason=%s", self._path, number, err)
        return stamp, frozenset(addrs)

    async def watch(self) -> AsyncIterator[frozenset[str]]:
        """The file's addresses once it can be read, then again whenever they change; while it
        cannot be read, the last set is kept."""
        stamp: tuple[int, int, int] | None = None
        current: frozenset[str] | None = None
        warned_at: float | None = None
        while True:
            try:
                if stamp is None or _stamp(self._path) != stamp:
                    stamp, addrs = self._load()
                    if addrs != current:
                        if current is not None or warned_at is not None:
                            log.info("discovery: file read file=%s nodes=%d", self._path, len(addrs))
                        current = addrs
                        yield current
                warned_at = None
            except OSError as err:
                stamp = None
                now = time.monotonic()
                if warned_at is None or now - warned_at >= self._warn_every:
                    warned_at = now
                    log.warning("discovery: cannot read file=%s error=%s nodes=%d retry_every=%s", self._path,
                                err.strerror, len(current or ()), format_duration(self._poll))
            await asyncio.sleep(self._poll)

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Not possible: the file is edited by hand."""
        raise DiscoveryError("file:// discovery cannot be joined: add the engine's address to the file, "
                             "or use etcd://")
