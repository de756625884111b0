"""Overlay domains from the engines' /info and network lists: membership, where an overlay is made,
the `docker info` rows, and the snapshots the network filter reads."""
from __future__ import annotations

import asyncio
import json

import pytest

from manager.api.render import info
from manager.cluster.cluster import Cluster
from manager.cluster.engine import NETWORK_SETTLE, membership_of
from manager.cluster.options import EngineOptions
from manager.cluster.overlay import KV, SWARM, Domain, overlay_view, shared_networks
from manager.errors import ApiError
from scheduler import ContainerSpec, NoFit, Scheduler
from tests.unit.manager.test_networks import net
from tests.unit.manager.test_views import engine


def swarm_info(node_id: str, manager: bool, managers=("m1",), cluster="clu1") -> dict:
    remotes = [{"NodeID": m, "Addr": f"10.0.0.{i + 1}:2377"} for i, m in enumerate(managers)]
    swarm = {"LocalNodeState": "active", "ControlAvailable": manager, "NodeID": node_id, "RemoteManagers": remotes}
    if manager:
        swarm["Cluster"] = {"ID": cluster}
    return {"Swarm": swarm}


OVERLAY = net("ov" * 12 + "x", "appnet", "swarm", "overlay") | {"Attachable": True}
INGRESS = net("in" * 12 + "x", "ingress", "swarm", "overlay") | {"Ingress": True}
PLAIN_SWARM = net("ps" * 12 + "x", "services", "swarm", "overlay")  # not attachable


@pytest.fixture
def cluster() -> Cluster:
    """node1: swarm manager listing the overlay; node2: a worker (lists only ingress); node3: nothing."""
    c = Cluster(Scheduler(), EngineOptions())
    engines = [engine("node1", "10.0.0.1:2375"), engine("node2", "10.0.0.2:2375"), engine("node3", "10.0.0.3:2375")]
    engines[0].membership = membership_of(swarm_info("m1", True))
    engines[1].membership = membership_of(swarm_info("w1", False))
    engines[0].networks = [net("b1" * 32, "bridge"), OVERLAY, INGRESS, PLAIN_SWARM]
    engines[1].networks = [net("b2" * 32, "bridge"), INGRESS]
    engines[2].networks = [net("b3" * 32, "bridge")]
    c.engines = {e.addr: e for e in engines}
    return c


def test_a_worker_is_in_its_managers_cluster_and_reaches_its_attachable_overlays(cluster):
    view = cluster.overlay()
    e1, e2, e3 = cluster.listed_engines()
    assert view.domain_of(e1) == view.domain_of(e2) == Domain(SWARM, "clu1")
    assert view.domain_of(e3) is None
    assert cluster.overlay_networks() == {Domain(SWARM, "clu1"): {"appnet"}}  # not ingress, not a non-attachable one
    assert view.creator(Domain(SWARM, "clu1"), [e2, e1]) is e1
    assert view.largest([e1, e2, e3]) == Domain(SWARM, "clu1") and view.everywhere([e1, e2, e3]) is None
    assert view.everywhere([e1, e2]) == Domain(SWARM, "clu1")
    worker = cluster.node(e2)
    assert worker.networks == {"node2/bridge", "ingress", "appnet"}
    assert worker.multihost == "swarm-mode overlay (cluster clu1)"
    assert cluster.node(e3).networks == {"node3/bridge"} and cluster.node(e3).multihost == ""


def test_a_create_without_a_driver_is_an_overlay_only_when_every_healthy_node_can_join_one(cluster):
    view = cluster.overlay()
    e1, e2, e3 = cluster.listed_engines()
    assert view.default_driver([e1, e2]) == "overlay"
    assert view.default_driver([e1, e2, e3]) == "bridge"  # node3 has no multi-host networking
    assert view.default_driver([e2]) == "bridge"  # a worker alone cannot create one
    assert view.default_driver([]) == "bridge"


def network_event(action: str, network: dict, scope: str) -> dict:
    """A network event as dockerd 20.10 sends it."""
    return {"Type": "network", "Action": action, "scope": scope,
            "Actor": {"ID": network["Id"], "Attributes": {"name": network["Name"], "type": "overlay"}}}


async def test_an_overlay_stays_on_its_swarm_manager_when_its_last_local_container_leaves(cluster):
    e1, e2, _ = cluster.listed_engines()
    await e1._apply(network_event("destroy", OVERLAY, "local"))  # the node's data plane let go of it
    assert "appnet" in cluster.overlay_networks()[Domain(SWARM, "clu1")]
    e2.networks = [*e2.networks, OVERLAY]  # a worker lists it while a container of its is on it
    await e2._apply(network_event("destroy", OVERLAY, "local"))
    assert OVERLAY not in e2.networks  # as the worker's own list has it then
    await e1._apply(network_event("remove", OVERLAY, "swarm"))  # the network's removal
    assert OVERLAY not in e1.networks and Domain(SWARM, "clu1") not in cluster.overlay_networks()


async def test_a_late_disconnect_from_a_removed_overlay_does_not_bring_it_back(cluster):
    _, e2, _ = cluster.listed_engines()
    listings = []

    async def still_listed(path: str, **_: object) -> list[dict]:  # the worker lets go a moment later
        listings.append(path)
        return [*e2.networks, OVERLAY]

    e2.get_json = still_listed
    await e2._apply(network_event("disconnect", OVERLAY, "swarm") | {"Actor": {
        "ID": OVERLAY["Id"], "Attributes": {"name": "appnet", "type": "overlay", "container": "c" * 64}}})
    assert listings == [] and OVERLAY not in e2.networks and e2._listing_networks is None
    await e2._apply(network_event("connect", OVERLAY, "swarm"))  # a container of the worker joins it
    await e2._listing_networks
    assert listings == ["/networks"] and OVERLAY in e2.networks


async def test_events_about_networks_made_outside_shoal_share_one_listing_and_a_removed_one_none(cluster):
    e1 = cluster.listed_engines()[0]
    outside = [net(f"o{i}" * 12 + "x", f"outside{i}", "swarm", "overlay") | {"Attachable": True} for i in range(3)]
    engine_lists = [*e1.networks]
    listings = []

    async def listed(path: str, **_: object) -> list[dict]:
        listings.append(path)
        return list(engine_lists)

    e1.get_json = listed
    engine_lists.append(outside[0])
    await e1._apply(network_event("create", outside[0], "swarm"))  # made straight on the engine...
    await e1._apply(network_event("update", outside[0], "swarm"))
    await e1._apply(network_event("remove", outside[0], "swarm"))  # ...and removed at once
    engine_lists.remove(outside[0])
    for _ in range(5):  # one after another, each gone within NETWORK_SETTLE: never listed
        await e1._apply(network_event("create", outside[0], "swarm"))
        await asyncio.sleep(NETWORK_SETTLE / 3)
        await e1._apply(network_event("remove", outside[0], "swarm"))
    await e1._listing_networks
    assert listings == [] and outside[0] not in e1.networks
    for network in outside[1:]:  # a burst: one listing, after it
        engine_lists.append(network)
        await e1._apply(network_event("create", network, "swarm"))
        assert listings == []
    await e1._listing_networks
    assert listings == ["/networks"] and all(n in e1.networks for n in outside[1:])
    assert {"outside1", "outside2"} <= cluster.overlay_networks()[Domain(SWARM, "clu1")]


def test_placement_on_an_overlay_skips_the_nodes_outside_it(cluster):
    spec = ContainerSpec.from_create_body({"Image": "busybox", "HostConfig": {"NetworkMode": "appnet"}})
    ranked = cluster.scheduler.rank(spec, cluster.nodes())
    assert sorted(n.name for n in ranked) == ["node1", "node2"]
    for sick in cluster.listed_engines()[:2]:
        sick.state = "Unhealthy"
        sick._changed()
    with pytest.raises(NoFit) as err:
        cluster.scheduler.rank(spec, cluster.nodes())
    assert "node3: network appnet (node has no multi-host networking)" in err.value.message


def test_a_worker_whose_managers_are_unknown_is_a_domain_of_its_own():
    lone = engine("w", "10.0.0.9:2375")
    lone.membership = membership_of(swarm_info("w9", False, managers=("m7", "m8")))
    assert overlay_view([lone]).domain_of(lone) == Domain(SWARM, "managers m7,m8")
    assert overlay_view([lone]).creator(Domain(SWARM, "managers m7,m8"), [lone]) is None


def test_kv_members_share_global_networks_and_any_can_create():
    engines = [engine(f"n{i}", f"10.0.0.{i}:2375") for i in (1, 2)]
    for e in engines:
        e.membership = membership_of({"ClusterStore": "etcd://10.0.0.100:2379"})
    engines[0].networks = [net("g" * 64, "kvnet", "global", "overlay")]
    view = overlay_view(engines)
    domain = Domain(KV, "etcd://10.0.0.100:2379")
    assert view.everywhere(engines) == domain and shared_networks(view, engines) == {domain: {"kvnet"}}
    assert view.creator(domain, engines[::-1]) is engines[1]
    assert view.default_driver(engines[1:]) == "overlay"


def test_info_rows_show_the_cluster_and_each_node(cluster):
    rows = dict(json.loads(b"".join(info(cluster, [["Role", "primary"]])))["SystemStatus"])
    assert rows["Multi-host networking"] == "swarm-mode overlay (cluster clu1, 2/3 nodes)"
    node_rows = [v for k, v in json.loads(b"".join(info(cluster, [])))["SystemStatus"] if k == "  └ Multi-host networking"]
    assert node_rows == ["swarm-mode overlay manager (cluster clu1)", "swarm-mode overlay worker (cluster clu1)",
                         "none (not in a swarm-mode cluster, no cluster-store)"]
    assert json.loads(b"".join(info(cluster, [])))["Swarm"]["LocalNodeState"] == "inactive"


def test_a_network_create_changes_the_domains_networks_not_the_domains(cluster):
    e1, e2, _ = cluster.listed_engines()
    view = cluster.overlay()
    e1.remember_network(net("nw" * 12 + "x", "newnet", "swarm", "overlay") | {"Attachable": True})
    assert cluster.overlay() is view and "newnet" in cluster.overlay_networks()[Domain(SWARM, "clu1")]
    assert "newnet" in cluster.node(e2).networks  # placement sees it on the worker at once
    e2.networks = [*e2.networks, net("st" * 12 + "x", "stale", "swarm", "overlay")]  # gone from the managers
    assert cluster.has_network_named("appnet") and cluster.has_network_named("newnet")
    assert not cluster.has_network_named("stale") and not cluster.has_network_named("nosuch")


async def test_a_failed_listing_of_an_unknown_network_has_everything_listed_again(cluster):
    e1 = cluster.listed_engines()[0]

    async def refused(path: str, **_: object) -> list[dict]:
        raise ApiError(500, "engine busy")

    e1.get_json = refused
    await e1._apply(network_event("create", net("u" * 25, "outside", "swarm", "overlay"), "swarm"))
    await e1._listing_networks  # no exception out of it
    assert e1._wake.is_set()  # the refresh loop's full listing comes next
