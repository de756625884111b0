"""The manager follows membership: agents in etcd, engines that come, go, die and come back."""
from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lab.daemons import REPO, answers, shoal_command, start_agent, start_dockerd
from lab.procs import Proc, spawn, stop, wait_until
from tests.support.manager import Manager, start_manager

TTL, HEARTBEAT = 3.0, 1.0


class Agents:
    """`shoal join` processes, one per lab node, on one etcd prefix."""

    def __init__(self, lab, discovery: str, log_dir: Path) -> None:
        self.lab, self.discovery, self.log_dir = lab, discovery, log_dir
        self.procs: dict[str, Proc] = {}

    def start(self, name: str) -> None:
        engine = self.lab.engines[self.lab.names.index(name)]
        self.procs[name] = start_agent(engine, self.discovery, self.log_dir / f"agent-{name}.log",
                                       heartbeat=f"{HEARTBEAT:g}s", ttl=f"{TTL:g}s")

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs.pop(name)
        proc.signal(sig)
        wait_until(lambda: not proc.alive(), 10, f"agent {name} to exit")

    def stop_all(self) -> None:
        stop(self.procs.values())
        self.procs.clear()


def healthy_nodes(mgr: Manager) -> dict[str, str]:
    """node name -> Status, from the manager's `docker info` rows."""
    rows = mgr.info_rows()
    result, current = {}, None
    for key, value in rows:
        if key.startswith(" ") and not key.startswith("  "):
            current = key.strip()
        elif key == "  └ Status" and current:
            result[current] = value
    return result


def wait_for(check, timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("membership")
    discovery = f"etcd://{lab.etcd}/{secrets.token_hex(16)}"
    agents = Agents(lab, discovery, log_dir)
    agents.start("node1")
    agents.start("node2")
    mgr = start_manager(discovery, "--engine-failure-retry", "3", healthy=2, log_dir=log_dir)
    try:
        yield mgr, agents, discovery
    finally:
        mgr.stop()
        agents.stop_all()


def test_agents_started_before_and_after_the_manager_are_found(cluster, lab):
    mgr, agents, discovery = cluster
    agents.start("node3")
    wait_for(lambda: healthy_nodes(mgr) == dict.fromkeys(lab.names, "Healthy"), 10, "3 healthy nodes")
    assert " Nodes: 3" in mgr.docker("info").stdout
    listed = subprocess.run(shoal_command("list", discovery), cwd=REPO,
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert sorted(listed.split()) == sorted(lab.engines)


def test_sigterm_agent_leaves_within_2s_with_events(cluster, lab):
    mgr, agents, _ = cluster
    since = time.time()
    agents.signal("node3", signal.SIGTERM)
    took = wait_for(lambda: "node3" not in healthy_nodes(mgr), 5, "node3 to leave")
    assert took < 2.0
    agents.start("node3")
    wait_for(lambda: healthy_nodes(mgr).get("node3") == "Healthy", 10, "node3 back")
    out = mgr.docker("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                     "--filter", "type=swarm", "--format", "{{json .}}", timeout=30).stdout
    seen = [(e["Action"], e["Actor"]["Attributes"]["node.name"]) for e in map(json.loads, out.splitlines())]
    assert ("engine_disconnect", "node3") in seen and ("engine_connect", "node3") in seen


def test_sigkill_agent_expires_within_the_ttl(cluster):
    mgr, agents, _ = cluster
    agents.signal("node2", signal.SIGKILL)
    took = wait_for(lambda: "node2" not in healthy_nodes(mgr), TTL + 3, "node2 to expire")
    assert took <= TTL + 1.5
    agents.start("node2")
    wait_for(lambda: healthy_nodes(mgr).get("node2") == "Healthy", 10, "node2 back")


@contextlib.contextmanager
def engine_stopped(lab, name: str):
    """Stop a node's dockerd for the duration; it is started again (same data) afterwards."""
    node = lab.nodes[lab.names.index(name)]
    stop([node.dockerd])
    try:
        yield node
    finally:
        node.dockerd = start_dockerd(node, [lab.registry] if lab.registry else [])
        lab.save()
        wait_for(lambda: answers(node.engine), 30, f"{name} dockerd")


def test_a_stopped_engine_is_noticed_avoided_and_welcomed_back(cluster, lab):
    mgr, _, _ = cluster
    cid = mgr.docker("run", "-d", "--stop-timeout", "1", "-e", "constraint:node==node3", "busybox", "sleep",
                     "300").stdout.strip()
    with engine_stopped(lab, "node3"):
        took = wait_for(lambda: healthy_nodes(mgr).get("node3", "gone") in ("Unhealthy", "gone"),
                        TTL + 2, "node3 unhealthy or gone")
        assert took <= TTL + 1
        assert cid[:12] not in mgr.docker("ps", "-q").stdout
        refused = mgr.docker("run", "-d", "-e", "constraint:node==node3", "busybox", "true", check=False)
        assert refused.returncode == 125
        moved = mgr.docker("run", "-d", "busybox", "sleep", "300").stdout.strip()
        assert mgr.docker("inspect", "--format", "{{.Node.Name}}", moved).stdout.strip() != "node3"
    wait_for(lambda: healthy_nodes(mgr).get("node3") == "Healthy", 15, "node3 healthy again")
    wait_for(lambda: cid[:12] in mgr.docker("ps", "-aq").stdout, 10, "node3's container listed")
    mgr.docker("rm", "-f", cid, moved)


def test_unhealthy_engine_without_discovery_changes(lab, tmp_path):
    """nodes:// (no agents): failed calls alone make the engine Unhealthy, then Healthy again."""
    mgr = start_manager("nodes://" + ",".join(lab.engines), "--engine-failure-retry", "2",
                        healthy=3, log_dir=tmp_path)
    try:
        cid = mgr.docker("run", "-d", "--stop-timeout", "1", "-e", "constraint:node==node2", "busybox",
                         "sleep", "300").stdout.strip()
        since = int(time.time())
        with engine_stopped(lab, "node2"):
            took = wait_for(lambda: healthy_nodes(mgr).get("node2") == "Unhealthy", 10, "node2 unhealthy")
            assert took < 4
            assert cid[:12] not in mgr.docker("ps", "-q").stdout
            listed = mgr.docker("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout
            assert listed.strip() == "Host Down"
            stopped = mgr.docker("stop", cid, check=False)
            assert stopped.returncode == 1 and "running on unhealthy node node2" in stopped.stderr
            placed = mgr.docker("run", "-d", "busybox", "sleep", "300").stdout.strip()
            assert mgr.docker("inspect", "--format", "{{.Node.Name}}", placed).stdout.strip() != "node2"
        wait_for(lambda: healthy_nodes(mgr).get("node2") == "Healthy", 15, "node2 healthy again")
        assert cid[:12] in mgr.docker("ps", "-aq").stdout  # listed again (it died with its engine)
        out = mgr.docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
                         "--filter", "type=swarm", "--format", "{{json .}}", timeout=30).stdout
        actions = [(e["Action"], e["Actor"]["Attributes"]["node.name"]) for e in map(json.loads, out.splitlines())]
        assert ("engine_disconnect", "node2") in actions and ("engine_reconnect", "node2") in actions
        mgr.docker("rm", "-f", cid, placed)
    finally:
        mgr.stop()


def test_two_addresses_of_one_engine_are_reported_not_double_counted(lab, tmp_path):
    with tcp_forwarder(lab.engines[0]) as alias:
        mgr = start_manager(f"nodes://{lab.engines[0]},{alias}", healthy=1, log_dir=tmp_path)
        try:
            wait_for(lambda: any("ID duplicated" in v for _, v in mgr.info_rows()), 15,
                     "the duplicate to be reported")
            rows = mgr.info_rows()
            assert ("Nodes", "2") in rows
            assert [v for k, v in rows if k == "  └ Status"].count("Healthy") == 1
            error = next(v for k, v in rows if k == "  └ Error")
            assert lab.engines[0] in error and alias in error
            cid = mgr.docker("run", "-d", "busybox", "sleep", "300").stdout.strip()
            assert mgr.docker("ps", "-q").stdout.split() == [cid[:12]]
            _, info = mgr.api("GET", "/info")
            assert info["Containers"] == 1
            mgr.docker("rm", "-f", cid)
        finally:
            mgr.stop()


@contextlib.contextmanager
def tcp_forwarder(target: str):
    """A second address (on loopback) for an engine: a byte-for-byte TCP relay in a thread."""
    host, port = target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop_event = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop_event.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            upstream = socket.create_connection((host, int(port)))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop_event.set()
        thread.join()
        listener.close()


def test_etcd_restart_loses_no_node(cluster, lab):
    mgr, _, _ = cluster
    etcd = lab.procs["etcd"]
    cmd = Path(f"/proc/{etcd.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    stop([etcd])
    try:
        time.sleep(2)  # etcd down: the manager keeps its last known membership
        assert healthy_nodes(mgr) == dict.fromkeys(lab.names, "Healthy")
        assert mgr.docker("run", "--rm", "busybox", "echo", "still-works").stdout == "still-works\n"
    finally:
        lab.procs["etcd"] = spawn([c.decode() for c in cmd], Path(etcd.log))
        lab.save()
    time.sleep(TTL + 2)  # past a TTL after etcd is back: every agent has re-registered
    assert healthy_nodes(mgr) == dict.fromkeys(lab.names, "Healthy")
