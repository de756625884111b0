"""The pure parts of rescheduling and node settings: what a re-create sends, the inventory of
policy containers, node IDs, update checks, and the state file surviving a restart."""
from __future__ import annotations

import json

import pytest

from manager.cluster.cluster import Cluster
from manager.cluster.engine import HEALTHY, Engine
from manager.cluster.options import EngineOptions
from manager.cluster.nodes import NodeSettings, node_id, updated
from manager.cluster.containers import Interner, from_inspect
from manager.cluster.inventory import Inventory, create_config
from manager.cluster.leader import Solo
from manager.cluster.reschedule import pending_summary
from manager.cluster.state import FileState
from manager.errors import ApiError
from scheduler import Scheduler

CID = "0123456789ab" + "f" * 52


def engine(docker_id: str = "AAAA:BBBB", addr: str = "10.0.0.1:2375") -> Engine:
    e = Engine(addr, None, EngineOptions(), lambda *a: None, lambda e: None)
    e.id, e.name = f"{docker_id}|{addr}", "node1"
    return e


def record(**over):
    """The cache's record of an inspected container."""
    body = inspected(**over)
    return from_inspect(body, "node1", "10.0.0.1", Interner(), json.dumps(body).encode())


def inspected(**over) -> dict:
    body = {"Id": CID, "Name": "/web",
            "Config": {"Hostname": CID[:12], "Image": "busybox",
                       "Labels": {"com.docker.swarm.reschedule-policies": '["on-node-failure"]'}},
            "HostConfig": {"NetworkMode": "front", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
            "NetworkSettings": {"Networks": {
                "front": {"Aliases": [CID[:12], "web"], "Links": None, "IPAMConfig": None},
                "back": {"Aliases": [CID[:12]], "Links": None, "IPAMConfig": None}}}}
    body.update(over)
    return body


def test_the_re_create_keeps_the_config_and_joins_the_other_networks_after():
    body, others = create_config(record())
    assert "Hostname" not in body and body["Image"] == "busybox"
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostPort": "8080"}]}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"front": {"Aliases": ["web"]}}}
    assert others == {"back": {"Aliases": None}}
    assert create_config(record(Config={"Hostname": "db", "Image": "busybox"}))[0]["Hostname"] == "db"
    fixed = record(NetworkSettings={"Networks": {
        "front": {"Aliases": None, "IPAMConfig": {"IPv4Address": "10.0.1.6"}},
        "back": {"Aliases": None, "IPAMConfig": {"IPv4Address": "172.20.0.9"}}}})
    body, others = create_config(fixed, shared={"front"})  # an overlay: the engine's record of the address
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"front": {"Aliases": None}}}
    assert others == {"back": {"Aliases": None, "IPAMConfig": {"IPv4Address": "172.20.0.9"}}}


async def test_the_inventory_follows_the_healthy_engines_and_ignores_copies_left_behind():
    cluster = Cluster(Scheduler(), EngineOptions())
    first, second = engine("AAAA:1", "10.0.0.1:2375"), engine("BBBB:2", "10.0.0.2:2375")
    for e in (first, second):
        e.state = HEALTHY
        cluster.engines[e.addr] = e
    inventory = Inventory(cluster, Solo())
    await inventory.close()  # reconciled by hand here
    labels = {"com.docker.swarm.reschedule-policies": '["on-node-failure"]', "com.docker.swarm.id": "s1"}
    moved = "9" * 64

    def held(e: Engine, cid: str, running: bool = True) -> None:
        e.containers.store(cid, record(Id=cid, Config={"Image": "busybox", "Labels": labels},
                                       Created="2026-12-0%dT10:00:00Z" % (1 + (cid == moved)),
                                       State={"Running": running, "Status": "running" if running else "created"}))

    held(first, CID)
    first.containers.store("e" * 64, record(Id="e" * 64, Config={"Image": "busybox", "Labels": {}}))
    await inventory.reconcile(first)
    assert list(inventory.records) == ["s1"]  # only the policy container
    assert {k: inventory.records["s1"][k] for k in ("node", "id", "running", "name")} == \
        {"node": first.id, "id": CID, "running": True, "name": "web"}
    assert inventory.records["s1"]["config"]["Image"] == "busybox"
    held(second, moved, running=False)  # the copy a move made on the second engine
    await inventory.reconcile(second)
    assert (inventory.records["s1"]["node"], inventory.records["s1"]["running"]) == (second.id, False)
    await inventory.reconcile(first)  # the first still lists its copy: the record stays with the moved one
    assert inventory.records["s1"]["id"] == moved
    first.containers.store(CID, None)
    await inventory.reconcile(first)
    assert inventory.records["s1"]["id"] == moved
    held(first, CID)  # the old copy, listed again when its node came back and not removed yet
    await inventory.reconcile(first)
    assert inventory.records["s1"]["id"] == moved
    second.containers.store(moved, None)
    await inventory.reconcile(second)
    assert inventory.records == {}


def test_waiting_moves_are_summarised_per_node():
    e = engine()
    records = {"s1": {"swarm_id": "s1", "name": "web", "from_node": e.id, "from_name": "node1", "state": "pending",
                      "reason": "node failure", "attempts": 2, "error": "no node fits", "next_try": 0},
               "s2": {"swarm_id": "s2", "name": "db", "from_node": e.id, "from_name": "node1", "state": "done"},
               "s3": {"swarm_id": "s3", "name": "", "from_node": "gone", "from_name": "node9", "state": "pending",
                      "reason": "node failure", "error": ""}}
    assert pending_summary(records, (e.id,)) == "web: attempt 2 failed, retry in 0s: no node fits"
    assert pending_summary(records, {e.id, "gone"}, named=True) == \
        "node1: web: attempt 2 failed, retry in 0s: no node fits; node9: s3: moving (node failure)"


def test_node_ids_are_stable_per_docker_id_and_shaped_like_swarm_ids():
    one = node_id(engine())
    assert one == node_id(engine(addr="10.0.0.9:2375")) and len(one) == 25 and one.isalnum() and one.islower()
    assert node_id(engine("CCCC:DDDD")) != one


def test_node_updates_are_checked():
    settings = NodeSettings()
    new = updated(settings, {"Availability": "drain", "Labels": {"a": "1"}, "Role": "worker"}, "1")
    assert (new.availability, new.labels, new.version) == ("drain", {"a": "1"}, 2)
    for spec, version, status in [({}, "2", 409), ({}, None, 400), ({"Availability": "sleep"}, "1", 400),
                                  ({"Role": "manager"}, "1", 400), ({"Labels": {"a": 1}}, "1", 400)]:
        with pytest.raises(ApiError) as err:
            updated(settings, spec, version)
        assert err.value.status == status


async def test_the_state_file_survives_a_restart(tmp_path):
    path = tmp_path / "state.json"
    first = FileState(path)
    seen = []
    first.listen(lambda *change: seen.append(change))
    await first.save("nodes", "n1", NodeSettings(availability="pause").as_state())
    assert seen == [("nodes", "n1", NodeSettings(availability="pause").as_state())]
    assert FileState(path).items("nodes")["n1"]["availability"] == "pause"
    await first.save("nodes", "n1", None)
    assert FileState(path).items("nodes") == {}
    path.write_text("{not json")
    with pytest.raises(Exception, match="cannot read state file"):
        FileState(path)
