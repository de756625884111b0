"""The few etcd v3 calls discovery needs, over etcd3aio: every call has a deadline, every failure
is a `StoreError`, and a watch that etcd cancels (compacted revision) raises instead of hanging.

etcd3aio and gRPC are imported when etcd is first used: a manager with nodes:// or file:// discovery
never loads them (about 90 ms of its start-up)."""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etcd3aio import Etcd3Client

CALL_TIMEOUT = 5.0
RECONNECT_BACKOFF = [("grpc.initial_reconnect_backoff_ms", 250), ("grpc.min_reconnect_backoff_ms", 250),
                     ("grpc.max_reconnect_backoff_ms", 2000)]
_PUT = 0


class StoreError(Exception):
    """etcd could not be reached in time, or refused the call."""


class WatchCanceled(Exception):
    """etcd cancelled a watch; `compact_revision` > 0 when its start revision was compacted."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"watch canceled by etcd (compact_revision={compact_revision})")
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class TlsFiles:
    """PEM contents for a TLS connection to etcd."""

    ca: bytes
    cert: bytes
    key: bytes


@dataclass(frozen=True)
class Fence:
    """A write guard: the transaction applies only while `key` still has `create_revision`
    (the leader key this manager created: nobody else has taken the lead since)."""

    key: str
    create_revision: int


class Fenced(StoreError):
    """A fenced write was refused: the fence key is gone or was re-created by someone else."""


@dataclass(frozen=True)
class Change:
    """One watched key's new value, or None when it was deleted (or its lease expired)."""

    key: str
    value: str | None


def _describe(err: BaseException) -> str:
    import grpc.aio

    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err) or type(err).__name__


@contextlib.contextmanager
def _store_errors(operation: str) -> Iterator[None]:
    """Turn the client's many failure types into `StoreError`."""
    import grpc.aio
    from etcd3aio import EtcdError

    try:
        yield
    except (EtcdError, grpc.aio.AioRpcError, TimeoutError, OSError) as err:
        raise StoreError(f"{operation}: {_describe(err)}") from err


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


async def _resolve(endpoints: list[str]) -> list[str]:
    """IPv4 `ip:port` for each endpoint: the client's gRPC target accepts addresses only."""
    loop = asyncio.get_running_loop()
    resolved = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        if not _is_ipv4(host):
            infos = await loop.getaddrinfo(host, int(port), family=socket.AF_INET, type=socket.SOCK_STREAM)
            host = infos[0][4][0]
        resolved.append(f"{host}:{port}")
    return resolved


class EtcdStore:
    """An open connection to etcd (use as `async with`)."""

    def __init__(self, endpoints: list[str], tls: TlsFiles | None = None) -> None:
        self._endpoints = endpoints
        self._tls = tls
        self._client: Etcd3Client | None = None

    async def __aenter__(self) -> EtcdStore:
        from etcd3aio import Etcd3Client

        with _store_errors("resolve etcd endpoints"):
            targets = await _resolve(self._endpoints)
        tls_args: dict[str, bytes] = {}
        server_name = None
        if self._tls is not None:
            tls_args = {"ca_cert": self._tls.ca, "cert_chain": self._tls.cert, "cert_key": self._tls.key}
            host = self._endpoints[0].rpartition(":")[0]
            server_name = None if _is_ipv4(host) else host   # verify the certificate against the name
        self._client = Etcd3Client(targets, tls_server_name=server_name, watch_max_reconnect_backoff_seconds=1.0,
                                   **tls_args)
        # gRPC's reconnect backoff grows to 120 s while etcd is away, so a long outage would delay
        # recovery by up to that much; the client offers no setting, so extend its channel options.
        self._client._manager.grpc_options.extend(RECONNECT_BACKOFF)
        await self._client.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def _etcd(self) -> Etcd3Client:
        """The connected client (only inside `async with`)."""
        if self._client is None:
            raise RuntimeError("EtcdStore used outside `async with`")
        return self._client

    async def get_prefix(self, prefix: str) -> tuple[dict[str, str], int]:
        """Every key under `prefix` with its value, and the store revision of that view."""
        from etcd3aio import prefix_range_end

        with _store_errors("list"):
            resp = await self._etcd.kv.get(prefix, range_end=prefix_range_end(prefix), timeout=CALL_TIMEOUT)
        return {kv.key.decode(): kv.value.decode() for kv in resp.kvs}, resp.header.revision

    async def get(self, key: str) -> tuple[str | None, int, int]:
        """(value or None, its create revision, the store revision) of one key."""
        with _store_errors("get"):
            resp = await self._etcd.kv.get(key, timeout=CALL_TIMEOUT)
        if not resp.kvs:
            return None, 0, resp.header.revision
        return resp.kvs[0].value.decode(), resp.kvs[0].create_revision, resp.header.revision

    async def create(self, key: str, value: str, lease: int) -> tuple[bool, int]:
        """Write `key` on `lease` only if it does not exist: (created, the key's create revision
        when created, else the store revision to watch from)."""
        kv = self._etcd.kv
        with _store_errors("create"):
            resp = await kv.txn([kv.txn_compare_create_revision(key, 0)],
                                [kv.txn_op_put(key, value, lease=lease)], timeout=CALL_TIMEOUT)
        return resp.succeeded, resp.header.revision

    async def write(self, key: str, value: str | None, fence: Fence | None = None) -> None:
        """Put (or, with None, delete) `key`; with a `fence`, only while the fence holds (else `Fenced`)."""
        kv = self._etcd.kv
        op = kv.txn_op_delete(key) if value is None else kv.txn_op_put(key, value)
        compare = [] if fence is None else [kv.txn_compare_create_revision(fence.key, fence.create_revision)]
        with _store_errors("write"):
            resp = await kv.txn(compare, [op], timeout=CALL_TIMEOUT)
        if not resp.succeeded:
            raise Fenced(f"write {key}: {fence.key if fence else ''} is no longer ours")

    async def watch_prefix(self, prefix: str, start_revision: int,
                           exact: bool = False) -> AsyncIterator[tuple[list[Change], int]]:
        """Batches of changes under `prefix` from `start_revision` on, each with the revision of its
        last event (`exact`: the one key `prefix`). Raises `WatchCanceled` (compacted: list again) and `StoreError` when the stream
        breaks. The client would reconnect by itself, but resumes after the header revision of the last
        response, which can lie past events not yet delivered: its second `created` response ends this
        watch instead, so the caller resumes after the last event it really got."""
        from etcd3aio import prefix_range_end

        created = False
        with _store_errors("watch"):
            responses = self._etcd.watch.watch(prefix, range_end=None if exact else prefix_range_end(prefix),
                                                start_revision=start_revision)
            async with contextlib.aclosing(responses):
                async for resp in responses:
                    if resp.canceled or resp.compact_revision:
                        raise WatchCanceled(resp.compact_revision)
                    if resp.created and created:
                        raise StoreError("watch: stream was interrupted")
                    created = created or resp.created
                    if resp.events:
                        yield ([Change(ev.kv.key.decode(), ev.kv.value.decode() if ev.type == _PUT else None)
                                for ev in resp.events], resp.events[-1].kv.mod_revision)
        raise StoreError("watch: stream ended")

    async def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; its ID."""
        with _store_errors("lease grant"):
            return (await self._etcd.lease.grant(ttl, timeout=CALL_TIMEOUT)).ID

    async def put(self, key: str, value: str, lease: int) -> None:
        """Write `key` attached to `lease` (deleted with it)."""
        with _store_errors("put"):
            await self._etcd.kv.put(key, value, lease=lease, timeout=CALL_TIMEOUT)

    async def keepalive(self, lease: int) -> int:
        """Refresh `lease` once; its TTL now, or 0 when etcd no longer has it."""
        with _store_errors("lease keepalive"):
            async with asyncio.timeout(CALL_TIMEOUT):
                call = self._etcd.lease.keep_alive(lease)
                try:
                    async for resp in call:
                        return max(resp.TTL, 0)
                finally:
                    call.cancel()
        raise StoreError("lease keepalive: no answer")

    async def revoke(self, lease: int, timeout: float = CALL_TIMEOUT) -> None:
        """End `lease` now, deleting its keys."""
        with _store_errors("lease revoke"):
            await self._etcd.lease.revoke(lease, timeout=timeout, max_attempts=1)
