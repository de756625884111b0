"""`docker node ls / inspect / update` against Shoal with both CLIs (28 and 20.10): availability
(pause, drain), node labels in `constraint:` and `docker info`, kept across a manager restart."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from lab.procs import wait_until
from tests.support.manager import Manager, Restartable

CLIS = ("docker", "/usr/bin/docker")


@pytest.fixture(scope="module")
def managed(lab, tmp_path_factory):
    managed = Restartable("nodes://" + ",".join(lab.engines), healthy=3, log_dir=tmp_path_factory.mktemp("nodes"))
    try:
        yield managed
    finally:
        mgr = managed.mgr
        for node in lab.names:
            mgr.docker("node", "update", "--availability", "active", node, check=False)
        ids = mgr.docker("ps", "-aq").stdout.split()
        if ids:
            mgr.docker("rm", "-fv", *ids, check=False)
        mgr.stop()


def cli(mgr: Manager, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([binary, *args], env=mgr.env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{binary} {' '.join(args)}: rc={result.returncode} {result.stderr}")
    return result


def node_table(mgr: Manager, binary: str = "docker") -> dict[str, tuple[str, str]]:
    """hostname -> (STATUS, AVAILABILITY) from `docker node ls`."""
    out = cli(mgr, binary, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}").stdout
    return {host: (status, availability) for host, status, availability in map(str.split, out.splitlines())}


def test_node_ls_and_inspect_with_both_clis(managed, lab):
    mgr = managed.mgr
    for binary in CLIS:
        table = cli(mgr, binary, "node", "ls").stdout.splitlines()
        assert table[0].split()[:4] == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY"]
        assert [row.split()[1:4] for row in table[1:]] == [[n, "Ready", "Active"] for n in lab.names]
        ids = cli(mgr, binary, "node", "ls", "-q").stdout.split()
        assert len(set(ids)) == 3 and all(len(i) == 25 and i.isalnum() for i in ids)
        node = json.loads(cli(mgr, binary, "node", "inspect", "node2").stdout)[0]
        assert (node["ID"], node["Description"]["Hostname"], node["Status"]["Addr"]) == \
            (ids[1], "node2", lab.nodes[1].ip)
        assert json.loads(cli(mgr, binary, "node", "inspect", ids[1][:6]).stdout)[0]["ID"] == ids[1]
        pretty = cli(mgr, binary, "node", "inspect", "--pretty", "node2").stdout
        assert "Hostname:" in pretty and "node2" in pretty and "Ready" in pretty
        missing = cli(mgr, binary, "node", "inspect", "nosuchnode", check=False)
        assert missing.returncode != 0 and ("node nosuchnode not found" in missing.stderr  # CLI 28
                                            or "No such node: nosuchnode" in missing.stderr)  # 20.10
        assert "Swarm: inactive" in cli(mgr, binary, "info").stdout
    refused = mgr.docker("node", "update", "--role", "manager", "node1", check=False)
    assert refused.returncode != 0 and "cannot be promoted" in refused.stderr


def test_node_labels_steer_constraints_and_show_in_info(managed):
    mgr = managed.mgr
    cli(mgr, "/usr/bin/docker", "node", "update", "--label-add", "nd-tier=gold", "node3")
    cid = mgr.docker("run", "-d", "-e", "constraint:nd-tier==gold", "busybox", "sleep", "60").stdout.strip()
    assert mgr.docker("inspect", "-f", "{{.Node.Name}}", cid).stdout.strip() == "node3"
    assert "nd-tier=gold" in mgr.docker("info").stdout
    assert json.loads(mgr.docker("node", "inspect", "node3").stdout)[0]["Spec"]["Labels"] == {"nd-tier": "gold"}
    mgr.docker("node", "update", "--label-rm", "nd-tier", "node3")
    refused = mgr.docker("run", "-d", "-e", "constraint:nd-tier==gold", "busybox", "true", check=False)
    assert refused.returncode == 125 and "nd-tier==gold" in refused.stderr
    mgr.docker("rm", "-f", cid)


def test_pause_takes_nothing_new_and_drain_moves_policy_containers(managed):
    mgr = managed.mgr
    moving = mgr.docker("run", "-d", "--name", "nd-moving", "--stop-timeout", "1", "-e",
                        "reschedule:on-node-failure", "-e", "constraint:node==~node1", "busybox", "sleep",
                        "300").stdout.strip()
    staying = mgr.docker("run", "-d", "--name", "nd-staying", "-e", "constraint:node==~node1", "busybox", "sleep",
                         "300").stdout.strip()
    mgr.docker("node", "update", "--availability", "pause", "node2")
    since = time.time()
    cli(mgr, "/usr/bin/docker", "node", "update", "--availability", "drain", "node1")
    assert node_table(mgr)["node1"] == ("Ready", "Drain") and node_table(mgr)["node2"] == ("Ready", "Pause")
    placed = [mgr.docker("run", "-d", "busybox", "sleep", "60").stdout.strip() for _ in range(3)]
    assert {mgr.docker("inspect", "-f", "{{.Node.Name}}", c).stdout.strip() for c in placed} == {"node3"}

    def moved() -> bool:
        rows = mgr.docker("ps", "-a", "--filter", "name=nd-", "--format", "{{.Names}} {{.Status}}").stdout
        return sorted(r.split()[0] for r in rows.splitlines() if r.split()[1] == "Up") == \
            ["node1/nd-staying", "node3/nd-moving"] and len(rows.splitlines()) == 2

    wait_until(moved, 20, "nd-moving on node3, nd-staying kept on node1")
    assert mgr.docker("inspect", "-f", "{{.Id}}", "nd-staying").stdout.strip() == staying
    moved_to = mgr.docker("inspect", "-f", "{{.Id}}", "nd-moving").stdout.strip()
    assert moved_to != moving
    out = mgr.docker("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1), "--filter",
                     "event=start", "--filter", "event=die", "--format", "{{json .}}").stdout
    events = [json.loads(e) for e in out.splitlines()]
    started = next(e["timeNano"] for e in events if (e["id"], e["Action"]) == (moved_to, "start"))
    stopped = next(e["timeNano"] for e in events if (e["id"], e["Action"]) == (moving, "die"))
    assert started < stopped  # the old one was stopped only once the new one ran
    assert ["  └ Availability", "drain"] in [list(r) for r in mgr.info_rows()]
    for node in ("node1", "node2"):
        mgr.docker("node", "update", "--availability", "active", node)
    mgr.docker("rm", "-f", "nd-moving", "nd-staying", *placed)


def test_availability_and_labels_survive_a_manager_restart(managed):
    managed.mgr.docker("node", "update", "--availability", "pause", "--label-add", "nd-kept=yes", "node2")
    managed.restart()
    mgr = managed.mgr
    assert node_table(mgr)["node2"] == ("Ready", "Pause")
    assert json.loads(mgr.docker("node", "inspect", "node2").stdout)[0]["Spec"]["Labels"] == {"nd-kept": "yes"}
    cid = mgr.docker("run", "-d", "-e", "constraint:nd-kept==yes", "busybox", "true", check=False)
    assert cid.returncode == 125  # node2 has the label but is paused
    mgr.docker("node", "update", "--availability", "active", "--label-rm", "nd-kept", "node2")
