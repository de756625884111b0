"""Where networks are: reference resolution, create-body rewriting, node snapshots, ps filter."""
from __future__ import annotations

import json

import pytest

from manager.api.render import list_containers
from manager.cluster.cluster import Cluster
from manager.cluster.networks import cluster_networks, find_network, place_networks
from manager.cluster.options import EngineOptions
from manager.cluster.snapshot import node_snapshot
from manager.errors import ApiError
from scheduler import Scheduler
from tests.unit.manager.test_views import container, engine


def net(nid: str, name: str, scope: str = "local", driver: str = "bridge") -> dict:
    return {"Id": nid, "Name": name, "Scope": scope, "Driver": driver, "Labels": {}}


@pytest.fixture
def engines():
    e1 = engine("node1", "10.0.0.1:2375")
    e2 = engine("node2", "10.0.0.2:2375")
    e1.networks = [net("b1" * 32, "bridge"), net("a1" * 32, "app"), net("c1" * 32, "dup"),
                   net("ov" * 12 + "x", "ov", "swarm", "overlay")]
    e2.networks = [net("b2" * 32, "bridge"), net("c2" * 32, "dup"), net("ov" * 12 + "x", "ov", "swarm", "overlay")]
    return [e1, e2]


def test_references_resolve_like_classic_swarm(engines):
    assert find_network(cluster_networks(engines), "app").ref == "node1/app"
    assert find_network(cluster_networks(engines), "a1" * 32).ref == "node1/app"
    assert find_network(cluster_networks(engines), "a1a1").ref == "node1/app"
    assert find_network(cluster_networks(engines), "node2/dup").ref == "node2/dup"
    assert find_network(cluster_networks(engines), f"{engines[1].id}/dup").ref == "node2/dup"
    shared = find_network(cluster_networks(engines), "ov")
    assert (shared.ref, [e.name for e in shared.holders]) == ("ov", ["node1", "node2"])
    assert find_network(cluster_networks(engines), "node2/ov").id == shared.id


@pytest.mark.parametrize("ref, status, text", [
    ("dup", 400, "network dup is ambiguous (2 matches found based on name: node1/dup, node2/dup)"),
    ("bridge", 400, "node1/bridge, node2/bridge"),
    ("nosuch", 404, "network nosuch not found"),
    ("node3/app", 404, "network node3/app not found"),
    ("node2/app", 404, "network node2/app not found"),
])
def test_unknown_and_ambiguous_references_are_clear_errors(engines, ref, status, text):
    with pytest.raises(ApiError) as err:
        find_network(cluster_networks(engines), ref)
    assert err.value.status == status and text in err.value.message


def test_create_body_gets_plain_names_and_the_cluster_refs(engines):
    body = {"Image": "busybox", "HostConfig": {"NetworkMode": "node2/dup"},
            "NetworkingConfig": {"EndpointsConfig": {"node2/dup": {"Aliases": ["a"]}, "ov": {}}}}
    rewritten, refs = place_networks(cluster_networks(engines), body)
    assert refs == ("node2/dup", "ov")
    assert rewritten["HostConfig"]["NetworkMode"] == "dup"
    assert rewritten["NetworkingConfig"]["EndpointsConfig"] == {"dup": {"Aliases": ["a"]}, "ov": {}}
    assert body["HostConfig"]["NetworkMode"] == "node2/dup"  # the caller's body is untouched
    assert place_networks(cluster_networks(engines), {"HostConfig": {"NetworkMode": "bridge"}})[1] == ()
    with pytest.raises(ApiError) as err:  # 400, never 404: the CLI would try to pull the image
        place_networks(cluster_networks(engines), {"HostConfig": {"NetworkMode": "nosuch"}})
    assert err.value.status == 400 and err.value.message == "network nosuch not found"


def test_node_snapshot_lists_local_networks_qualified_and_shared_ones_plain(engines):
    assert node_snapshot(engines[0]).networks == {"node1/bridge", "node1/app", "node1/dup", "ov"}


def test_ps_network_filter_by_name_id_prefix_and_node_slash_name():
    on_app = container("a" * 64, "web")
    on_app["NetworkSettings"]["Networks"] = {"app": {"NetworkID": "f00d" * 16}}
    elsewhere = container("b" * 64, "db")
    elsewhere["NetworkSettings"]["Networks"] = {"app": {"NetworkID": "beef" * 16}}
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in (engine("node1", "10.0.0.1:2375", on_app),
                                           engine("node2", "10.0.0.2:2375", elsewhere))}

    def names(value: str) -> list[str]:
        rows = json.loads(b"".join(list_containers(cluster, {"filters": json.dumps({"network": [value]})})))
        return sorted(r["Names"][0] for r in rows)

    assert names("app") == ["/node1/web", "/node2/db"]
    assert names("node2/app") == ["/node2/db"]
    assert names("f00d") == ["/node1/web"]
    assert names("node3/app") == [] and names("other") == []


def test_the_cluster_networks_are_built_once_until_an_engine_lists_other_ones(engines):
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in engines}
    first = cluster.networks()
    assert cluster.networks() is first and cluster.find_network("app").ref == "node1/app"
    engines[1].remember_network(net("d2" * 32, "made"))  # a create through Shoal
    assert cluster.networks() is not first and cluster.find_network("made").ref == "node2/made"
    engines[0].forget_network("a1" * 32)
    with pytest.raises(ApiError):
        cluster.find_network("app")
