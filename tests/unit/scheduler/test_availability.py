"""Node availability (`docker node update --availability`): only active nodes take containers."""
from __future__ import annotations

import pytest

from scheduler import NoFit, Scheduler
from tests.unit.scheduler.builders import make_node, make_spec


def test_paused_and_drained_nodes_take_nothing():
    nodes = [make_node("a", availability="pause"), make_node("b"), make_node("c", availability="drain")]
    assert [n.name for n in Scheduler().rank(make_spec(), nodes)] == ["b"]


def test_no_active_node_says_why_per_node():
    nodes = [make_node("a", availability="pause"), make_node("b", availability="drain")]
    with pytest.raises(NoFit) as err:
        Scheduler().rank(make_spec(), nodes)
    assert err.value.message.splitlines() == [
        "No active node available in the cluster (docker node update --availability active)",
        "0/2 nodes are available: 1 node is pause, 1 node is drain.", "a: node is pause", "b: node is drain"]
