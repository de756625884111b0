"""Static backends: `nodes://` (addresses in the URL) and `file://` (addresses in a file)."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import AsyncIterator

from discovery.addresses import parse_list
from discovery.base import DiscoveryError, HealthCheck

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
    """Engines listed in a file (one `host:port` or range per line, `#` comments), re-read on change."""

    def __init__(self, path: str, poll: float) -> None:
        self._path = path
        self._poll = poll

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
        """The file's addresses, then again whenever they change; an unreadable file keeps the last set."""
        try:
            stamp, current = self._load()
        except OSError as err:
            raise DiscoveryError(f"cannot read discovery file {self._path}: {err.strerror}") from None
        yield current
        failing = False
        while True:
            await asyncio.sleep(self._poll)
            try:
                if _stamp(self._path) == stamp:
                    continue
                stamp, addrs = self._load()
            except OSError as err:
                if not failing:
                    log.warning("discovery: cannot read file=%s error=%s (keeping %d nodes)",
                                self._path, err.strerror, len(current))
                failing = True
                continue
            failing = False
            if addrs != current:
                log.info("discovery: file changed file=%s nodes=%d", self._path, len(addrs))
                current = addrs
                yield current

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Not possible: the file is edited by hand."""
        raise DiscoveryError("file:// discovery cannot be joined: add the engine's address to the file, "
                             "or use etcd://")
