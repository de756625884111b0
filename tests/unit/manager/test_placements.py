"""The placement log: bounded, oldest first, a no-fit with its rule and per-node reasons."""
from __future__ import annotations

from manager.cluster.placements import NO_FIT, PLACED, PlacementLog
from scheduler import ContainerSpec, NoFit


def test_log_keeps_the_last_placements_and_counts_all() -> None:
    log = PlacementLog("spread", size=3)
    spec = ContainerSpec.from_create_body({"Image": "busybox"}, "web")
    for k in range(5):
        log.placed("container", spec, f"node{k}", 0.001)
    log.no_fit("container", spec, NoFit("none", "constraint", {"node1": "constraint size==xxl"}), 0.002)
    recent = log.recent()
    assert log.count == 6 and [p.outcome for p in recent] == [PLACED, PLACED, NO_FIT]
    assert [p.node for p in recent[:2]] == ["node3", "node4"]
    assert (recent[2].name, recent[2].image, recent[2].rule, recent[2].reasons, recent[2].took_ms) == \
        ("web", "busybox", "constraint", {"node1": "constraint size==xxl"}, 2.0)
