"""Cluster facts the engines cannot hold (node availability and labels, rescheduling in progress,
the containers a node failure would move, the swarm-mode overlay join):
in etcd under the discovery prefix, or in a state file under `--data-dir` for nodes:// and file://.

Both keep an in-memory mirror (`items(kind)`) that is current: etcd's is fed by a watch, so a
replica sees what the primary wrote; writes go to the store first and then to the mirror.
Values are JSON objects; `kind` is a directory (`nodes`, `reschedule`, ...), `key` a name in it.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Protocol

from discovery.backoff import Backoff
from discovery.etcd_store import EtcdStore, Fence, StoreError, WatchCanceled

log = logging.getLogger("shoal.state")
KINDS = ("nodes", "reschedule", "inventory", "overlay")
Listener = Callable[[str, str, "dict | None"], None]


class ClusterState(Protocol):
    """Where the manager keeps what must survive it."""

    def items(self, kind: str) -> dict[str, dict]:
        """The current values of one kind, by key (a copy)."""
        ...

    def get(self, kind: str, key: str) -> dict | None:
        """One current value (without copying the kind)."""
        ...

    async def save(self, kind: str, key: str, value: dict | None, fence: Fence | None = None) -> None:
        """Store (None: delete) one value; with a `fence`, only while this manager leads."""
        ...

    def listen(self, listener: Listener) -> None:
        """Call `listener(kind, key, value)` after every change, ours or another manager's."""
        ...

    async def close(self) -> None:
        ...


class _Mirror:
    """The in-memory copy and its listeners."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        self._listeners: list[Listener] = []

    def items(self, kind: str) -> dict[str, dict]:
        return dict(self._values[kind])

    def get(self, kind: str, key: str) -> dict | None:
        return self._values[kind].get(key)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _apply(self, kind: str, key: str, value: dict | None) -> None:
        if self._values[kind].get(key) == value:
            return
        if value is None:
            self._values[kind].pop(key, None)
        else:
            self._values[kind][key] = value
        for listener in self._listeners:
            listener(kind, key, value)


class FileState(_Mirror):
    """One JSON file, written atomically after every change (one manager per file)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read state file {path}: {exc}") from None
        for kind in KINDS:
            self._values[kind] = dict(raw.get(kind) or {})

    async def save(self, kind: str, key: str, value: dict | None, fence: Fence | None = None) -> None:
        self._apply(kind, key, value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._values, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    async def close(self) -> None:
        pass


class EtcdState(_Mirror):
    """Keys `<prefix><kind>/<key>` in etcd, mirrored by one prefix watch."""

    def __init__(self, store: EtcdStore, prefix: str) -> None:
        super().__init__()
        self._store = store
        self.prefix = prefix
        self._task: asyncio.Task | None = None
        self._loaded = asyncio.Event()

    async def start(self, timeout: float = 10.0) -> None:
        """Load the current values (waits up to `timeout` for etcd), then follow changes."""
        self._task = asyncio.create_task(self._follow(), name="state watch")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        if not self._loaded.is_set():
            log.warning("state not loaded yet prefix=%s (etcd unavailable); continuing", self.prefix)

    def _split(self, full: str) -> tuple[str, str] | None:
        kind, _, key = full[len(self.prefix):].partition("/")
        return (kind, key) if kind in KINDS and key else None

    def _put(self, full: str, raw: str | None) -> None:
        where = self._split(full)
        if where is None:
            return
        try:
            value = None if raw is None else json.loads(raw)
        except ValueError:
            log.warning("state value is not JSON key=%s", full)
            return
        self._apply(*where, value)

    async def _follow(self) -> None:
        backoff = Backoff(cap=5.0)
        revision = 0
        while True:
            try:
                if not revision:
                    values, revision = await self._store.get_prefix(self.prefix)
                    seen = {w for w in map(self._split, values) if w}
                    for kind in KINDS:
                        for key in set(self._values[kind]) - {k for t, k in seen if t == kind}:
                            self._apply(kind, key, None)
                    for full, raw in values.items():
                        self._put(full, raw)
                    self._loaded.set()
                    backoff.reset()
                async for changes, revision in self._store.watch_prefix(self.prefix, revision + 1):
                    for change in changes:
                        self._put(change.key, change.value)
            except WatchCanceled:
                revision = 0
            except StoreError as exc:
                delay = backoff.next()
                log.warning("state watch: etcd unavailable retry_in=%.1fs error=%s", delay, exc)
                await asyncio.sleep(delay)

    async def save(self, kind: str, key: str, value: dict | None, fence: Fence | None = None) -> None:
        raw = None if value is None else json.dumps(value, sort_keys=True)
        await self._store.write(f"{self.prefix}{kind}/{key}", raw, fence)
        self._apply(kind, key, value)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class MemoryState(_Mirror):
    """Nothing kept beyond the process (unit tests, and a manager told to keep no state)."""

    async def save(self, kind: str, key: str, value: dict | None, fence: Fence | None = None) -> None:
        self._apply(kind, key, value)

    async def close(self) -> None:
        pass
