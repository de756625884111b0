"""The pure parts of rescheduling and node settings: what a re-create sends, node IDs, update
checks, and the state file surviving a restart."""
from __future__ import annotations

import json

import pytest

from manager.cluster.engine import Engine
from manager.cluster.options import EngineOptions
from manager.cluster.nodes import NodeSettings, node_id, updated
from manager.cluster.containers import Interner, from_inspect
from manager.cluster.reschedule import create_config, pending_summary
from manager.cluster.state import FileState
from manager.errors import ApiError

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


def test_waiting_moves_are_summarised_per_node():
    e = engine()
    records = {"s1": {"swarm_id": "s1", "name": "web", "from_node": e.id, "state": "pending", "reason": "node failure",
                      "attempts": 2, "error": "no node fits", "next_try": 0},
               "s2": {"swarm_id": "s2", "name": "db", "from_node": e.id, "state": "done"},
               "s3": {"swarm_id": "s3", "name": "x", "from_node": "other", "state": "pending"}}
    assert pending_summary(records, e) == "web: attempt 2 failed, retry in 0s: no node fits"


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
