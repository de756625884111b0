"""etcd is not a single point of failure: a 3-member etcd cluster of local processes, agents and two
replicated managers on `etcd://m1,m2,m3/prefix`; one member is killed while the agents heartbeat,
`shoal list` still lists them, the managers still elect a new primary and a container reschedules,
no node flaps, and the member comes back and rejoins."""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time

import pytest

from lab.daemons import REPO, shoal_command, start_agent
from lab.etcd import EtcdCluster
from lab.procs import stop, wait_until
from tests.support.engines import kill_engine, restart_engine
from tests.support.manager import start_replicated

TTL = 3


@pytest.fixture(scope="module")
def etcd3(tmp_path_factory):
    with EtcdCluster(3, tmp_path_factory.mktemp("etcd3")) as cluster:
        yield cluster


def role(mgr) -> str:
    try:
        return dict(mgr.info_rows()).get("Role", "")
    except OSError:
        return "down"


def test_a_member_dies_and_everything_keeps_working(lab, etcd3, tmp_path):
    discovery = f"etcd://{etcd3.endpoints}/{secrets.token_hex(8)}"
    agents = [start_agent(engine, discovery, tmp_path / f"agent-{k}.log") for k, engine in enumerate(lab.engines)]
    managers = []
    try:
        managers = start_replicated(discovery, 2, TTL, "--engine-failure-retry", "2", healthy=3, log_dir=tmp_path)
        wait_until(lambda: sorted(map(role, managers)) == ["primary", "replica"], 2 * TTL + 5, "one primary")
        primary = next(m for m in managers if role(m) == "primary")
        replica = next(m for m in managers if m is not primary)
        since = time.time()
        replica.docker("run", "-d", "--name", "ec-moved", "-e", "reschedule:on-node-failure",
                       "-e", "constraint:node==~node2", "busybox", "sleep", "300")

        dead = etcd3.members[0]
        dead.proc.signal(signal.SIGKILL)
        time.sleep(3 * 1.0 + 1)  # three heartbeats go through the other members
        assert replica.healthy_count() == 3
        listed = subprocess.run(shoal_command("list", "--timeout", "5s", discovery), cwd=REPO, capture_output=True,
                                text=True, timeout=30, check=True).stdout.split()
        assert sorted(listed) == sorted(lab.engines)  # `shoal list` fails over too
        primary.proc.signal(signal.SIGKILL)
        took = wait_until(lambda: role(replica) == "primary", TTL + 5, "the replica to take over")
        print(f"failover with one etcd member down: {took:.2f}s (ttl {TTL}s)")
        assert took <= TTL + 2
        kill_engine(lab, "node2")
        try:
            wait_until(lambda: replica.docker("ps", "--filter", "name=ec-moved", "--format", "{{.Names}}").stdout
                       .strip() in ("node1/ec-moved", "node3/ec-moved"), 15, "ec-moved rescheduled")
        finally:
            restart_engine(lab, "node2")
        dead.start()  # same data dir: it rejoins as the member it was
        wait_until(lambda: all(b'"true"' in m._get("/health") for m in etcd3.members), 15, "3 healthy members")
        wait_until(lambda: replica.healthy_count() == 3 and replica.docker(
            "ps", "-a", "--filter", "name=ec-moved", "--format", "{{.Names}}").stdout.count("ec-moved") == 1,
            40, "node2 back, one copy of ec-moved")
        out = replica.docker("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                             "--filter", "type=swarm", "--filter", "event=engine_disconnect",
                             "--format", "{{json .}}").stdout
        flapped = {json.loads(e)["Actor"]["Attributes"]["node.name"] for e in out.splitlines()}
        assert flapped <= {"node2"}, flapped  # only the node whose engine was killed
        replica.docker("rm", "-f", "ec-moved")
    finally:
        stop([m.proc for m in managers] + agents)
