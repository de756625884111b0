"""The local lab itself: real engines with their own identity, busybox, registry, clean down."""
from __future__ import annotations

import ipaddress
import json
import socket
import time
import urllib.request
from pathlib import Path

import docker
import pytest

from lab import lifecycle
from lab.net import addresses
from lab.procs import LabError, cgroup_dirs, mounts_under, procs_using, run
from lab.state import LabSpec, LabState, load
from tests.e2e.conftest import E2E_SPEC, TIMINGS


def client(addr: str) -> docker.DockerClient:
    """A docker-py client for one engine."""
    return docker.DockerClient(base_url=f"tcp://{addr}", timeout=30)


def side_lab(suffix: str, offset: int, **options: object) -> LabSpec:
    """A short-lived extra lab named after the session's, on the `offset`-th next subnet."""
    net = ipaddress.IPv4Network(E2E_SPEC.subnet)
    subnet = ipaddress.IPv4Network((int(net.network_address) + offset * net.num_addresses, net.prefixlen))
    return LabSpec(name=E2E_SPEC.name[:8] + suffix, subnet=str(subnet), **options)


def get_json(url: str) -> object:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


def first_reply(addr: tuple[str, int], timeout: float = 5.0) -> bytes:
    """The first bytes a TCP server sends, retrying while it is not listening yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(addr, timeout=timeout) as conn:
                reply = conn.recv(100)
        except ConnectionError:
            reply = b""
        if reply or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def test_engines_answer(lab: LabState) -> None:
    assert lab.names == ["node1", "node2", "node3"]
    assert lab.engines == [f"{ip}:2375" for ip in addresses(E2E_SPEC.subnet, 3)[1]]
    assert all(client(addr).ping() for addr in lab.engines)


def test_engines_have_own_identity_and_labels(lab: LabState) -> None:
    infos = [client(addr).info() for addr in lab.engines]
    assert [i["Name"] for i in infos] == lab.names
    assert len({i["ID"] for i in infos}) == 3
    assert [i["Labels"] for i in infos] == [["size=small"], [], ["size=xxl"]]


def test_busybox_runs_everywhere(lab: LabState) -> None:
    for addr in lab.engines:
        engine = client(addr)
        assert engine.images.get("busybox:latest").attrs["Config"]["Cmd"] == ["sh"]
        assert engine.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_published_port_answers_on_node_address(lab: LabState) -> None:
    engine = client(lab.engines[1])
    web = engine.containers.run("busybox", "nc -ll -p 80 -e echo hello", detach=True, ports={"80/tcp": 8080})
    try:
        assert first_reply((lab.nodes[1].ip, 8080)) == b"hello\n"
    finally:
        web.remove(force=True)


def test_registry_seeded_and_pullable(lab: LabState) -> None:
    repo = f"{lab.registry}/busybox"
    assert lab.registry == f"{lab.bridge_ip}:5000"
    assert not client(lab.engines[0]).images.list(name=repo), "node1 keeps no registry tag"
    engine = client(lab.engines[2])
    image = engine.images.pull(repo, tag="latest")
    engine.images.remove(image.id, force=True)


def test_nothing_leaves_the_lab_and_outside_pulls_fail_at_once(lab: LabState) -> None:
    for node in lab.nodes:  # checked first: with a default route the pull below could go out
        routes = json.loads(run("ip", "-j", "-n", node.netns, "route").stdout)
        destinations = [r["dst"] for r in routes]
        assert str(ipaddress.IPv4Network(E2E_SPEC.subnet)) in destinations and "default" not in destinations
    began = time.monotonic()
    with pytest.raises(docker.errors.APIError):
        client(lab.engines[0]).images.pull("docker.io/library/alpine", tag="3.19")
    assert time.monotonic() - began < 5


def test_etcd_answers(lab: LabState) -> None:
    assert get_json(f"http://{lab.etcd}/health") == {"health": "true"}


def test_status_reports_everything_up(lab: LabState) -> None:
    rows = lifecycle.status(lab.name, E2E_SPEC.root)
    assert [what for what, _, _ in rows] == [*lab.names, "registry", "etcd"]
    assert all(ok for _, _, ok in rows)


def vxlan_in_host() -> set[str]:
    """The VXLAN devices of the host's own network namespace (dockerd makes one per overlay in the
    node's namespace and moves it into the overlay's own)."""
    return {line.split(":")[1].strip().split("@")[0]
            for line in run("ip", "-o", "link", "show", "type", "vxlan").stdout.splitlines()}


def assert_nothing_left(state: LabState, vxlan_before: set[str] | None = None) -> None:
    """No process, namespace, link, mount, cgroup or dir of `state` survives: with multi-host
    networking also no swarm state (it is in the data-roots), no overlay namespace (nsfs files
    under the exec-roots) and, when `vxlan_before` was taken before `up`, no new VXLAN device in
    the host's namespace."""
    assert not [n.dockerd for n in state.nodes if n.dockerd and n.dockerd.alive()]
    assert not [p for p in state.procs.values() if p.alive()]
    assert not procs_using([Path(n.run_dir) for n in state.nodes], ("dockerd", "containerd"))
    netns = run("ip", "netns", "list").stdout
    assert not [n.netns for n in state.nodes if n.netns in netns]
    links = run("ip", "-o", "link").stdout
    assert not [name for name in [state.bridge, *(n.veth for n in state.nodes)] if f" {name}:" in links]
    assert not mounts_under([Path(state.dir), Path(state.run_dir)])
    assert not [d for n in state.nodes for d in cgroup_dirs(n.cgroup)]
    assert not Path(state.dir).exists() and not Path(state.run_dir).exists()
    assert load(state.name, E2E_SPEC.root) is None
    if vxlan_before is not None:
        assert vxlan_in_host() <= vxlan_before


def test_down_leaves_nothing(lab: LabState) -> None:
    spec = side_lab("dn", 1, nodes=2, registry=True, etcd=True)
    began = time.monotonic()
    state = lifecycle.up(spec)
    TIMINGS["up (2 nodes, registry, etcd)"] = time.monotonic() - began
    engine = client(state.engines[0])
    engine.containers.run("busybox", "sleep 1000", detach=True, ports={"80/tcp": 8081})
    engine.containers.create("busybox", "true")
    began = time.monotonic()
    lifecycle.down(spec.name, spec.root)
    TIMINGS["down (2 nodes, 2 containers)"] = time.monotonic() - began
    assert_nothing_left(state)
    lifecycle.down(spec.name, spec.root)  # idempotent


def test_down_after_failed_up(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = side_lab("fl", 2, nodes=2, etcd=True)

    def broken_import(addr: str, rootfs: bytes, tls: object) -> None:
        raise LabError(f"injected import failure on {addr}")

    monkeypatch.setattr(lifecycle, "import_busybox", broken_import)
    with pytest.raises(LabError, match="injected"):
        lifecycle.up(spec)
    state = load(spec.name, spec.root)
    assert state is not None and all(n.dockerd for n in state.nodes)
    lifecycle.down(spec.name, spec.root)
    assert_nothing_left(state)


def test_up_refuses_a_second_lab_on_a_taken_subnet(lab: LabState) -> None:
    spec = side_lab("cl", 0, nodes=1)
    with pytest.raises(LabError, match="overlaps"):
        lifecycle.up(spec)
    assert load(spec.name, spec.root) is None
