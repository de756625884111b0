"""A manager started on engines that already run containers: it is Healthy from their listings, then
inspects them in the background. What the user sees must not tell the two apart: `docker ps -a`
(long enough to be streamed in chunks, read by both CLIs and the SDK), `docker inspect`, the
reservations in `docker info`."""
from __future__ import annotations

import json
import re
import subprocess
import time

import docker
import pytest

from tests.support.manager import Manager, start_manager

BULK = 120  # created-only containers: more rows than one chunk of `ps`
FORMAT = "{{.Names}}|{{.Status}}|{{.Ports}}|{{.Image}}|{{.Command}}|{{.Labels}}"
CLIS = ("docker", "/usr/bin/docker")  # 28 and 20.10


@pytest.fixture(scope="module")
def engine(lab) -> docker.DockerClient:
    """node1's engine with containers made before any manager saw them."""
    client = docker.DockerClient(base_url=f"tcp://{lab.engines[0]}", version="1.41")
    client.networks.create("prenet", driver="bridge")
    try:
        client.containers.run("busybox", "sleep 300", name="pre-web", detach=True, labels={"team": "pre"},
                              ports={"80/tcp": 8095}, mem_limit="64m")
        client.containers.run("busybox", "sh -c 'exit 3'", name="pre-done", detach=True).wait()
        policy = client.containers.create(
            "busybox", "sleep 300", name="pre-policy", network="prenet",
            labels={"com.docker.swarm.reschedule-policies": '["on-node-failure"]'})
        client.networks.get("prenet").disconnect(policy)
        client.networks.get("prenet").connect(policy, aliases=["db"])
        policy.start()
        for i in range(BULK):
            client.containers.create("busybox", "true", name=f"pre-bulk-{i}")
        yield client
    finally:
        for c in client.containers.list(all=True, filters={"name": "pre-"}):
            c.remove(force=True)
        client.networks.get("prenet").remove()


@pytest.fixture(scope="module")
def mgr(lab, engine, tmp_path_factory) -> Manager:
    manager = start_manager("nodes://" + ",".join(lab.engines), healthy=3,
                            log_dir=tmp_path_factory.mktemp("manager"))
    yield manager
    manager.stop()


def ps_lines(cli: str, env: dict) -> list[str]:
    out = subprocess.run([cli, "ps", "-a", "--no-trunc", "--filter", "name=pre-", "--format", FORMAT],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    # a second may tick between two listings
    return sorted(re.sub(r"\d+ seconds?|Less than a second", "N seconds", line) for line in out.splitlines())


@pytest.mark.parametrize("cli", CLIS)
def test_ps_a_right_after_start_shows_what_the_engine_shows(mgr, lab, cli):
    direct = dict(mgr.env, DOCKER_HOST=f"tcp://{lab.engines[0]}")
    # the engine shows its IPv6 binding too; the manager shows the node's address once
    want = [re.sub(r", (\[::\]|::):8095->80/tcp", "", f"node1/{line}").replace("0.0.0.0:", f"{lab.nodes[0].ip}:")
            for line in ps_lines(cli, direct)]
    got = ps_lines(cli, mgr.env)
    assert len(got) == BULK + 3
    assert sorted(got) == sorted(want)
    assert any(line.startswith("node1/pre-done|Exited (3) ") for line in got)


def test_the_sdk_reads_the_streamed_list(mgr):
    sdk = docker.DockerClient(base_url=mgr.url.replace("http://", "tcp://"), version="1.41")
    names = {c.name for c in sdk.containers.list(all=True, filters={"name": "pre-"})}
    assert names == {"pre-web", "pre-done", "pre-policy", *(f"pre-bulk-{i}" for i in range(BULK))}
    assert sorted(c.name for c in sdk.containers.list(filters={"name": "pre-"})) == ["pre-policy", "pre-web"]


def test_inspect_shows_the_engines_document_with_its_node(mgr, engine):
    for name in ("pre-policy", "pre-web", "pre-bulk-7"):
        mine = mgr.docker("inspect", name).stdout
        theirs = engine.api.inspect_container(name)
        got = json.loads(mine)[0]
        assert got["Node"]["Name"] == "node1"
        for key in ("Id", "Created", "Config", "State", "Mounts"):
            assert got[key] == theirs[key], (name, key)
    policy = json.loads(mgr.docker("inspect", "pre-policy").stdout)[0]
    assert "db" in policy["NetworkSettings"]["Networks"]["prenet"]["Aliases"]
    assert json.loads(mgr.docker("inspect", "pre-web").stdout)[0]["HostConfig"]["Memory"] == 64 * 2**20


def test_reservations_of_listed_containers_show_once_inspected(mgr):
    deadline = time.monotonic() + 30
    while True:
        reserved = [v for k, v in mgr.info_rows() if k.strip() == "└ Reserved Memory"]
        if reserved and reserved[0].startswith("64 MiB /"):
            break
        assert time.monotonic() < deadline, f"node1's reservations never showed: {reserved}"
        time.sleep(0.5)
