"""Properties of the scheduler that must hold for any cluster (hypothesis)."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import ContainerInfo, ExprError, NoFit, Scheduler, parse_expr
from tests.unit.scheduler.builders import make_node, make_spec

MIB = 1 << 20
STRATEGY_NAMES = st.sampled_from(["spread", "binpack", "random"])


def add(node, container: ContainerInfo):
    return make_node(node.name, node.labels, node.containers + (container,), cpus=node.cpus, memory=node.memory,
                     health=node.health)


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(0, 3), min_size=1, max_size=8), placements=st.integers(1, 30),
       seed=st.integers(0, 2**32))
def test_spread_keeps_container_counts_within_one(counts, placements, seed):
    """Starting within one of each other (e.g. empty), counts never drift further apart."""
    low = min(counts)
    nodes = [make_node(f"n{i}", containers=tuple(ContainerInfo(f"c{i}-{j}") for j in range(min(c, low + 1))),
                       cpus=4, memory=1 << 30) for i, c in enumerate(counts)]
    scheduler = Scheduler(rng=random.Random(seed))
    for k in range(placements):
        chosen = scheduler.rank(make_spec(), nodes)[0]
        assert len(chosen.containers) == min(len(n.containers) for n in nodes)
        nodes = [add(n, ContainerInfo(f"p{k}")) if n is chosen else n for n in nodes]
        sizes = [len(n.containers) for n in nodes]
        assert max(sizes) - min(sizes) <= 1


node_resources = st.tuples(st.floats(0, 8, allow_nan=False), st.integers(0, 8 * 1024),
                           st.floats(0, 10, allow_nan=False), st.integers(0, 10 * 1024))


@settings(max_examples=200, deadline=None)
@given(resources=st.lists(node_resources, min_size=1, max_size=6), strategy=STRATEGY_NAMES,
       cpus=st.sampled_from([0, 0.25, 0.5, 1, 1.5, 3]), memory_mib=st.sampled_from([0, 1, 256, 1024, 4096]),
       overcommit=st.sampled_from([0, 0.05, 0.5, -0.5]), seed=st.integers(0, 2**32))
def test_no_strategy_places_beyond_capacity(resources, strategy, cpus, memory_mib, overcommit, seed):
    """Placing the same spec until nothing fits never takes a node over its (overcommitted) totals."""
    nodes = [make_node(f"n{i}", containers=(ContainerInfo("old", cpus=used_cpus, memory=used_mib * MIB),),
                       cpus=total_cpus, memory=total_mib * MIB)
             for i, (total_cpus, total_mib, used_cpus, used_mib) in enumerate(resources)]
    scheduler = Scheduler(strategy=strategy, overcommit=overcommit, rng=random.Random(seed))
    spec = make_spec(host={"NanoCpus": int(cpus * 1e9), "Memory": memory_mib * MIB})
    for k in range(12):
        try:
            ranked = scheduler.rank(spec, nodes)
        except NoFit as err:
            assert err.message.startswith("no resources available to schedule container")
            assert cpus or memory_mib  # without reservations something always fits
            return
        for node in ranked:
            if cpus:
                assert node.used_cpus + spec.cpus <= scheduler.total_cpus(node) + 1e-9
            if memory_mib:
                assert node.used_memory + spec.memory <= scheduler.total_memory(node)
        nodes = [add(n, spec.as_container(f"p{k}")) if n is ranked[0] else n for n in nodes]


labels = st.fixed_dictionaries({}, optional={"zone": st.sampled_from("abc"), "disk": st.sampled_from(["ssd", "hdd"])})
rules = st.tuples(st.sampled_from(["zone", "disk", "node"]), st.sampled_from(["==", "!="]),
                  st.sampled_from(["a", "b", "ssd", "hdd", "n1", "*", "/s/"]))


@settings(max_examples=300, deadline=None)
@given(node_labels=st.lists(labels, min_size=1, max_size=5), hard=st.lists(rules, max_size=2),
       soft=st.lists(rules, min_size=1, max_size=3), soft_image=st.booleans(), strategy=STRATEGY_NAMES,
       seed=st.integers(0, 2**32))
def test_soft_rules_never_make_placement_fail(node_labels, hard, soft, soft_image, strategy, seed):
    nodes = [make_node(f"n{i}", node_label) for i, node_label in enumerate(node_labels)]
    hard_env = [f"constraint:{k}{op}{v}" for k, op, v in hard]
    soft_env = [f"constraint:{k}{op}~{v}" for k, op, v in soft] + ["affinity:image==~redis"] * soft_image
    scheduler = Scheduler(strategy=strategy, rng=random.Random(seed))
    try:
        scheduler.rank(make_spec(*hard_env), nodes)
    except NoFit:
        return
    chosen = scheduler.rank(make_spec(*hard_env, *soft_env), nodes)[0]
    for k, op, v in hard:  # and the hard rules still hold on the node chosen
        candidates = (chosen.name, chosen.id) if k == "node" else (chosen.labels.get(k, ""),)
        assert parse_expr(f"{k}{op}{v}").matches(candidates)


expression_text = st.one_of(
    st.text(),
    st.text(alphabet="ab_.-1=!~/*()[]?+^$|\\: \n", max_size=20),
    st.builds(lambda k, op, v: k + op + v, st.text(max_size=6), st.sampled_from(["==", "!=", "==~", "!=~", "="]),
              st.text(alphabet="ab1.*/()[]?+^$|\\~=!", max_size=12)),
)


@settings(max_examples=1000, deadline=None)
@given(text=expression_text, candidates=st.lists(st.text(max_size=8), max_size=4))
def test_parser_raises_only_its_own_error(text, candidates):
    try:
        e = parse_expr(text)
    except ExprError as err:
        assert f"'{text}'" in err.message
        return
    assert isinstance(e.matches(candidates), bool)
    assert e.operator in ("==", "!=") and text.lower().startswith(e.key)


SPECS = [make_spec(), make_spec("constraint:zone==a"), make_spec(host={"Memory": 300 * MIB}),
         make_spec("affinity:zone==~b", host={"Memory": 100 * MIB})]


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.sampled_from(["add", "sick", "drain",
                                                                                       "relabel", "none"])),
                      min_size=1, max_size=25),
       strategy=STRATEGY_NAMES, seed=st.integers(0, 2**32))
def test_choose_with_its_kept_keys_agrees_with_a_fresh_ranking(steps, strategy, seed):
    """One scheduler placing over and over while nodes change (the keys it keeps between calls)
    picks a node a fresh scheduler's full ranking could put first, every time."""
    nodes = [make_node(f"n{i}", {"zone": "ab"[i % 2]}, cpus=2, memory=1 << 30) for i in range(6)]
    kept = Scheduler(strategy=strategy, rng=random.Random(seed))
    for spec_index, node_index, change in steps:
        node = nodes[node_index]
        if change == "add":
            node = add(node, ContainerInfo(f"c{len(node.containers)}", memory=200 * MIB))
        elif change == "sick":
            node = make_node(node.name, node.labels, node.containers, cpus=2, memory=1 << 30, health=0)
        elif change == "drain":
            node = make_node(node.name, node.labels, node.containers, cpus=2, memory=1 << 30,
                             availability="drain")
        elif change == "relabel":
            node = make_node(node.name, {"zone": "b"}, node.containers, cpus=2, memory=1 << 30)
        nodes[node_index] = node  # in place: the kept keys must not trust the list object
        spec = SPECS[spec_index]
        try:
            fresh = Scheduler(strategy=strategy).rank(spec, nodes)
        except NoFit:
            try:
                kept.choose(spec, nodes)
            except NoFit:
                continue
            raise AssertionError("choose placed what rank cannot")
        firsts = {n.name for n in (Scheduler(strategy=strategy, rng=random.Random(s)).rank(spec, nodes)[0]
                                   for s in range(40))}
        assert kept.choose(spec, nodes).name in (firsts if strategy != "random" else {n.name for n in fresh})
