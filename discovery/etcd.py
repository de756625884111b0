"""The etcd v3 backend: engines register under a prefix with a lease; the manager lists the prefix
and watches it from the listed revision (classic Swarm's key layout, v3 leases instead of v2 TTLs)."""
from __future__ import annotations

import asyncio
import logging
import math
from typing import AsyncIterator

from discovery.backoff import Backoff
from discovery.base import DiscoveryError, HealthCheck
from shoal.durations import format_duration
from discovery.etcd_store import EtcdStore, StoreError, TlsFiles, WatchCanceled

log = logging.getLogger(__name__)
LEAVE_TIMEOUT = 1.5
STATE_DIR = "shoal/"  # Shoal's cluster state under `state_prefix`: `<kind>/<key>` = JSON


class EtcdDiscovery:
    """Membership in etcd: one key `<nodes_prefix><host:port>` = `<host:port>` per engine."""

    def __init__(self, endpoints: list[str], nodes_prefix: str, tls: TlsFiles | None, retry_cap: float) -> None:
        self.endpoints = endpoints
        self.nodes_prefix = nodes_prefix
        self._tls = tls
        self._retry_cap = retry_cap

    def store(self) -> EtcdStore:
        """A new connection to the same etcd members (use as `async with`)."""
        return EtcdStore(self.endpoints, self._tls)

    @property
    def state_prefix(self) -> str:
        """Where cluster facts beside membership live: the parent of the nodes directory
        (`/<prefix>/docker/swarm/` by default, so the leader key is classic's `docker/swarm/leader`)."""
        parent = self.nodes_prefix.rstrip("/").rpartition("/")[0]
        if not parent:
            raise DiscoveryError("the etcd discovery path needs a prefix to hold cluster state, "
                                 "e.g. etcd://host:2379/<prefix>")
        return parent + "/"

    async def watch(self) -> AsyncIterator[frozenset[str]]:
        """The listed set, then the set after every change; the last set stands while etcd is away."""
        last: frozenset[str] | None = None
        async for members in self._views():
            if members != last:
                last = members
                yield last

    async def _views(self) -> AsyncIterator[frozenset[str]]:
        """List, then watch from the listed revision; after a broken stream resume from the last
        revision seen; when that revision was compacted (watch canceled), list again."""
        backoff = Backoff(cap=self._retry_cap)
        members: dict[str, str] = {}
        revision = 0                                            # 0: list before watching
        async with self.store() as store:
            while True:
                try:
                    if not revision:
                        members, revision = await store.get_prefix(self.nodes_prefix)
                        log.info("discovery: listed prefix=%s nodes=%d revision=%d",
                                 self.nodes_prefix, len(members), revision)
                        backoff.reset()
                        yield frozenset(members.values())
                    async for changes, revision in store.watch_prefix(self.nodes_prefix, revision + 1):
                        for change in changes:
                            if change.value is None:
                                members.pop(change.key, None)
                            else:
                                members[change.key] = change.value
                        backoff.reset()
                        yield frozenset(members.values())
                except WatchCanceled as err:
                    log.warning("discovery: watch canceled, listing again prefix=%s compact_revision=%d",
                                self.nodes_prefix, err.compact_revision)
                    revision = 0
                except StoreError as err:
                    delay = backoff.next()
                    log.warning("discovery: etcd unavailable endpoints=%s retry_in=%s resume_revision=%d "
                                "error=%s", ",".join(self.endpoints), format_duration(round(delay, 2)),
                                revision + 1 if revision else 0, err)
                    await asyncio.sleep(delay)

    def state_key(self, kind: str, key: str) -> str:
        """The etcd key of one value of the manager's cluster state."""
        return f"{self.state_prefix}{STATE_DIR}{kind}/{key}"

    async def read_state(self, kind: str, key: str) -> str | None:
        """One value of the manager's cluster state (JSON text), None when it has none."""
        async with self.store() as store:
            value, _, _ = await store.get(self.state_key(kind, key))
        return value

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Hold `<prefix><addr>` on a lease of `ttl`, one keepalive per `heartbeat` while `alive()`
        says so; re-register when the lease is gone; revoke it (leave at once) when cancelled."""
        backoff = Backoff(cap=min(heartbeat, 5.0))
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        async with self.store() as store:
            registration = _Registration(store, self.nodes_prefix + addr, addr, max(1, math.ceil(ttl)))
            try:
                while True:
                    await asyncio.sleep(next_beat - loop.time())
                    next_beat = max(next_beat + heartbeat, loop.time())   # a steady cadence, no drift
                    if alive is not None and not await alive():
                        continue
                    try:
                        await registration.refresh()
                        backoff.reset()
                    except StoreError as err:
                        delay = backoff.next()
                        log.warning("discovery: etcd unavailable addr=%s retry_in=%s error=%s",
                                    addr, format_duration(round(delay, 2)), err)
                        next_beat = loop.time() + delay
            finally:
                await registration.leave()


class _Registration:
    """One key on its own lease: written, kept alive, written again when the lease is lost, revoked on leaving."""

    def __init__(self, store: EtcdStore, key: str, addr: str, ttl: int) -> None:
        self._store = store
        self._key = key
        self._addr = addr
        self._ttl = ttl
        self._lease = 0
        self._written = False

    async def refresh(self) -> None:
        """One keepalive; a new lease and key when etcd no longer has ours."""
        if self._written and await self._store.keepalive(self._lease) > 0:
            return
        self._written = False
        self._lease = await self._store.grant(self._ttl)      # revoked on leaving from here on
        await self._store.put(self._key, self._addr, self._lease)
        self._written = True
        log.info("discovery: registered addr=%s key=%s ttl=%ds lease=%x", self._addr, self._key, self._ttl,
                 self._lease)

    async def leave(self) -> None:
        """Revoke our lease so the node leaves now rather than after its TTL."""
        if not self._lease:
            return
        try:
            await self._store.revoke(self._lease, timeout=LEAVE_TIMEOUT)
        except StoreError as err:
            log.warning("discovery: could not revoke addr=%s lease=%x error=%s", self._addr, self._lease, err)
        else:
            log.info("discovery: left addr=%s lease=%x", self._addr, self._lease)
