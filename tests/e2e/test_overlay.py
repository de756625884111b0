"""Multi-host networking through the engines' own overlay drivers: a 3-node lab whose engines form a
swarm-mode cluster (`--overlay`), and a 2-node lab on the lab etcd as cluster-store (`--overlay kv`),
with the real docker CLI (28 and 20.10), docker-compose 1.29 and docker-py through the manager."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import docker
import pytest

from discovery import from_url
from lab import lifecycle
from lab.daemons import start_agent
from lab.procs import stop
from lab.state import LabState
from tests.e2e.test_lab import assert_nothing_left, side_lab, vxlan_in_host
from tests.support.engines import kill_engine, restart_engine
from tests.support.manager import Manager, start_manager

CLIS = ("docker", "/usr/bin/docker")  # 28 and 20.10


@contextlib.contextmanager
def overlay_lab(suffix: str, offset: int, **options: object) -> Iterator[LabState]:
    """A side lab with multi-host networking; `down` must leave nothing of it, VXLAN links included."""
    before = vxlan_in_host()
    spec = side_lab(suffix, offset, **options)
    lifecycle.down(spec.name, spec.root)  # leftovers of an interrupted session
    state = lifecycle.up(spec)
    try:
        yield state
    finally:
        lifecycle.down(spec.name, spec.root)
        assert_nothing_left(state, before)


def direct(engine: str, *args: str) -> str:
    return subprocess.run(["docker", "-H", f"tcp://{engine}", *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def node_of(mgr: Manager, ref: str) -> str:
    return mgr.docker("inspect", "--format", "{{.Node.Name}}", ref).stdout.strip()


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.3)


# ---- swarm-mode overlay ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swarm(tmp_path_factory) -> Iterator[tuple[LabState, Manager]]:
    """The swarm-mode lab, with node3 taken out of the swarm again; a manager on the lab's etcd and
    one agent per node, node3's with --overlay-join (so it goes back in through the manager's token)."""
    with overlay_lab("ov", 3, nodes=3, etcd=True, overlay="swarm") as state:
        direct(state.engines[2], "swarm", "leave", "--force")
        log_dir = tmp_path_factory.mktemp("overlay")
        discovery = f"etcd://{state.etcd}/ovl"
        agents = [start_agent(node.engine, discovery, log_dir / f"agent-{node.name}.log",
                              flags=["--overlay-join"] if node.name == "node3" else [])
                  for node in state.nodes]
        mgr = start_manager(discovery, healthy=3, log_dir=log_dir)
        try:
            yield state, mgr
        finally:
            mgr.stop()
            stop(agents)


@pytest.fixture
def clean_swarm(swarm):
    state, mgr = swarm
    yield mgr
    ids = mgr.docker("ps", "-aq").stdout.split()
    if ids:
        mgr.docker("rm", "-f", *ids)


def multihost_rows(mgr: Manager) -> list[str]:
    return [v for k, v in mgr.info_rows() if "Multi-host networking" in k]


def test_a_later_engine_joins_the_swarm_with_overlay_join_and_info_shows_it(swarm):
    state, mgr = swarm
    wait_for(lambda: multihost_rows(mgr)[0].endswith(", 3/3 nodes)"), 30, "node3 back in the swarm")
    cluster = json.loads(direct(state.engines[0], "info", "--format", "{{json .Swarm.Cluster.ID}}"))
    rows = multihost_rows(mgr)
    assert rows[0] == f"swarm-mode overlay (cluster {cluster}, 3/3 nodes)"
    assert rows[1:] == [f"swarm-mode overlay manager (cluster {cluster})",
                        *[f"swarm-mode overlay worker (cluster {cluster})"] * 2]
    out = mgr.docker("info").stdout
    assert f" Multi-host networking: swarm-mode overlay (cluster {cluster}, 3/3 nodes)" in out
    assert "Swarm: inactive" in out  # the manager itself is no swarm-mode node (compose relies on it)
    published = json.loads(asyncio.run(from_url(f"etcd://{state.etcd}/ovl").read_state("overlay", "swarm")))
    assert published["cluster"] == cluster and published["token"].startswith("SWMTKN-")
    assert published["managers"] == [f"{state.nodes[0].ip}:2377"]
    assert "SWMTKN" not in mgr.log()  # the token is never logged


def test_overlay_network_joins_containers_on_every_node(swarm, clean_swarm):
    state, mgr = swarm
    mgr.docker("network", "create", "-d", "overlay", "appnet")
    for cli in CLIS:
        listed = mgr.docker("network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}} {{.Scope}}",
                            binary=cli).stdout.split("\n")
        assert "appnet swarm" in listed and not [n for n in listed if n.endswith("/appnet swarm")]
    for k, node in enumerate(state.names, start=1):
        mgr.docker("run", "-d", "--name", f"c{k}", "--net", "appnet", "--network-alias", f"alias{k}",
                   "-e", f"constraint:node=={node}", "busybox", "sh", "-c",
                   f"echo from-{node} > /index.html; exec httpd -f -p 80 -h /")
    assert [node_of(mgr, f"c{k}") for k in (1, 2, 3)] == state.names
    for k in (1, 2, 3):
        for peer in {1, 2, 3} - {k}:
            for name in (f"c{peer}", f"alias{peer}"):
                assert "1 packets received" in mgr.docker("exec", f"c{k}", "ping", "-c1", "-W2", name).stdout
    for k in (2, 3):
        assert mgr.docker("exec", f"c{k}", "wget", "-q", "-O", "-", "http://c1/index.html").stdout == "from-node1\n"
    members = mgr.docker("network", "inspect", "--format", "{{json .Containers}}", "appnet").stdout
    assert {"c1", "c2", "c3"} <= {c["Name"] for c in json.loads(members).values()}
    mgr.docker("run", "-d", "--name", "late", "-e", "constraint:node==node3", "busybox", "sleep", "300")
    mgr.docker("network", "connect", "--alias", "later", "appnet", "late")
    assert "1 packets received" in mgr.docker("exec", "c1", "ping", "-c1", "-W2", "later").stdout
    mgr.docker("network", "disconnect", "appnet", "late")
    gone = mgr.docker("exec", "c1", "ping", "-c1", "-W1", "later", check=False)
    assert gone.returncode != 0
    busy = mgr.docker("network", "rm", "appnet", check=False)
    assert busy.returncode == 1
    since = int(time.time()) - 1
    mgr.docker("rm", "-f", "c1", "c2", "c3", "late")

    def destroyed_on_node1() -> bool:  # what an engine sends as its last container leaves appnet
        out = mgr.docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
                         "--filter", "type=network", "--filter", "event=destroy", "--format",
                         '{{.Actor.Attributes.name}} {{index .Actor.Attributes "node.name"}}', timeout=30).stdout
        return "appnet node1" in out.splitlines()

    wait_for(destroyed_on_node1, 20, "node1's destroy event of appnet")
    assert "appnet" in mgr.docker("network", "ls", "--format", "{{.Name}}").stdout.split()  # node1 still has it
    mgr.docker("run", "--rm", "--net", "appnet", "-e", "constraint:node==node1", "busybox", "true")
    mgr.docker("network", "rm", "appnet")
    assert "appnet" not in mgr.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    wait_for(lambda: all("appnet" not in direct(e, "network", "ls", "--format", "{{.Name}}").split()
                         for e in state.engines), 10, "appnet gone from every engine")


COMPOSE_V2 = """version: "2"
services:
  web:
    image: busybox
    command: sh -c 'echo served-by-$$HOSTNAME > /index.html; exec httpd -f -p 80 -h /'
  client:
    image: busybox
    command: sh -c 'while true; do wget -q -O - http://web/index.html; sleep 0.3; done'
    depends_on: [web]
"""
COMPOSE_V3 = """version: "3.7"
services:
  web:
    image: busybox
    command: sh -c 'echo served-by-$$HOSTNAME > /index.html; exec httpd -f -p 80 -h /'
    networks:
      back:
        aliases: [www]
  client:
    image: busybox
    command: sh -c 'while true; do wget -q -O - http://www/index.html; sleep 0.3; done'
    networks: [back]
    depends_on: [web]
networks:
  back: {}
"""


@pytest.mark.parametrize("project, text, network", [("ovtwo", COMPOSE_V2, "ovtwo_default"),
                                                    ("ovthree", COMPOSE_V3, "ovthree_back")])
def test_compose_project_spreads_over_the_nodes_and_its_services_find_each_other(
        swarm, clean_swarm, tmp_path: Path, project: str, text: str, network: str):
    state, mgr = swarm
    (tmp_path / "docker-compose.yml").write_text(text)

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-p", project, *args], cwd=tmp_path, env=mgr.env,
                              capture_output=True, text=True, timeout=180, check=True)

    compose("up", "-d", "--scale", "web=3")
    webs = mgr.docker("ps", "--filter", "name=web", "--format", "{{.ID}} {{.Names}}").stdout.split("\n")[:-1]
    assert sorted(w.split()[1].split("/")[0] for w in webs) == state.names  # one web per node
    served = {f"served-by-{w.split()[0]}" for w in webs}
    wait_for(lambda: served <= set(compose("logs", "--no-color", "client").stdout.split()), 30,
             "the client reaches every web by name")
    assert len(compose("ps", "-q").stdout.split()) == 4
    networks = mgr.docker("network", "ls", "--filter", f"name={project}", "--format", "{{.Name}} {{.Driver}}")
    assert networks.stdout == f"{network} overlay\n"  # compose asked for no driver: overlay, since it can
    compose("down", "-t", "1")
    assert mgr.docker("ps", "-aq").stdout == ""
    assert mgr.docker("network", "ls", "-q", "--filter", f"name={project}").stdout == ""


def test_a_policy_container_on_an_overlay_moves_off_a_killed_node_and_is_found_by_name(swarm, clean_swarm):
    """`reschedule:on-node-failure` on an overlay network: node3's dockerd is SIGKILLed; the container
    is re-created on another node on the same network, and a container on a third node reaches it by
    name and by alias; node3 comes back (into the swarm) and its old copy is removed."""
    state, mgr = swarm
    wait_for(lambda: multihost_rows(mgr)[0].endswith(", 3/3 nodes)"), 30, "node3 in the swarm")
    mgr.docker("network", "create", "-d", "overlay", "movenet")
    mgr.docker("run", "-d", "--name", "mover", "--net", "movenet", "--network-alias", "mover-alias",
               "-e", "reschedule:on-node-failure", "-e", "constraint:node==~node3", "busybox", "sh", "-c",
               "hostname > /index.html; exec httpd -f -p 80 -h /")
    assert node_of(mgr, "mover") == "node3"
    old = mgr.docker("inspect", "-f", "{{.Id}}", "mover").stdout.strip()
    kill_engine(state, "node3")
    try:
        wait_for(lambda: mgr.docker("inspect", "-f", "{{.Node.Name}} {{.State.Running}}", "mover", check=False)
                 .stdout in ("node1 true\n", "node2 true\n"), 30, "mover re-created and running elsewhere")
        new = mgr.docker("inspect", "-f", "{{.Id}}", "mover").stdout.strip()
        assert new != old
        other = ({"node1", "node2"} - {node_of(mgr, "mover")}).pop()
        mgr.docker("run", "-d", "--name", "asker", "--net", "movenet", "-e", f"constraint:node=={other}",
                   "busybox", "sleep", "300")
        for name in ("mover", "mover-alias"):
            wait_for(lambda: mgr.docker("exec", "asker", "timeout", "3", "wget", "-q", "-O", "-",
                                        f"http://{name}/index.html", check=False).stdout == f"{new[:12]}\n",
                     30, f"{name} answering from its new node")
    finally:
        restart_engine(state, "node3")
    wait_for(lambda: mgr.healthy_count() == 3 and mgr.docker("ps", "-aq", "--filter", "name=mover").stdout.split()
             == [new[:12]], 60, "node3 back and only the moved copy left")
    assert old[:12] not in direct(state.engines[2], "ps", "-aq")
    wait_for(lambda: multihost_rows(mgr)[0].endswith(", 3/3 nodes)"), 30, "node3 back in the swarm")
    mgr.docker("rm", "-f", "mover", "asker")
    mgr.docker("network", "rm", "movenet")


def test_a_node_that_leaves_the_swarm_is_filtered_out_with_its_reason(swarm, clean_swarm):
    """The last test of the swarm-mode lab: node3 leaves the swarm-mode cluster for good."""
    state, mgr = swarm
    mgr.docker("network", "create", "-d", "overlay", "outnet")
    direct(state.engines[2], "swarm", "leave", "--force")
    wait_for(lambda: multihost_rows(mgr)[0].endswith(", 2/3 nodes)"), 30, "node3 out of the swarm")
    assert multihost_rows(mgr)[3] == "none (not in a swarm-mode cluster, no cluster-store)"
    for cli in CLIS:
        nofit = mgr.docker("run", "-d", "--net", "outnet", "-e", "constraint:node==node3", "busybox", "true",
                           check=False, binary=cli)
        assert nofit.returncode == 125 and "node3: network outnet (node has no multi-host networking)" in nofit.stderr
        assert "node1: constraint node==node3 (node is node1)" in nofit.stderr
    members = [mgr.docker("run", "-d", "--net", "outnet", "busybox", "sleep", "300").stdout.strip()
               for _ in range(3)]  # spread would put one on node3 (no container) were it a member
    assert {node_of(mgr, m) for m in members} == {"node1", "node2"}
    outside = mgr.docker("run", "-d", "-e", "constraint:node==node3", "busybox", "sleep", "300").stdout.strip()
    refused = mgr.docker("network", "connect", "outnet", outside, check=False)
    assert refused.returncode == 1 and "is on node3, which is not in the swarm-mode overlay" in refused.stderr
    status, created = mgr.api("POST", "/v1.41/networks/create", json.dumps({"Name": "plainnet"}).encode())
    assert status == 201  # no driver, and not every node can join an overlay: a bridge on one node
    plain = mgr.docker("network", "ls", "--filter", "name=plainnet", "--format", "{{.Name}} {{.Driver}}").stdout
    assert plain.endswith("/plainnet bridge\n") and plain.count("\n") == 1
    mgr.docker("rm", "-f", *members, outside)
    mgr.docker("network", "rm", "outnet", "plainnet")


# ---- KV overlay --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kv(tmp_path_factory) -> Iterator[tuple[LabState, Manager]]:
    with overlay_lab("kv", 5, nodes=2, overlay="kv") as state:
        mgr = start_manager("nodes://" + ",".join(state.engines), healthy=2,
                            log_dir=tmp_path_factory.mktemp("kv"))
        try:
            yield state, mgr
        finally:
            mgr.stop()


def test_kv_overlay_two_nodes_reach_each_other(kv):
    state, mgr = kv
    store = f"etcd://{state.etcd_for_nodes}"
    assert [v for k, v in mgr.info_rows() if k == "Multi-host networking"] == \
        [f"kv overlay (store {store}, 2/2 nodes)"]
    client = docker.DockerClient(base_url=mgr.url.replace("http://", "tcp://"), timeout=60)
    network = client.networks.create("kvapp")  # no driver: every node can join overlays
    assert (network.attrs["Driver"], network.attrs["Scope"]) == ("overlay", "global")
    server = client.containers.run("busybox", ["sh", "-c", "echo kv-ok > /i; exec httpd -f -p 80 -h /"],
                                   name="srv", network="kvapp", environment=["constraint:node==node1"],
                                   detach=True)
    try:
        out = client.containers.run("busybox", ["sh", "-c", "ping -c1 -W2 srv && wget -q -O - http://srv/i"],
                                    network="kvapp", environment=["constraint:node==node2"], remove=True)
        assert b"1 packets received" in out and out.endswith(b"kv-ok\n")
        assert collections.Counter(n.name for n in client.networks.list(names=["kvapp"])) == {"kvapp": 1}
    finally:
        server.remove(force=True)
    network.remove()
    assert client.networks.list(names=["kvapp"]) == []
