"""Each filter on its own, with the classic examples."""
from __future__ import annotations


import pytest

from scheduler import ContainerInfo, ImageInfo, Node
from scheduler.filters import (AffinityFilter, ConstraintFilter, ContainerSlotsFilter, DependencyFilter,
                               HealthFilter, NetworkFilter, PortFilter)
from tests.unit.scheduler.builders import bound, kept_names, make_node, make_spec, publish, reasons


# ---- health -------------------------------------------------------------------------------------
def test_health_keeps_only_healthy_nodes():
    nodes = [make_node("a", health=100), make_node("b", health=0), make_node("c", health=40)]
    assert kept_names(HealthFilter(), make_spec(), nodes) == ["a", "c"]
    assert reasons(HealthFilter(), make_spec(), nodes) == {"b": "node is unhealthy"}
    assert [str(r) for r in HealthFilter().filter(make_spec(), nodes)[1].values()] == ["node is unhealthy"]


# ---- port ---------------------------------------------------------------------------------------
def test_port_bridge_binding_is_usable_once_per_node():
    nodes = [make_node("busy", containers=(bound("web", "80"),)), make_node("free", containers=(bound("x", "8080"),))]
    assert kept_names(PortFilter(), publish("80"), nodes) == ["free"]
    assert reasons(PortFilter(), publish("80"), nodes) == {"busy": "port 80 already in use (by web)"}
    assert kept_names(PortFilter(), publish("81"), nodes) == ["busy", "free"]


@pytest.mark.parametrize("used_ip, wanted_ip, conflict", [
    ("127.0.0.1", "10.0.0.1", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "0.0.0.0", True),
    ("", "127.0.0.1", True),
    ("0.0.0.0", "10.0.0.1", True),
    ("::", "::1", True),
])
def test_port_bridge_is_host_ip_aware(used_ip, wanted_ip, conflict):
    nodes = [make_node("a", containers=(bound("web", "80", used_ip),))]
    assert kept_names(PortFilter(), publish("80", wanted_ip), nodes) == ([] if conflict else ["a"])


def test_port_protocols_do_not_collide():
    nodes = [make_node("a", containers=(bound("dns", "53", container_port="53/udp"),))]
    assert kept_names(PortFilter(), publish("53", container_port="53/tcp"), nodes) == ["a"]
    assert reasons(PortFilter(), publish("53", container_port="53/udp"), nodes) == {
        "a": "port 53/udp already in use (by dns)"}


def test_port_random_host_port_needs_nothing():
    nodes = [make_node("a", containers=(bound("web", "80"),))]
    assert kept_names(PortFilter(), publish(""), nodes) == ["a"]
    assert PortFilter().describe(publish("")) == []


def test_port_counts_pending_placements():
    pending = publish("80").as_container("pending-1")
    nodes = [make_node("a", containers=(pending,)), make_node("b")]
    assert kept_names(PortFilter(), publish("80"), nodes) == ["b"]


def test_port_host_mode_uses_exposed_ports():
    host_web = ContainerInfo(id="h", names=("hostweb",), network_mode="host", exposed_ports=("80/tcp",))
    nodes = [make_node("a", containers=(host_web,)), make_node("b", containers=(bound("web", "80"),)), make_node("c")]
    spec = make_spec(host={"NetworkMode": "host"}, ExposedPorts={"80/tcp": {}})
    # a bridge binding of port 80 also takes the host's port 80 (classic Swarm did not check this)
    assert kept_names(PortFilter(), spec, nodes) == ["c"]
    other = make_spec(host={"NetworkMode": "host"}, ExposedPorts={"81/tcp": {}})
    assert kept_names(PortFilter(), other, nodes) == ["a", "b", "c"]
    # and a bridge binding collides with a host-mode container's exposed port
    assert kept_names(PortFilter(), publish("80"), nodes) == ["c"]


def test_port_descriptions_follow_classic():
    assert PortFilter().describe(publish("80")) == ["port 80 (Bridge mode)"]
    spec = make_spec(host={"NetworkMode": "host"}, ExposedPorts={"80/tcp": {}})
    assert PortFilter().describe(spec) == ["port 80/tcp (Host mode)"]


# ---- containerslots -----------------------------------------------------------------------------
def test_containerslots_caps_every_container_of_the_node():
    two = (ContainerInfo("c1"), ContainerInfo("c2"))
    nodes = [make_node("full", {"containerslots": "2"}, two), make_node("room", {"containerslots": "3"}, two),
             make_node("unlimited", {}, two), make_node("bad-label", {"containerslots": "lots"}, two)]
    assert kept_names(ContainerSlotsFilter(), make_spec(), nodes) == ["room", "unlimited", "bad-label"]
    assert reasons(ContainerSlotsFilter(), make_spec(), nodes) == {
        "full": "no available container slots (2 containers, containerslots=2)"}
    assert ContainerSlotsFilter().describe(make_spec()) == ["available container slots"]


# ---- dependency ---------------------------------------------------------------------------------
DB = ContainerInfo(id="f" * 64, names=("db",), labels={"com.docker.swarm.id": "a" * 64})
DATA = ContainerInfo(id="e" * 64, names=("data",))


@pytest.mark.parametrize("host, only", [
    ({"Links": ["db:database"]}, "with-db"),
    ({"Links": ["/db:/web/db"]}, "with-db"),  # the form docker inspect returns
    ({"VolumesFrom": ["data:ro"]}, "with-data"),
    ({"NetworkMode": "container:db"}, "with-db"),
    ({"NetworkMode": "container:" + "f" * 12}, "with-db"),
    ({"Links": ["a" * 64 + ":db"]}, "with-db"),  # Swarm ID
    ({"Links": ["with-db/db:db"]}, "with-db"),  # node/name
])
def test_dependency_colocates_with_target(host, only):
    nodes = [make_node("with-db", containers=(DB,)), make_node("with-data", containers=(DATA,)), make_node("empty")]
    assert kept_names(DependencyFilter(), make_spec(host=host), nodes) == [only]


def test_dependency_needs_all_targets_on_one_node():
    nodes = [make_node("with-db", containers=(DB,)), make_node("both", containers=(DB, DATA))]
    spec = make_spec(host={"Links": ["db:db"], "VolumesFrom": ["data"]})
    assert kept_names(DependencyFilter(), spec, nodes) == ["both"]
    assert reasons(DependencyFilter(), spec, nodes) == {
        "with-db": "dependency --volumes-from=data (no container data here)"}
    assert DependencyFilter().describe(spec) == ["--volumes-from=data", "--link=db:db"]


# ---- affinity -----------------------------------------------------------------------------------
NGINX = ImageInfo("sha256:" + "1" * 64, ("nginx:1.25", "nginx:latest"))
REDIS = ImageInfo("sha256:" + "2" * 64, ("localhost:5000/redis:7",))
WEB = ContainerInfo(id="c" * 64, names=("web-1",), image="nginx", labels={"com.example.role": "frontend"})
WORKER = ContainerInfo(id="d" * 64, names=("worker",), image="app", labels={"other": "x"})


def affinity_nodes() -> list[Node]:
    return [make_node("n1", containers=(WEB,), images=(NGINX,)),
            make_node("n2", containers=(WORKER,), images=(REDIS,)),
            make_node("n3")]


@pytest.mark.parametrize("rule, kept", [
    ("container==web-1", ["n1"]),
    ("container==" + "c" * 64, ["n1"]),
    ("container==" + "c" * 12, ["n1"]),
    ("container==web-*", ["n1"]),
    ("container==/ork/", ["n2"]),
    ("container!=web-1", ["n2", "n3"]),
    ("image==nginx", ["n1"]),
    ("image==nginx:1.25", ["n1"]),
    ("image==sha256:" + "2" * 64, ["n2"]),
    ("image==localhost:5000/redis", ["n2"]),
    ("image!=nginx", ["n2", "n3"]),
    ("com.example.role==frontend", ["n1"]),
    ("com.example.role!=frontend", ["n2", "n3"]),
    ("com.example.role==front*", ["n1"]),
])
def test_affinity_keys_and_operators(rule, kept):
    assert kept_names(AffinityFilter(), make_spec("affinity:" + rule), affinity_nodes()) == kept


def test_affinity_explains_each_node():
    spec = make_spec("affinity:image==nginx", "affinity:container!=worker")
    assert reasons(AffinityFilter(), spec, affinity_nodes()) == {
        "n2": "affinity image==nginx (no matching image)", "n3": "affinity image==nginx (no matching image)"}
    assert reasons(AffinityFilter(), make_spec("affinity:container!=work*"), affinity_nodes()) == {
        "n2": "affinity container!=work* (node has container 'worker')"}


def test_affinity_counts_pending_placements():
    pending = make_spec(name="cache").as_container("pending-2")
    nodes = [make_node("a"), make_node("b", containers=(pending,))]
    assert kept_names(AffinityFilter(), make_spec("affinity:container==cache"), nodes) == ["b"]


def test_affinity_description_has_soft_flag():
    spec = make_spec("affinity:image==~redis", "affinity:container!=web")
    assert AffinityFilter().describe(spec) == ["image==redis (soft=true)", "container!=web (soft=false)"]


# ---- constraint ---------------------------------------------------------------------------------
def constraint_nodes() -> list[Node]:
    return [make_node("node1", {"size": "small", "storage": "ssd", "region": "eu-west"}),
            make_node("node2", {"size": "xxl", "storage": "disk", "region": "us-east"}),
            make_node("node3", {"storage": "ssd"})]


@pytest.mark.parametrize("rule, kept", [
    ("size==xxl", ["node2"]),
    ("size!=xxl", ["node1", "node3"]),  # a missing label is '' and so passes !=
    ("node==node1", ["node1"]),
    ("node==id-node3", ["node3"]),
    ("node!=node1", ["node2", "node3"]),
    ("node==node*", ["node1", "node2", "node3"]),
    ("storage==ss*", ["node1", "node3"]),
    ("storage==s*d", ["node1", "node3"]),
    ("storage==sd", []),  # globs are anchored
    ("region==/east/", ["node2"]),  # regexes are not
    ("region==/^eu-/", ["node1"]),
    ("region==*", ["node1", "node2", "node3"]),
])
def test_constraint_matching(rule, kept):
    assert kept_names(ConstraintFilter(), make_spec("constraint:" + rule), constraint_nodes()) == kept


def test_constraints_narrow_in_turn_and_explain():
    spec = make_spec("constraint:storage==ssd", "constraint:size==xxl", "constraint:node!=node2")
    assert kept_names(ConstraintFilter(), spec, constraint_nodes()) == []
    assert reasons(ConstraintFilter(), spec, constraint_nodes()) == {
        "node1": "constraint size==xxl (node has size=small)",
        "node2": "constraint storage==ssd (node has storage=disk)",
        "node3": "constraint size==xxl (node has no label size)",
    }
    assert ConstraintFilter().describe(spec) == ["storage==ssd", "size==xxl", "node!=node2"]


def test_constraint_on_node_explains_node_name():
    assert reasons(ConstraintFilter(), make_spec("constraint:node==node9"), constraint_nodes()[:1]) == {
        "node1": "constraint node==node9 (node is node1)"}


def test_filters_without_rules_keep_every_node_in_order():
    nodes = constraint_nodes()
    for filter_ in (PortFilter(), DependencyFilter(), AffinityFilter(), ConstraintFilter()):
        kept, dropped = filter_.filter(make_spec(), nodes)
        assert (kept, dropped) == (nodes, {})


@pytest.mark.parametrize("tag, repo", [
    ("nginx:1.25", "nginx"),
    ("localhost:5000/redis:7", "localhost:5000/redis"),
    ("localhost:5000/redis", "localhost:5000/redis"),
    ("busybox@sha256:" + "3" * 64, "busybox"),
])
def test_image_repo_names(tag, repo):
    assert make_node("n", images=(ImageInfo("i", (tag,)),)).image_refs == {"i", tag, repo}


# ---- network ------------------------------------------------------------------------------------
def test_network_local_one_keeps_its_node_cluster_wide_one_its_members():
    nodes = [make_node("a", networks=frozenset({"a/app", "a/bridge", "ov"})),
             make_node("b", networks=frozenset({"b/app", "b/bridge", "ov"})),
             make_node("c", networks=frozenset({"c/bridge"}))]
    local = make_spec(host={"NetworkMode": "b/app"})
    assert kept_names(NetworkFilter(), local, nodes) == ["b"]
    assert reasons(NetworkFilter(), local, nodes) == {"a": "network b/app (only b has it)",
                                                      "c": "network b/app (only b has it)"}
    overlay = make_spec(host={"NetworkMode": "ov"}, NetworkingConfig={"EndpointsConfig": {"a/app": {}}})
    assert kept_names(NetworkFilter(), overlay, nodes) == ["a"]
    assert reasons(NetworkFilter(), overlay, nodes)["c"] == "network ov (node has no multi-host networking)"
    elsewhere = [make_node("d", networks=frozenset({"other"}), multihost="swarm-mode overlay (cluster y)")]
    assert reasons(NetworkFilter(), make_spec(host={"NetworkMode": "ov"}), elsewhere) == {
        "d": "network ov (not in the node's swarm-mode overlay (cluster y))"}
    assert NetworkFilter().describe(overlay) == ["network ov", "network a/app"]
    assert kept_names(NetworkFilter(), make_spec(host={"NetworkMode": "bridge"}), nodes) == ["a", "b", "c"]
