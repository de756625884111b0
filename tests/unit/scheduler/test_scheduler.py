"""The Scheduler: configuration, soft rules, batches and the no-fit messages."""
from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scheduler import DEFAULT_FILTERS, ContainerInfo, ImageInfo, NoFit, Scheduler, SchedulerError
from tests.unit.scheduler.builders import bound, make_node, make_spec, publish

GIB, MIB = 1 << 30, 1 << 20
ROOT = Path(__file__).resolve().parents[3]


def no_fit(scheduler: Scheduler, spec, nodes) -> str:
    with pytest.raises(NoFit) as caught:
        scheduler.rank(spec, nodes)
    return caught.value.message


# ---- configuration ------------------------------------------------------------------------------
def test_defaults():
    s = Scheduler()
    assert s.filter_names == list(DEFAULT_FILTERS) == ["health", "port", "containerslots", "dependency",
                                                        "affinity", "constraint", "network"]
    assert s.strategy_name == "spread"
    assert Scheduler(filters=["constraint", "health"]).filter_names == ["constraint", "health"]
    assert Scheduler(strategy="binpacking").strategy_name == "binpack"


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": ["health", "whitelist"]}, "filter not supported: whitelist"),
    ({"strategy": "fastest"}, "strategy not supported: fastest"),
    ({"overcommit": -1}, "swarm.overcommit should be larger than -1, -1.000000 is invalid"),
    ({"overcommit": -2.0}, "swarm.overcommit should be larger than -1, -2.000000 is invalid"),
])
def test_bad_configuration(kwargs, message):
    with pytest.raises(SchedulerError) as caught:
        Scheduler(**kwargs)
    assert caught.value.message == message


def test_chosen_filters_are_the_only_ones_applied():
    nodes = [make_node("sick", {"size": "xxl"}, health=0), make_node("well", {"size": "small"})]
    spec = make_spec("constraint:size==xxl")
    assert [n.name for n in Scheduler(filters=["constraint"]).rank(spec, nodes)] == ["sick"]
    # no filters at all: every node is ranked, the unhealthy one last (spread weighs health)
    assert [n.name for n in Scheduler(filters=[]).rank(spec, nodes)] == ["well", "sick"]


# ---- errors -------------------------------------------------------------------------------------
def test_no_nodes_and_no_healthy_node():
    assert no_fit(Scheduler(), make_spec(), []) == "No nodes available in the cluster"
    assert no_fit(Scheduler(), make_spec(), [make_node("a", health=0)]) == "No healthy node available in the cluster"


def test_no_fit_message_keeps_classic_lines_and_explains_each_node():
    nodes = [make_node("node1", {"size": "small"}), make_node("node2", {"size": "small"}),
             make_node("node3", {"size": "xxl"}, (bound("web", "80"),)), make_node("node4", health=0)]
    spec = make_spec("constraint:size==xxl", host={"PortBindings": {"80/tcp": [{"HostPort": "80"}]}})
    assert no_fit(Scheduler(), spec, nodes) == (
        "Unable to find a node that satisfies the following conditions \n"
        "[port 80 (Bridge mode)]\n"
        "[available container slots]\n"
        "[size==xxl]\n"
        "0/4 nodes are available: 2 constraint size==xxl, 1 node is unhealthy, 1 port 80 already in use.\n"
        "node1: constraint size==xxl (node has size=small)\n"
        "node2: constraint size==xxl (node has size=small)\n"
        "node3: port 80 already in use (by web)\n"
        "node4: node is unhealthy")


def test_conditions_stop_at_the_filter_that_emptied_the_list():
    nodes = [make_node("a", {"containerslots": "0"})]
    message = no_fit(Scheduler(), make_spec("constraint:node==nosuch"), nodes)
    assert message.splitlines()[:3] == [
        "Unable to find a node that satisfies the following conditions ",
        "[available container slots]",
        "0/1 nodes are available: 1 no available container slots."]


def test_no_fit_lists_at_most_ten_nodes():
    nodes = [make_node(f"n{i:04}", {"size": "small"}) for i in range(1000)]
    lines = no_fit(Scheduler(), make_spec("constraint:size==xxl"), nodes).splitlines()
    assert lines[3] == "0/1000 nodes are available: 1000 constraint size==xxl."
    assert lines[4:] == [f"n{i:04}: constraint size==xxl (node has size=small)" for i in range(10)] + [
        "... and 990 more nodes"]


def test_no_resources_message():
    nodes = [make_node("node1", {"size": "small"}, cpus=1, memory=GIB),
             make_node("node2", {"size": "xxl"}, (ContainerInfo("big", memory=GIB - 10 * MIB),), cpus=1, memory=GIB),
             make_node("node3", {"size": "xxl"}, (ContainerInfo("cpu", cpus=1.0, memory=GIB),), cpus=1, memory=GIB)]
    spec = make_spec("constraint:size==xxl", host={"Memory": 64 * MIB, "NanoCpus": 500_000_000})
    assert no_fit(Scheduler(overcommit=0), spec, nodes) == (
        "no resources available to schedule container\n"
        "0/3 nodes are available: 1 constraint size==xxl, 1 insufficient memory, 1 insufficient cpus and memory.\n"
        "node1: constraint size==xxl (node has size=small)\n"
        "node2: insufficient memory (64 MiB requested, 10 MiB free of 1 GiB)\n"
        "node3: insufficient cpus and memory (cpus: 0.5 requested, 0 free of 1; "
        "memory: 64 MiB requested, 0 B free of 1 GiB)")


# ---- soft rules ---------------------------------------------------------------------------------
def test_soft_constraint_is_a_preference():
    nodes = [make_node("small", {"size": "small"}), make_node("xxl", {"size": "xxl"}, (ContainerInfo("c"),))]
    assert Scheduler().rank(make_spec("constraint:size==~xxl"), nodes)[0].name == "xxl"
    assert Scheduler().rank(make_spec("constraint:size==~huge"), nodes)[0].name == "small"
    message = no_fit(Scheduler(), make_spec("constraint:size==huge"), nodes)
    assert "[size==huge]" in message


def test_soft_affinity_prefers_nodes_with_the_image():
    nodes = [make_node("plain"),
             make_node("cached", containers=(ContainerInfo("c"),), images=(ImageInfo("i", ("redis:7",)),))]
    assert Scheduler().rank(make_spec("affinity:image==~redis"), nodes)[0].name == "cached"
    assert Scheduler().rank(make_spec("affinity:image==~nginx"), nodes)[0].name == "plain"


def test_soft_rules_yield_when_the_preferred_node_has_no_room():
    nodes = [make_node("preferred", {"disk": "ssd"}, (ContainerInfo("c", memory=GIB),), cpus=1, memory=GIB),
             make_node("other", cpus=1, memory=GIB)]
    spec = make_spec("constraint:disk==~ssd", host={"Memory": 100 * MIB})
    assert Scheduler(overcommit=0).rank(spec, nodes)[0].name == "other"


def test_hard_rules_still_bind_when_soft_ones_are_dropped():
    nodes = [make_node("a", {"zone": "1", "disk": "hdd"}), make_node("b", {"zone": "2", "disk": "ssd"})]
    spec = make_spec("constraint:zone==1", "constraint:disk==~ssd")
    assert [n.name for n in Scheduler().rank(spec, nodes)] == ["a"]


# ---- batches ------------------------------------------------------------------------------------
def place(scheduler: Scheduler, spec, nodes, count: int) -> Counter:
    """Place `count` copies one after another, recording each as a pending container."""
    nodes = list(nodes)
    for i in range(count):
        chosen = scheduler.rank(spec, nodes)[0]
        at = nodes.index(chosen)
        nodes[at] = make_node(chosen.name, chosen.labels, chosen.containers + (spec.as_container(f"p{i}"),),
                              cpus=chosen.cpus, memory=chosen.memory)
    return Counter({n.name: len(n.containers) for n in nodes})


@pytest.mark.parametrize("seed", range(5))
def test_spread_batch_of_ten_on_three_empty_nodes_ends_4_3_3(seed):
    nodes = [make_node(f"n{i}", cpus=2, memory=2 * GIB) for i in range(3)]
    counts = place(Scheduler(rng=random.Random(seed)), make_spec(), nodes, 10)
    assert sorted(counts.values()) == [3, 3, 4]


def test_binpack_with_memory_fills_one_node_before_the_next():
    nodes = [make_node(f"n{i}", cpus=2, memory=GIB) for i in range(3)]
    spec = make_spec(host={"Memory": 256 * MIB})
    scheduler = Scheduler(strategy="binpack", overcommit=0, rng=random.Random(1))
    assert sorted(place(scheduler, spec, nodes, 4).values()) == [0, 0, 4]
    assert sorted(place(scheduler, spec, nodes, 6).values()) == [0, 2, 4]
    assert sorted(place(scheduler, spec, nodes, 12).values()) == [4, 4, 4]
    with pytest.raises(NoFit, match="no resources available"):
        place(scheduler, spec, nodes, 13)


def test_pending_placements_block_the_same_port():
    nodes = [make_node(f"n{i}") for i in range(2)]
    assert sorted(place(Scheduler(), publish("80"), nodes, 2).values()) == [1, 1]
    with pytest.raises(NoFit, match="port 80 already in use"):
        place(Scheduler(), publish("80"), nodes, 3)


def test_scheduler_is_a_pure_library():
    code = ("import sys, scheduler; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('asyncio', 'aiohttp', 'socket', 'subprocess')); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_fit_names_the_rule_and_each_nodes_reason():
    nodes = [make_node("n1", {"size": "small"}, cpus=2, memory=GIB), make_node("n2", cpus=2, memory=GIB)]
    with pytest.raises(NoFit) as caught:
        Scheduler().rank(make_spec("constraint:size==xxl"), nodes)
    assert caught.value.rule == "constraint"
    assert caught.value.reasons == {"n1": "constraint size==xxl (node has size=small)",
                                    "n2": "constraint size==xxl (node has no label size)"}
    with pytest.raises(NoFit) as caught:
        Scheduler(overcommit=0).rank(make_spec(host={"Memory": 2 * GIB}), nodes)
    assert caught.value.rule == "resources" and set(caught.value.reasons) == {"n1", "n2"}
    with pytest.raises(NoFit) as caught:
        Scheduler().rank(make_spec(), [])
    assert caught.value.rule == "nodes" and caught.value.reasons == {}
