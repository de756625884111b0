"""The etcd v3 backend: engines register under a prefix with a lease; the manager lists the prefix
and watches it from the listed revision (classic Swarm's key layout, v3 leases instead of v2 TTLs)."""
from __future__ import annotations

import asyncio
import logging
import math
from typing import AsyncIterator

from discovery.backoff import Backoff
from discovery.base import HealthCheck
from discovery.durations import format_duration
from discovery.etcd_store import EtcdStore, StoreError, TlsFiles, WatchCanceled

log = logging.getLogger(__name__)
LEAVE_TIMEOUT = 1.5


class EtcdDiscovery:
    """Membership in etcd: one key `<nodes_prefix><host:port>` = `<host:port>` per engine."""

    def __init__(self, endpoints: list[str], nodes_prefix: str, tls: TlsFiles | None, retry_cap: float) -> None:
        self.endpoints = endpoints
        self.nodes_prefix = nodes_prefix
        self._tls = tls
        self._retry_cap = retry_cap

    def _store(self) -> EtcdStore:
        return EtcdStore(self.endpoints, self._tls)

    async def watch(self) -> AsyncIterator[frozenset[str]]:
        """List, then follow changes from the listed revision; on a cancelled (compacted) watch list
        again; while etcd is unreachable keep retrying and yield nothing (the last set stands)."""
        backoff = Backoff(cap=self._retry_cap)
        last: frozenset[str] | None = None
        async with self._store() as store:
            while True:
                try:
                    members, revision = await store.get_prefix(self.nodes_prefix)
                    log.info("discovery: listed prefix=%s nodes=%d revision=%d",
                             self.nodes_prefix, len(members), revision)
                    backoff.reset()
                    async for changes in _follow(store, self.nodes_prefix, members, revision):
                        if changes != last:
                            last = changes
                            yield last
                except WatchCanceled as err:
                    log.warning("discovery: watch canceled, listing again prefix=%s compact_revision=%d",
                                self.nodes_prefix, err.compact_revision)
                except StoreError as err:
                    delay = backoff.next()
                    log.warning("discovery: etcd unavailable endpoints=%s retry_in=%s error=%s",
                                ",".join(self.endpoints), format_duration(round(delay, 2)), err)
                    await asyncio.sleep(delay)

    async def register(self, addr: str, ttl: float, heartbeat: float, alive: HealthCheck | None = None) -> None:
        """Hold `<prefix><addr>` on a lease of `ttl`, one keepalive per `heartbeat` while `alive()`
        says so; re-register when the lease is gone; revoke it (leave at once) when cancelled."""
        key = self.nodes_prefix + addr
        lease_ttl = max(1, math.ceil(ttl))
        backoff = Backoff(cap=min(heartbeat, 5.0))
        lease = 0
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        async with self._store() as store:
            try:
                while True:
                    await asyncio.sleep(next_beat - loop.time())
                    next_beat = max(next_beat + heartbeat, loop.time())   # a steady cadence, no drift
                    if alive is not None and not await alive():
                        continue
                    try:
                        if not lease or await store.keepalive(lease) == 0:
                            lease = await _put_on_new_lease(store, key, addr, lease_ttl)
                        backoff.reset()
                    except StoreError as err:
                        delay = backoff.next()
                        log.warning("discovery: etcd unavailable addr=%s retry_in=%s error=%s",
                                    addr, format_duration(round(delay, 2)), err)
                        next_beat = loop.time() + delay
            finally:
                if lease:
                    await _leave(store, addr, lease)


async def _follow(store: EtcdStore, prefix: str, members: dict[str, str],
                  revision: int) -> AsyncIterator[frozenset[str]]:
    """The set listed, then the set after each watched batch of changes."""
    yield frozenset(members.values())
    async for changes in store.watch_prefix(prefix, revision + 1):
        for change in changes:
            if change.value is None:
                members.pop(change.key, None)
            else:
                members[change.key] = change.value
        yield frozenset(members.values())


async def _put_on_new_lease(store: EtcdStore, key: str, addr: str, ttl: int) -> int:
    """Grant a lease and write the key on it; the lease counts only once the key is written."""
    lease = await store.grant(ttl)
    await store.put(key, addr, lease)
    log.info("discovery: registered addr=%s key=%s ttl=%ds lease=%x", addr, key, ttl, lease)
    return lease


async def _leave(store: EtcdStore, addr: str, lease: int) -> None:
    """Revoke our lease so the node leaves now rather than after its TTL."""
    try:
        await store.revoke(lease, timeout=LEAVE_TIMEOUT)
    except StoreError as err:
        log.warning("discovery: could not revoke addr=%s lease=%x error=%s", addr, lease, err)
    else:
        log.info("discovery: left addr=%s lease=%x", addr, lease)
