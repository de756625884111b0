"""ContainerSpec: a create body's rules, reservations, ports and dependencies."""
from __future__ import annotations

import copy
import json

import pytest

from scheduler import ContainerSpec, ExprError, PortBinding, SpecError

CONSTRAINTS = "com.docker.swarm.constraints"
AFFINITIES = "com.docker.swarm.affinities"
POLICIES = "com.docker.swarm.reschedule-policies"


def parse(body: dict, name: str | None = None) -> ContainerSpec:
    return ContainerSpec.from_create_body(body, name)


def test_rules_move_from_env_to_labels_label_form_first():
    body = {
        "Image": "nginx", "Cmd": ["nginx"],
        "Env": ["A=1", "constraint:size==xxl", "affinity:image==~nginx", "PATH=/bin:/usr/bin",
                "reschedule:on-node-failure", "whitelist:node==a", "constraint"],
        "Labels": {CONSTRAINTS: '["region==eu"]', "keep": "me"},
        "HostConfig": {"Memory": 1024}, "NetworkingConfig": {"EndpointsConfig": {"net1": {}}},
    }
    original = copy.deepcopy(body)
    spec = parse(body, "/web")
    assert [str(e) for e in spec.constraints] == ["region==eu", "size==xxl"]
    assert [str(e) for e in spec.affinities] == ["image==~nginx"]
    assert spec.name == "web" and spec.image == "nginx"
    out = spec.create_body()
    assert out["Env"] == ["A=1", "PATH=/bin:/usr/bin", "whitelist:node==a", "constraint"]
    assert out["Labels"] == {CONSTRAINTS: '["region==eu","size==xxl"]', AFFINITIES: '["image==~nginx"]',
                             POLICIES: '["on-node-failure"]', "keep": "me"}
    assert {k: v for k, v in out.items() if k not in ("Env", "Labels")} == {
        k: v for k, v in original.items() if k not in ("Env", "Labels")}
    assert body == original  # the caller's body is not changed
    out["HostConfig"]["Memory"] = 1
    assert body["HostConfig"]["Memory"] == 1024


def test_rules_survive_a_round_trip_through_the_labels():
    first = parse({"Image": "x", "Env": ["constraint:node==n1", "affinity:container!=db"]})
    again = parse(first.create_body())  # e.g. the manager reading the container back after a restart
    assert [str(e) for e in again.constraints] == ["node==n1"]
    assert [str(e) for e in again.affinities] == ["container!=db"]
    assert again.create_body() == first.create_body()


def test_body_without_rules_is_untouched():
    body = {"Image": "x", "Env": None, "Labels": None, "HostConfig": {"Links": ["db:db"]}}
    assert parse(body).create_body() == body
    assert parse({"Image": "x"}).create_body() == {"Image": "x"}


@pytest.mark.parametrize("body, cpus, memory", [
    ({"HostConfig": {"Memory": 64 << 20}}, 0.0, 64 << 20),
    ({"HostConfig": {"Memory": 64 << 20, "MemoryReservation": 32 << 20}}, 0.0, 32 << 20),
    ({"HostConfig": {"CpuShares": 512}}, 0.5, 0),  # the classic walkthrough's -c 512: half a CPU
    ({"HostConfig": {"CpuShares": 512, "NanoCpus": 1_500_000_000}}, 1.5, 0),
    ({"Memory": 10, "CpuShares": 2048, "HostConfig": {"Memory": 20}}, 2.0, 10),  # legacy top-level fields win
    ({"NanoCpus": 250_000_000}, 0.25, 0),
    ({}, 0.0, 0),
])
def test_reservations(body, cpus, memory):
    spec = parse({"Image": "x", **body})
    assert (spec.cpus, spec.memory) == (cpus, memory)


def test_bad_resource_values_are_spec_errors():
    with pytest.raises(SpecError, match="invalid Memory"):
        parse({"Image": "x", "HostConfig": {"Memory": "lots"}})


@pytest.mark.parametrize("env, labels, message", [
    (["reschedule:foo"], {}, "invalid reschedule policy: foo"),
    (["reschedule:off", "reschedule:on-node-failure"], {}, "too many reschedule policies"),
    (["reschedule:off"], {POLICIES: '["off"]'}, "too many reschedule policies"),
    ([], {CONSTRAINTS: "size==xxl"}, f"invalid label {CONSTRAINTS}: expected a JSON array of strings"),
    ([], {AFFINITIES: "[1]"}, f"invalid label {AFFINITIES}: expected a JSON array of strings"),
])
def test_spec_errors(env, labels, message):
    with pytest.raises(SpecError) as caught:
        parse({"Image": "x", "Env": env, "Labels": labels})
    assert caught.value.message == message


def test_accepted_reschedule_policies():
    assert parse({"Env": ["reschedule:off"]}).labels[POLICIES] == '["off"]'
    assert parse({"Labels": {POLICIES: json.dumps(["on-node-failure"])}}).labels[POLICIES] == '["on-node-failure"]'


def test_bad_expressions_are_named():
    with pytest.raises(ExprError, match=r"^invalid constraint '1bad==x': key '1bad' is invalid$"):
        parse({"Env": ["constraint:1bad==x"]})
    with pytest.raises(ExprError, match=r"^invalid affinity 'image=nginx': one of operator"):
        parse({"Env": ["affinity:image=nginx"]})


def test_ports_links_and_network():
    spec = parse({
        "Image": "x", "ExposedPorts": {"80/tcp": {}, "53": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostPort": ""}],
                                        "53": [{"HostPort": 53}], "443/tcp": None},
                       "NetworkMode": "container:db", "Links": ["cache:c"], "VolumesFrom": ["data:ro"]}})
    assert spec.port_bindings == (PortBinding("127.0.0.1", "8080", "80/tcp"), PortBinding("", "", "80/tcp"),
                                  PortBinding("", "53", "53/tcp"))
    assert spec.exposed_ports == ("80/tcp", "53/tcp")
    assert (spec.network_mode, spec.links, spec.volumes_from) == ("container:db", ("cache:c",), ("data:ro",))
    assert parse({}).network_mode == "default"


def test_as_container_carries_what_concurrent_placements_must_see():
    spec = parse({"Image": "nginx", "Env": ["constraint:size==xxl"], "Labels": {"a": "b"},
                  "HostConfig": {"Memory": 100, "NanoCpus": 2_000_000_000, "NetworkMode": "host",
                                 "PortBindings": {"80/tcp": [{"HostPort": "80"}]}},
                  "ExposedPorts": {"80/tcp": {}}}, "web")
    c = spec.as_container("pending-1")
    assert (c.id, c.names, c.image, c.memory, c.cpus, c.network_mode) == (
        "pending-1", ("web",), "nginx", 100, 2.0, "host")
    assert c.port_bindings == (PortBinding("", "80", "80/tcp"),) and c.exposed_ports == ("80/tcp",)
    assert c.labels == {"a": "b", CONSTRAINTS: '["size==xxl"]'}
    assert parse({}).as_container("p").names == ()


def test_hard_only_drops_soft_rules():
    spec = parse({"Env": ["constraint:a1==~x", "constraint:b1==y", "affinity:image==~z", "affinity:c1!=w"]})
    assert spec.has_soft_rules
    hard = spec.hard_only()
    assert [str(e) for e in hard.constraints + hard.affinities] == ["b1==y", "c1!=w"]
    assert not hard.has_soft_rules


@pytest.mark.parametrize("host, endpoints, expected", [
    ({}, None, ()),
    ({"NetworkMode": "default"}, {"bridge": {}}, ()),
    ({"NetworkMode": "host"}, None, ()),
    ({"NetworkMode": "none"}, None, ()),
    ({"NetworkMode": "container:web"}, None, ()),
    ({"NetworkMode": "app"}, {"app": {"Aliases": ["x"]}, "node2/back": {}}, ("app", "node2/back")),
    ({"NetworkMode": "node1/bridge"}, None, ("node1/bridge",)),
])
def test_networks_joined_are_the_non_builtin_ones(host, endpoints, expected):
    body = {"Image": "busybox", "HostConfig": host}
    if endpoints is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    assert parse(body).networks == expected
