"""`/metrics` of a manager on the real lab: a placement and a no-fit move the right counters, the
node gauges follow, and an engine that does not answer counts its failed calls."""
from __future__ import annotations

from typing import Iterator

import pytest

from lab.procs import free_port, wait_until
from lab.state import LabState
from tests.support.manager import Manager, start_manager

MIB = 2**20


@pytest.fixture(scope="module")
def manager(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manager, str]]:
    silent = f"127.0.0.1:{free_port()}"  # nothing listens there: its calls fail
    manager = start_manager("nodes://" + ",".join([*lab.engines, silent]), healthy=3,
                            log_dir=tmp_path_factory.mktemp("metrics"))
    yield manager, silent
    manager.docker("rm", "-f", "metrics1", check=False)
    manager.stop()


def test_a_placement_and_a_no_fit_move_the_right_counters(manager: tuple[Manager, str]) -> None:
    mgr, _ = manager
    names = [("shoal_placements_total", {"strategy": "spread", "outcome": "placed", "rule": ""}),
             ("shoal_placements_total", {"strategy": "spread", "outcome": "no_fit", "rule": "constraint"}),
             ("shoal_scheduling_seconds_count", {"outcome": "placed"}),
             ("shoal_scheduling_seconds_count", {"outcome": "no_fit"}),
             ("shoal_api_request_seconds_count", {"method": "POST", "route": "/containers/create", "status": "201"}),
             ("shoal_api_request_seconds_count", {"method": "POST", "route": "/containers/create", "status": "500"}),
             ("shoal_node_containers", {"node": "node1", "state": "running"}),
             ("shoal_node_reserved_memory_bytes", {"node": "node1"})]
    before = [mgr.metrics(name, **labels) for name, labels in names]
    mgr.docker("run", "-d", "--name", "metrics1", "-m", "32m", "-e", "constraint:node==node1", "busybox", "sleep", "300")
    failed = mgr.docker("run", "-e", "constraint:size==huge", "busybox", "true", check=False)
    assert failed.returncode != 0
    deltas = [mgr.metrics(name, **labels) - was for (name, labels), was in zip(names, before)]
    assert deltas == [1, 1, 1, 1, 1, 1, 1, 32 * MIB]
    assert mgr.metrics("shoal_node_cpus", node="node2") > 0


def test_engine_states_refreshes_and_failed_calls(manager: tuple[Manager, str]) -> None:
    mgr, silent = manager
    wait_until(lambda: mgr.metrics("shoal_engine_call_errors_total", node=silent) >= 1, 10,
               "a failed call counted for the silent engine")
    assert mgr.metrics("shoal_engines", state="Healthy") == 3
    assert mgr.metrics("shoal_engines", state="Pending") == 1
    assert all(mgr.metrics("shoal_engine_refreshes_total", node=n, outcome="ok") >= 1
               for n in ("node1", "node2", "node3"))
    assert mgr.metrics("shoal_node_memory_bytes", node="node3") > 0
    assert "metrics1" not in mgr.api("GET", "/metrics")[1]  # no container names as labels
