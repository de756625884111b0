"""`/metrics` of a manager on the real lab: a placement and a no-fit move the right counters, the
node gauges follow, and an engine that does not answer counts its failed calls."""
from __future__ import annotations

import time
import urllib.request
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.procs import free_port
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


def scrape(manager: Manager) -> dict[tuple[str, tuple], float]:
    """Every sample, parsed by prometheus-client: (name, sorted labels) -> value."""
    with urllib.request.urlopen(manager.url + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_placement_and_a_no_fit_move_the_right_counters(manager: tuple[Manager, str]) -> None:
    mgr, _ = manager
    before = scrape(mgr)
    mgr.docker("run", "-d", "--name", "metrics1", "-m", "32m", "-e", "constraint:node==node1", "busybox", "sleep", "300")
    failed = mgr.docker("run", "-e", "constraint:size==huge", "busybox", "true", check=False)
    assert failed.returncode != 0
    after = scrape(mgr)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("shoal_placements_total", strategy="spread", outcome="placed", rule="") == 1
    assert delta("shoal_placements_total", strategy="spread", outcome="no_fit", rule="constraint") == 1
    assert delta("shoal_scheduling_seconds_count", outcome="placed") == 1
    assert delta("shoal_scheduling_seconds_count", outcome="no_fit") == 1
    assert delta("shoal_api_request_seconds_count", method="POST", route="/containers/create", status="201") == 1
    assert delta("shoal_api_request_seconds_count", method="POST", route="/containers/create", status="500") == 1
    assert delta("shoal_node_containers", node="node1", state="running") == 1
    assert delta("shoal_node_reserved_memory_bytes", node="node1") == 32 * MIB
    assert value(after, "shoal_node_cpus", node="node2") > 0


def test_engine_states_refreshes_and_failed_calls(manager: tuple[Manager, str]) -> None:
    mgr, silent = manager
    deadline = time.monotonic() + 10
    while value(samples := scrape(mgr), "shoal_engine_call_errors_total", node=silent) < 1:
        assert time.monotonic() < deadline, "no failed call counted for the silent engine"
        time.sleep(0.5)
    assert value(samples, "shoal_engines", state="Healthy") == 3
    assert value(samples, "shoal_engines", state="Pending") == 1
    assert all(value(samples, "shoal_engine_refreshes_total", node=n, outcome="ok") >= 1
               for n in ("node1", "node2", "node3"))
    assert value(samples, "shoal_node_memory_bytes", node="node3") > 0
    assert not any("metrics1" in str(labels) for _, labels in samples)  # no container names as labels
