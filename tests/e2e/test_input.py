"""Bad input against a manager on the real lab: a property test (hypothesis, about a minute) sending
wrongly typed and malformed bodies, paths, filters, query strings and raw HTTP; pulls that stall."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import docker
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from bench.fuzzgen import FUZZ_LABEL, Fuzzer, fuzz_requests
from lab.procs import free_port
from tests.support.manager import Manager, start_manager

FUZZ_SECONDS = 50
STALL = 3


@pytest.fixture(scope="module")
def mgr(lab, tmp_path_factory) -> Manager:
    manager = start_manager("nodes://" + ",".join(lab.engines), "--engine-pull-stall-timeout", f"{STALL}s",
                            healthy=3, log_dir=tmp_path_factory.mktemp("input"))
    yield manager
    manager.stop()


def engine_objects(lab) -> dict[str, set[str]]:
    """Every container, image, network and volume on every engine, asked directly."""
    found: dict[str, set[str]] = {"containers": set(), "images": set(), "networks": set(), "volumes": set()}
    for addr in lab.engines:
        client = docker.DockerClient(base_url=f"tcp://{addr}", timeout=30)
        found["containers"] |= {c.id for c in client.containers.list(all=True)}
        found["images"] |= {f"{addr} {i.id}" for i in client.images.list(all=True)}
        found["networks"] |= {n.id for n in client.networks.list()}
        found["volumes"] |= {v.name for v in client.volumes.list()}
        client.close()
    return found


def test_fuzzed_requests_get_clear_errors_and_leave_nothing_behind(mgr, lab):
    before = engine_objects(lab)
    status, target = mgr.api("POST", "/containers/create?name=fuzztarget",
                             json.dumps({"Image": "busybox", "Cmd": ["true"], "Labels": {FUZZ_LABEL: "1"}}).encode())
    assert status == 201
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    fuzzer = Fuzzer(mgr.url, session)
    stop = time.monotonic() + FUZZ_SECONDS

    distinct: set = set()

    # derandomize=False: hypothesis's "ci" profile (CI set) would send the same 25 batches each time
    @settings(max_examples=25, deadline=None, database=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(fuzz_requests(lab.registry, target["Id"]), min_size=4, max_size=4))
    def batch_of_four(batch):
        distinct.update(batch)
        loop.run_until_complete(fuzzer.send_all(batch))  # four at once
        assert (fuzzer.tally.internal, fuzzer.tally.hangs) == (0, 0), fuzzer.tally.bad

    try:
        while time.monotonic() < stop:
            batch_of_four()
        # ~37 % of the requests are distinct (small alphabets, shared edge cases); the same 25 batches again
        # and again (the "ci" profile) would be under 10 %
        assert fuzzer.tally.sent > 500 and len(distinct) > fuzzer.tally.sent / 4, (len(distinct), fuzzer.tally)
        assert loop.run_until_complete(fuzzer.alive())
        fuzzer.created["containers"].add(target["Id"])
        assert loop.run_until_complete(fuzzer.clean_up()) == []
    finally:
        loop.run_until_complete(session.close())
        loop.close()
    print(fuzzer.tally.line(alive=True), dict(sorted(fuzzer.tally.statuses.items())))
    assert engine_objects(lab) == before  # every container, network and volume it made is gone; no image made
    # 403: dockerd's own, e.g. for a second network of the `null` or `host` driver
    assert set(fuzzer.tally.statuses) - {0, 101, 200, 201, 204, 304, 400, 403, 404, 408, 409, 413, 414, 431, 500,
                                         501} == set(), fuzzer.tally.statuses


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8), auto_decompress=False)


@pytest.fixture
async def stalling_registry(lab):
    """An address on the lab bridge that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, lab.bridge_ip, free_port())
    yield f"{lab.bridge_ip}:{server.sockets[0].getsockname()[1]}"
    for writer in held:
        writer.close()
    server.close()


async def test_a_pull_that_stalls_ends_with_a_clear_error(mgr, stalling_registry):
    began = time.monotonic()
    pulled = await asyncio.to_thread(mgr.docker, "pull", f"{stalling_registry}/stalled:1", check=False)
    assert pulled.returncode == 1 and f"no progress for {STALL}s" in pulled.stderr + pulled.stdout
    ran = await asyncio.to_thread(mgr.docker, "run", "--rm", f"{stalling_registry}/stalled:1", "true", check=False)
    assert ran.returncode != 0 and f"no progress for {STALL}s" in ran.stderr
    assert time.monotonic() - began < 4 * STALL + 6  # not the engine's own 10 s TLS handshake timeout, twice
    assert mgr.healthy_count() == 3  # a silent registry is not the engines' fault
