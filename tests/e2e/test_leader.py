"""The election on a real etcd: one primary at a time, takeover when it goes, and a primary cut off
from etcd stops acting before anyone else can be elected (sampled every 10 ms: never two)."""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

import pytest

from discovery.etcd_store import EtcdStore, Fenced
from lab.procs import free_port
from manager.cluster.leader import Election
from manager.cluster.metrics import REGISTRY
from tests.support.manager import start_manager
from tests.support.partition import Partitionable

TTL = 2


@contextlib.asynccontextmanager
async def candidate(endpoint: str, prefix: str, advertise: str):
    async with EtcdStore([endpoint]) as store:
        election = Election(store, prefix, advertise, TTL)
        election.start()
        try:
            yield election
        finally:
            await election.close()


async def until(check, timeout: float) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


async def test_one_primary_then_the_other_when_it_leaves(etcd):
    prefix = f"/{secrets.token_hex(6)}/"
    became_primary = REGISTRY.get_sample_value("shoal_leader_changes_total", {"role": "primary"}) or 0
    async with candidate(etcd.endpoint, prefix, "a:1") as a:
        await until(lambda: a.is_primary, 5)
        async with candidate(etcd.endpoint, prefix, "b:1") as b:
            await until(lambda: b.primary == "a:1" and b.replicas == ["a:1"] and a.replicas == ["b:1"], 5)
            assert not b.is_primary
            await a.close()  # a clean stop revokes the lease: b takes over at once
            took = await until(lambda: b.is_primary, TTL + 2)
            assert took < 1.5
    assert REGISTRY.get_sample_value("shoal_leader_changes_total", {"role": "primary"}) - became_primary == 2


async def test_a_partitioned_primary_steps_down_before_anyone_else_leads(etcd):
    prefix = f"/{secrets.token_hex(6)}/"
    async with Partitionable(etcd.endpoint) as link, candidate(link.endpoint, prefix, "a:1") as a:
        await until(lambda: a.is_primary, 5)
        async with candidate(etcd.endpoint, prefix, "b:1") as b:
            await until(lambda: b.primary == "a:1", 5)
            fence = a.fence
            link.connected.clear()  # a can no longer reach etcd, and does not know it
            cut = time.monotonic()
            both, a_stopped, b_started = False, None, None
            while time.monotonic() - cut < TTL + 3:
                a_now, b_now = a.is_primary, b.is_primary
                both = both or (a_now and b_now)
                if not a_now and a_stopped is None:
                    a_stopped = time.monotonic() - cut
                if b_now and b_started is None:
                    b_started = time.monotonic() - cut
                await asyncio.sleep(0.01)
            assert not both
            assert a_stopped is not None and b_started is not None and a_stopped < b_started <= TTL + 1
            async with EtcdStore([etcd.endpoint]) as store:  # a's fence no longer holds for any write
                with pytest.raises(Fenced):
                    await store.write(prefix + "probe", "x", fence)
                await store.write(prefix + "probe", "y", b.fence)
            link.connected.set()


def test_without_a_primary_a_request_gets_a_503_after_a_bounded_wait(tmp_path):
    """A replicated manager that cannot reach etcd knows no primary: it still answers info, and
    a forwarded request fails after TTL + 5 s instead of hanging."""
    mgr = start_manager(f"etcd://127.0.0.1:{free_port()}/none", "--replication", "--advertise",
                        f"127.0.0.1:{free_port()}", "--replication-ttl", "1s", healthy=0, log_dir=tmp_path)
    try:
        assert dict(mgr.info_rows())["Role"] == "replica"
        began = time.monotonic()
        status, body = mgr.api("GET", "/containers/json")
        waited = time.monotonic() - began
        assert status == 503 and body["message"].startswith("No elected primary cluster manager")
        assert 5 <= waited < 9
    finally:
        mgr.stop()
