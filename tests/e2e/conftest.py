"""End-to-end fixtures: one real local lab (3 dockerd nodes, registry, etcd) per session.

Needs root, dockerd, etcd and docker-registry (`shoal lab`); every test here is marked `e2e`.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from lab.lifecycle import down, up
from lab.state import LabSpec, LabState
from tests.support.manager import Manager, start_manager

E2E_SPEC = LabSpec(name=os.environ.get("SHOAL_E2E_LAB", "e2e"), nodes=3,
                             subnet=os.environ.get("SHOAL_E2E_SUBNET", "10.213.50.0/24"),
                             labels={"node1": {"size": "small"}, "node3": {"size": "xxl"}},
                             registry=True, etcd=True)
TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test below this directory `e2e`."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how long the labs took to come up and go down."""
    for what, seconds in TIMINGS.items():
        terminalreporter.write_line(f"shoal lab timing: {what} {seconds:.1f}s")


def missing_prerequisite() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    tools = ["dockerd", "nsenter", "unshare", "ip", "/usr/bin/etcd", "/usr/bin/docker-registry"]
    missing = [t for t in tools if shutil.which(t) is None]
    return f"missing: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="session")
def lab() -> Iterator[LabState]:
    """The session's lab: `.engines` ["ip:2375", ...], `.names` ["node1", ...], `.registry`
    "ip:5000", `.etcd` "127.0.0.1:port", `.bridge_ip`, `.nodes` (labels, dirs, pids).
    Always torn down, also when `up` or the tests fail."""
    if reason := missing_prerequisite():
        if os.environ.get("CI"):  # in CI a missing piece is a failure, never a silent skip
            pytest.fail(f"the lab cannot run: {reason}")
        pytest.skip(reason)
    down(E2E_SPEC.name, E2E_SPEC.root)  # leftovers of an interrupted session
    began = time.monotonic()
    try:
        state = up(E2E_SPEC)
        TIMINGS[f"up ({E2E_SPEC.nodes} nodes, registry, etcd)"] = time.monotonic() - began
        yield state
    finally:
        began = time.monotonic()
        down(E2E_SPEC.name, E2E_SPEC.root)
        TIMINGS[f"down ({E2E_SPEC.nodes} nodes)"] = time.monotonic() - began


@pytest.fixture(scope="module")
def mgr(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manager]:
    """A manager over the session lab's three engines (nodes:// discovery), one per test module."""
    manager = start_manager("nodes://" + ",".join(lab.engines), healthy=3,
                            log_dir=tmp_path_factory.mktemp("manager"))
    yield manager
    manager.stop()
