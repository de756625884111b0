"""`shoal join` / `shoal list` as real processes against a real etcd; a tiny /_ping server stands in
for each host's engine (the real-dockerd lab tests live elsewhere)."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from discovery import from_url
from discovery.watcher import MembershipWatcher
from lab.etcd import EtcdServer
from lab.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
TTL, HEARTBEAT = 3, 1


class PingServer:
    """Answers `GET /_ping` with OK on 127.0.0.1, like an engine; `stop()` makes it vanish."""

    def __init__(self) -> None:
        self.addr = f"127.0.0.1:{free_port()}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/_ping", _pong)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        host, port = self.addr.split(":")
        await web.TCPSite(self._runner, host, int(port)).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _pong(request: web.Request) -> web.Response:
    return web.Response(text="OK")


def shoal(*args: str, **kwargs) -> subprocess.Popen[str]:
    """`shoal <args>` as its own process."""
    return subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


class Cluster:
    """Engines and `shoal join` agents for one test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.watcher: MembershipWatcher
        self.engines: list[PingServer] = []
        self.agents: list[subprocess.Popen[str]] = []

    async def engine(self) -> PingServer:
        server = PingServer()
        await server.start()
        self.engines.append(server)
        return server

    def spawn(self, engine: PingServer) -> subprocess.Popen[str]:
        """Start `shoal join` for `engine`."""
        agent = shoal("join", "--advertise", engine.addr, "--heartbeat", f"{HEARTBEAT}s", "--ttl", f"{TTL}s", self.url)
        self.agents.append(agent)
        return agent

    async def join(self, engine: PingServer) -> subprocess.Popen[str]:
        """Start an agent for `engine` and wait until the watcher sees it."""
        agent = self.spawn(engine)
        await self.watcher.until(lambda members: engine.addr in members, timeout=10)
        return agent

    async def close(self) -> None:
        for agent in self.agents:
            if agent.poll() is None:
                agent.kill()
            agent.communicate()
        for server in self.engines:
            await server.stop()


@pytest_asyncio.fixture
async def cluster(etcd: EtcdServer, request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """A fresh etcd prefix, with a watcher on it; every engine and agent is stopped afterwards."""
    found = Cluster(f"etcd://{etcd.endpoint}/{request.node.name}")
    try:
        async with MembershipWatcher(from_url(found.url)) as found.watcher:
            yield found
    finally:
        await found.close()


async def test_agents_started_before_and_after_a_watcher_are_both_seen(etcd: EtcdServer) -> None:
    found = Cluster(f"etcd://{etcd.endpoint}/before-after")
    try:
        early = await found.engine()
        found.spawn(early)
        async with MembershipWatcher(from_url(found.url)) as probe:
            await probe.until(lambda members: early.addr in members, timeout=10)
        async with MembershipWatcher(from_url(found.url)) as found.watcher:
            await found.watcher.until(lambda members: bool(members), timeout=3)
            assert found.watcher.history[0][1] == {early.addr}  # listed at start, not learnt later
            late = await found.engine()
            await found.join(late)
            assert found.watcher.current == {early.addr, late.addr}
    finally:
        await found.close()


async def test_sigterm_removes_the_node_within_2s(cluster: Cluster) -> None:
    engine = await cluster.engine()
    agent = await cluster.join(engine)
    agent.send_signal(signal.SIGTERM)
    gone = await cluster.watcher.until(lambda members: engine.addr not in members, timeout=TTL + 1)
    _, log = agent.communicate(timeout=5)
    assert gone < 2.0, log
    assert agent.returncode == 0
    assert f"discovery: left addr={engine.addr}" in log


async def test_sigkill_removes_the_node_within_the_ttl(cluster: Cluster) -> None:
    engine = await cluster.engine()
    agent = await cluster.join(engine)
    await asyncio.sleep(HEARTBEAT * 1.5)                       # kill it between two keepalives
    agent.kill()
    gone = await cluster.watcher.until(lambda members: engine.addr not in members, timeout=TTL + 2)
    assert gone <= TTL + 1


async def test_a_node_whose_engine_stops_answering_expires_and_comes_back(cluster: Cluster) -> None:
    engine = await cluster.engine()
    agent = await cluster.join(engine)
    await engine.stop()
    gone = await cluster.watcher.until(lambda members: engine.addr not in members, timeout=TTL + 2)
    assert gone <= TTL + 1
    assert agent.poll() is None, "the agent keeps running while its engine is down"
    await engine.start()
    await cluster.watcher.until(lambda members: engine.addr in members, timeout=HEARTBEAT + 3)


async def test_shoal_list_prints_the_addresses(cluster: Cluster) -> None:
    engines = [await cluster.engine() for _ in range(2)]
    for engine in engines:
        await cluster.join(engine)
    listing = await asyncio.to_thread(shoal("list", "--timeout", "5s", cluster.url).communicate, timeout=10)
    assert listing[0].splitlines() == sorted(engine.addr for engine in engines)


async def test_shoal_list_times_out_on_an_empty_cluster(cluster: Cluster) -> None:
    started = time.monotonic()
    lister = shoal("list", "--timeout", "1s", cluster.url)
    out, err = await asyncio.to_thread(lister.communicate, timeout=10)
    assert (lister.returncode, out) == (1, "")
    assert "Timed out" in err and time.monotonic() - started < 5
