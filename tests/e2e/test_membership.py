"""The manager follows membership: agents in etcd, engines that come, go, die and come back."""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manager.lab_engine import answers, start_dockerd
from manager.lab_sys import spawn, stop
from tests.e2e.manager_fixture import REPO, Manager, start_manager

TTL, HEARTBEAT = 3.0, 1.0


class Agents:
    """`shoal join` processes, one per lab node, on one etcd prefix."""

    def __init__(self, lab, discovery: str, log_dir: Path) -> None:
        self.lab, self.discovery, self.log_dir = lab, discovery, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        engine = self.lab.engines[self.lab.names.index(name)]
        log = open(self.log_dir / f"agent-{name}.log", "a")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "manager.cli", "join", "--advertise", engine,
             "--heartbeat", f"{HEARTBEAT:g}s", "--ttl", f"{TTL:g}s", self.discovery],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.signal(name, signal.SIGTERM)


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
    listed = subprocess.run([sys.executable, "-m", "manager.cli", "list", discovery], cwd=REPO,
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


def test_a_stopped_engine_is_noticed_avoided_and_welcomed_back(cluster, lab):
    mgr, _, _ = cluster
    cid = mgr.docker("run", "-d", "-e", "constraint:node==node3", "busybox", "sleep", "300").stdout.strip()
    node = lab.nodes[lab.names.index("node3")]
    stop([node.dockerd])
    try:
        took = wait_for(lambda: healthy_nodes(mgr).get("node3", "gone") in ("Unhealthy", "gone"),
                        TTL + 2, "node3 unhealthy or gone")
        assert took <= TTL + 1
        assert cid[:12] not in mgr.docker("ps", "-q").stdout
        refused = mgr.docker("run", "-d", "-e", "constraint:node==node3", "busybox", "true", check=False)
        assert refused.returncode == 125
        moved = mgr.docker("run", "-d", "busybox", "sleep", "300").stdout.strip()
        assert mgr.docker("inspect", "--format", "{{.Node.Name}}", moved).stdout.strip() != "node3"
    finally:
        node.dockerd = start_dockerd(node, [lab.registry] if lab.registry else [])
        lab.save()
        wait_for(lambda: answers(node.engine), 30, "node3 dockerd")
    wait_for(lambda: healthy_nodes(mgr).get("node3") == "Healthy", 15, "node3 healthy again")
    wait_for(lambda: cid[:12] in mgr.docker("ps", "-aq").stdout, 10, "node3's container listed")
    mgr.docker("rm", "-f", cid, moved)


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
