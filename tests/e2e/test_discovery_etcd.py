"""etcd discovery against a real etcd: key layout, leases, watch across restarts and compaction."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from etcd3aio import Etcd3Client

from discovery import HealthCheck, from_url
from discovery.watcher import MembershipWatcher
from lab.etcd import EtcdServer
from lab.procs import free_port
from lab.tls import make_tls

TTL, HEARTBEAT = 3.0, 1.0


@contextlib.asynccontextmanager
async def registered(url: str, addr: str, alive: HealthCheck | None = None,
                     options: dict[str, str] | None = None) -> AsyncIterator[asyncio.Task[None]]:
    """`addr` kept registered in the background (as `shoal join` does) while inside; leaves on exit."""
    task = asyncio.create_task(from_url(url, options, HEARTBEAT).register(addr, TTL, HEARTBEAT, alive=alive))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_key_layout_is_classic_swarms_on_a_lease(etcd: EtcdServer) -> None:
    url = f"etcd://{etcd.endpoint}/layout"
    async with registered(url, "10.1.0.1:2375"), MembershipWatcher(from_url(url)) as watcher, \
            Etcd3Client([etcd.endpoint]) as client:
        await watcher.until(lambda s: s == {"10.1.0.1:2375"}, timeout=3)
        resp = await client.kv.get("/layout/docker/swarm/nodes/10.1.0.1:2375", timeout=2)
        assert [kv.value for kv in resp.kvs] == [b"10.1.0.1:2375"]
        lease = await client.lease.time_to_live(resp.kvs[0].lease, timeout=2)
        assert lease.grantedTTL == TTL and 0 < lease.TTL <= TTL


async def test_kv_path_overrides_the_nodes_directory(etcd: EtcdServer) -> None:
    url, options = f"etcd://{etcd.endpoint}/custom", {"kv.path": "my/nodes"}
    async with registered(url, "10.2.0.1:2375", options=options), \
            MembershipWatcher(from_url(url, options)) as watcher, Etcd3Client([etcd.endpoint]) as client:
        await watcher.until(lambda s: s == {"10.2.0.1:2375"}, timeout=3)
        resp = await client.kv.get("/custom/my/nodes/10.2.0.1:2375", timeout=2)
        assert [kv.value for kv in resp.kvs] == [b"10.2.0.1:2375"]


async def test_nodes_joining_before_and_after_the_watcher_are_seen_and_leave_at_once(etcd: EtcdServer) -> None:
    url = f"etcd://{etcd.endpoint}/joins"
    async with registered(url, "10.3.0.1:2375") as early:
        await asyncio.sleep(0.3)
        async with MembershipWatcher(from_url(url)) as watcher:
            await watcher.until(lambda s: s == {"10.3.0.1:2375"}, timeout=3)
            async with registered(url, "10.3.0.2:2375"):
                await watcher.until(lambda s: s == {"10.3.0.1:2375", "10.3.0.2:2375"}, timeout=3)
                early.cancel()
                left = await watcher.until(lambda s: s == {"10.3.0.2:2375"}, timeout=TTL)
                assert left < 1.0, "a node that leaves must be gone at once, not after its TTL"


async def test_a_node_whose_health_check_fails_expires_within_the_ttl(etcd: EtcdServer) -> None:
    url, engine_up = f"etcd://{etcd.endpoint}/health", True

    async def alive() -> bool:
        return engine_up

    async with registered(url, "10.4.0.1:2375", alive=alive), MembershipWatcher(from_url(url)) as watcher:
        await watcher.until(lambda s: s == {"10.4.0.1:2375"}, timeout=3)
        engine_up = False
        await watcher.until(lambda s: not s, timeout=TTL + 1)
        engine_up = True
        await watcher.until(lambda s: s == {"10.4.0.1:2375"}, timeout=HEARTBEAT + 2)


async def test_etcd_restart_loses_no_node_and_the_watch_resumes() -> None:
    with EtcdServer() as server:                                # its own: this test restarts it
        url = f"etcd://{server.endpoint}/restart"
        async with registered(url, "10.5.0.1:2375"), MembershipWatcher(from_url(url)) as watcher:
            await watcher.until(lambda s: s == {"10.5.0.1:2375"}, timeout=3)
            seen_before_restart = len(watcher.history) - 1
            server.stop()
            await asyncio.sleep(1.0)
            server.start()
            async with registered(url, "10.5.0.2:2375"):
                await watcher.until(lambda s: s == {"10.5.0.1:2375", "10.5.0.2:2375"}, timeout=5)
                await asyncio.sleep(TTL + 1)                    # the first node's lease is kept alive again
                assert watcher.current == {"10.5.0.1:2375", "10.5.0.2:2375"}
            assert all("10.5.0.1:2375" in members for _, members in watcher.history[seen_before_restart:])


class TcpProxy:
    """Forwards a local port to etcd; `cut()` drops every connection and refuses new ones until `mend()`."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(self._handlers)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())
        self._writers.add(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._handlers.discard(asyncio.current_task())


async def test_a_watch_resuming_from_a_compacted_revision_lists_again(etcd: EtcdServer) -> None:
    proxy = TcpProxy(etcd.client_port)
    await proxy.mend()
    direct = f"etcd://{etcd.endpoint}/compact"
    async with MembershipWatcher(from_url(f"etcd://127.0.0.1:{proxy.port}/compact")) as watcher, \
            Etcd3Client([etcd.endpoint]) as client:
        async with registered(direct, "10.6.0.1:2375"):
            await watcher.until(lambda s: s == {"10.6.0.1:2375"}, timeout=3)
            await proxy.cut()                                     # the watcher loses etcd...
        async with registered(direct, "10.6.0.2:2375"):       # ...while one node leaves, one joins,
            await asyncio.sleep(0.5)
            revision = (await client.kv.get("/compact/", timeout=2)).header.revision
            await client.kv.compact(revision, timeout=2)        # and the history it missed is compacted
            await proxy.mend()
            await watcher.until(lambda s: s == {"10.6.0.2:2375"}, timeout=10)
    await proxy.cut()


async def test_register_retries_until_etcd_is_reachable() -> None:
    server = EtcdServer()
    try:
        url = f"etcd://{server.endpoint}/late"
        async with registered(url, "10.7.0.1:2375"):
            await asyncio.sleep(1.5)                            # etcd not there yet: retrying
            server.start()
            started = time.monotonic()
            async with MembershipWatcher(from_url(url)) as watcher:
                await watcher.until(lambda s: s == {"10.7.0.1:2375"}, timeout=HEARTBEAT + 4)
            assert time.monotonic() - started < HEARTBEAT + 4
    finally:
        server.remove()


async def test_store_tls_with_discovery_opts(tmp_path: Path) -> None:
    tls = make_tls(str(tmp_path))
    with EtcdServer(tls=tls) as server:
        url = f"etcd://{server.endpoint}/tls"
        options = {"kv.cacertfile": tls.ca, "kv.certfile": tls.cert, "kv.keyfile": tls.key}
        async with registered(url, "10.8.0.1:2375", options=options), \
                MembershipWatcher(from_url(url, options)) as watcher:
            await watcher.until(lambda s: s == {"10.8.0.1:2375"}, timeout=5)
        async with MembershipWatcher(from_url(url)) as plain:  # without the certificates: no answer
            with pytest.raises(AssertionError, match="still None"):
                await plain.until(lambda s: True, timeout=1)


async def test_a_node_cut_off_longer_than_its_ttl_registers_again(etcd: EtcdServer) -> None:
    proxy = TcpProxy(etcd.client_port)
    await proxy.mend()
    async with MembershipWatcher(from_url(f"etcd://localhost:{etcd.client_port}/partition")) as watcher, \
            registered(f"etcd://127.0.0.1:{proxy.port}/partition", "10.9.0.1:2375"):
        await watcher.until(lambda s: s == {"10.9.0.1:2375"}, timeout=3)
        await proxy.cut()                                       # the agent cannot reach etcd...
        await watcher.until(lambda s: not s, timeout=TTL + 1)   # ...so its lease expires
        await proxy.mend()
        await watcher.until(lambda s: s == {"10.9.0.1:2375"}, timeout=HEARTBEAT + 5)
    await proxy.cut()
