"""What the dashboard shows of a decision: a no-fit's reasons grouped, so 1,000 nodes stay a few lines."""
from __future__ import annotations

from manager.api.dashboard.view import NODES_NAMED, REASON_GROUPS, placement
from manager.cluster.placements import NO_FIT, PLACED, Placement


def no_fit(reasons: dict[str, str]) -> Placement:
    return Placement(1.0, "container", "web", "busybox", NO_FIT, 0.5, rule="constraint", reasons=reasons)


def test_reasons_grouped_by_text_the_commonest_first():
    reasons = {f"node{i}": "constraint size==huge (node has size=small)" for i in range(1, 901)}
    reasons |= {f"node{i}": "constraint size==huge (node has size=xxl)" for i in range(901, 1001)}
    reasons["node5"] = "constraint size==huge (node has no label size)"
    shown = placement(no_fit(reasons))
    assert shown["reasons"] == [
        {"reason": "constraint size==huge (node has size=small)", "count": 899,
         "nodes": ["node1", "node2", "node3", "node4", "node6"]},  # node5 says something else
        {"reason": "constraint size==huge (node has size=xxl)", "count": 100,
         "nodes": [f"node{i}" for i in range(901, 901 + NODES_NAMED)]},
        {"reason": "constraint size==huge (node has no label size)", "count": 1, "nodes": ["node5"]}]
    assert shown["unshown"] == 0 and shown["rule"] == "constraint" and shown["name"] == "web"


def test_reasons_past_the_groups_shown_are_counted():
    reasons = {f"node{i}": f"not enough memory (node has {i} MiB free)" for i in range(REASON_GROUPS + 7)}
    shown = placement(no_fit(reasons))
    assert [r["nodes"] for r in shown["reasons"]] == [[f"node{i}"] for i in range(REASON_GROUPS)]
    assert shown["unshown"] == 7


def test_a_placed_decision_has_no_reasons():
    shown = placement(Placement(1.0, "container", "", "busybox", PLACED, 0.2, node="node2"))
    assert shown["reasons"] == [] and shown["unshown"] == 0 and shown["node"] == "node2"
