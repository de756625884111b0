"""Who is the primary manager: always this one (`Solo`), or the holder of an etcd lease-backed
key (`Election`, `--replication`).

Every manager keeps a session lease of `--replication-ttl`, renewed every TTL/3, holding
`<prefix>managers/<advertise>`; the candidate that creates `<prefix>leader` (a transaction:
only if it does not exist) on its lease is the primary. The others watch the key and campaign
again when it goes (its lease expired or was revoked). A primary acts only while its lease is
certainly alive: `is_primary` turns False `MARGIN` before the lease could expire at etcd, counted
from when the last successful renewal was *sent*, so by the time anyone else can create the key
this one has stopped acting, even when it cannot reach etcd to learn it lost.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable, Protocol

from discovery.backoff import Backoff
from discovery.etcd_store import EtcdStore, Fence, StoreError, WatchCanceled
from manager.cluster.metrics import ROLE_CHANGES

log = logging.getLogger("shoal.leader")
RoleListener = Callable[[bool], None]


class Leadership(Protocol):
    """What the parts that act only as primary need of `Solo` or `Election`."""

    @property
    def is_primary(self) -> bool: ...

    @property
    def fence(self) -> Fence | None: ...

    def listen(self, listener: RoleListener) -> None: ...


class Solo:
    """A manager without `--replication`: the primary, always."""

    is_primary = True
    replicated = False
    fence: Fence | None = None
    replicas: list[str] = []

    def __init__(self, advertise: str | None = None) -> None:
        self.primary = advertise

    def listen(self, listener: RoleListener) -> None:
        listener(True)

    async def wait_for_primary(self, timeout: float) -> str | None:
        return self.primary

    async def close(self) -> None:
        pass


class Election:
    """One candidate in the election on `<prefix>leader` (run it with `start`)."""

    replicated = True

    def __init__(self, store: EtcdStore, prefix: str, advertise: str, ttl: float) -> None:
        self._store = store
        self.key = prefix + "leader"
        self.managers_prefix = prefix + "managers/"
        self.advertise = advertise
        self.ttl = max(1, round(ttl))
        self.margin = min(1.0, self.ttl * 0.2)
        self.primary: str | None = None  # the primary's advertise address, when known
        self.managers: set[str] = set()
        self._fence: Fence | None = None
        self._deadline = 0.0  # (loop time) the lease is alive at etcd at least until then
        self._listeners: list[RoleListener] = []
        self._known = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._was_primary = False

    # ---- what the rest of the manager asks ---------------------------------------------------
    @property
    def is_primary(self) -> bool:
        """True only while this manager holds the leader key on a lease that is certainly alive."""
        return self._fence is not None and asyncio.get_running_loop().time() < self._deadline - self.margin

    @property
    def fence(self) -> Fence | None:
        """The guard for writes only the primary may make (None while not primary)."""
        return self._fence if self.is_primary else None

    @property
    def replicas(self) -> list[str]:
        """The other managers' advertise addresses."""
        return sorted(self.managers - {self.advertise})

    def listen(self, listener: RoleListener) -> None:
        """`listener(primary)` now and after every change of this manager's role."""
        self._listeners.append(listener)
        listener(self.is_primary)

    async def wait_for_primary(self, timeout: float) -> str | None:
        """The primary's address, waiting up to `timeout` while none is known."""
        if not self._known.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._known.wait()
        return self.primary

    # ---- running -----------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="election"),
                       asyncio.create_task(self._follow_managers(), name="managers")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _set_primary(self, addr: str | None) -> None:
        self.primary = addr
        if addr:
            self._known.set()
        else:
            self._known.clear()
        self._notify()

    def _notify(self) -> None:
        now = self.is_primary
        if now != self._was_primary:
            self._was_primary = now
            role = "primary" if now else "replica"
            log.info("role changed role=%s advertise=%s", role, self.advertise)
            ROLE_CHANGES.labels(role).inc()
            for listener in self._listeners:
                listener(now)

    async def _run(self) -> None:
        backoff = Backoff(first=0.25, cap=2.0)
        while True:
            lease = 0
            try:
                lease = await self._session()
                backoff.reset()
                await self._campaign(lease)
            except StoreError as exc:
                log.warning("election: etcd unavailable error=%s", exc)
            finally:
                self._step_down()
                if lease:
                    with contextlib.suppress(StoreError):
                        await self._store.revoke(lease, timeout=1.0)
            await asyncio.sleep(backoff.next())

    async def _session(self) -> int:
        """A new lease holding our entry under `managers/`."""
        sent = asyncio.get_running_loop().time()
        lease = await self._store.grant(self.ttl)
        self._deadline = sent + self.ttl
        await self._store.put(self.managers_prefix + self.advertise, self.advertise, lease)
        return lease

    async def _campaign(self, lease: int) -> None:
        """Until the session ends: lead when the key is free, else follow who holds it."""
        keepalive = asyncio.create_task(self._keep_alive(lease), name="lease keepalive")
        try:
            while not keepalive.done():
                created, revision = await self._store.create(self.key, self.advertise, lease)
                if created:
                    self._fence = Fence(self.key, revision)
                    log.info("primary elected advertise=%s ttl=%ds", self.advertise, self.ttl)
                    self._set_primary(self.advertise)
                    self._schedule_step_down_check()
                else:
                    holder, _, revision = await self._store.get(self.key)
                    if holder is None:
                        continue
                    if holder != self.primary:
                        log.info("following primary=%s", holder)
                    self._set_primary(holder)
                watch = asyncio.create_task(self._until_gone(revision))
                await asyncio.wait({keepalive, watch}, return_when=asyncio.FIRST_COMPLETED)
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
                if watch.done() and not watch.cancelled() and watch.exception():
                    raise watch.exception()
                self._step_down()
                self._set_primary(None)
            keepalive.result()
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)

    async def _until_gone(self, revision: int) -> None:
        """Return once the leader key is deleted (watched from `revision` on)."""
        while True:
            try:
                async for changes, revision in self._store.watch_prefix(self.key, revision + 1, exact=True):
                    if any(c.value is None for c in changes):
                        return
            except WatchCanceled:
                return

    async def _keep_alive(self, lease: int) -> None:
        """Renew every TTL/3; return when the lease is lost or cannot be renewed in time."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.ttl / 3, max(0.0, self._deadline - self.margin - loop.time())))
            if loop.time() >= self._deadline - self.margin:
                log.warning("election: lease not renewed in time lease=%x", lease)
                return
            sent = loop.time()
            try:
                remaining = await self._store.keepalive(lease)
            except StoreError as exc:
                log.warning("election: keepalive failed error=%s", exc)
                await asyncio.sleep(0.2)
                continue
            if remaining <= 0:
                log.warning("election: lease lost lease=%x", lease)
                return
            self._deadline = sent + remaining
            self._schedule_step_down_check()

    def _schedule_step_down_check(self) -> None:
        """Tell listeners the moment `is_primary` turns False by the clock alone."""
        if self._fence is not None:
            loop = asyncio.get_running_loop()
            loop.call_at(self._deadline - self.margin + 0.01, self._notify)

    def _step_down(self) -> None:
        if self._fence is not None:
            log.info("stepping down advertise=%s", self.advertise)
        self._fence = None
        self._notify()

    async def _follow_managers(self) -> None:
        """Keep `managers` current from the `managers/` keys."""
        backoff = Backoff(cap=5.0)
        while True:
            try:
                found, revision = await self._store.get_prefix(self.managers_prefix)
                self.managers = set(found.values())
                async for changes, revision in self._store.watch_prefix(self.managers_prefix, revision + 1):
                    for change in changes:
                        addr = change.key[len(self.managers_prefix):]
                        (self.managers.add if change.value else self.managers.discard)(addr)
                backoff.reset()
            except (StoreError, WatchCanceled) as exc:
                log.info("managers watch interrupted error=%s", exc)
                await asyncio.sleep(backoff.next())
