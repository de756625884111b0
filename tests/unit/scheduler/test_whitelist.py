"""Whitelists: the nodes a volume is made on."""
from __future__ import annotations

import pytest

from scheduler import SchedulerError
from scheduler.whitelist import WHITELIST_LABEL, whitelist_rules, whitelisted
from tests.unit.scheduler.builders import make_node

NODES = [make_node("node1", {"size": "small"}), make_node("node2"), make_node("node10", {"size": "xxl"})]


def admitted(*entries: str) -> list[str]:
    label = "[" + ",".join(f'"{e}"' for e in entries) + "]"
    return [n.name for n in whitelisted(whitelist_rules({WHITELIST_LABEL: label}), NODES)]


def test_alternatives_are_whole_names_not_prefixes():
    assert admitted("node==node1|node2") == ["node1", "node2"]
    assert admitted("node==node1") == ["node1"]


def test_every_expression_must_hold_and_labels_globs_and_negation_work():
    assert admitted("node==node*", "size!=small") == ["node2", "node10"]
    assert admitted("size==xxl|small") == ["node1", "node10"]
    assert admitted("node!=node1|node10") == ["node2"]
    assert admitted("node==/^node[12]$/") == ["node1", "node2"]


def test_no_label_no_rules_and_bad_labels_are_refused():
    assert whitelist_rules({"other": "x"}) == whitelist_rules({WHITELIST_LABEL: "[]"}) == []
    for bad in ("node==a", "[1]", '["nooperator"]', '["1bad==x"]'):
        with pytest.raises(SchedulerError):
            whitelist_rules({WHITELIST_LABEL: bad})
