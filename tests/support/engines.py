"""Killing and restarting a lab node's dockerd (same data, same address), for failure tests."""
from __future__ import annotations

import signal

from lab.daemons import answers, start_dockerd
from lab.procs import wait_until
from lab.state import LabState


def kill_engine(lab: LabState, name: str) -> None:
    """SIGKILL the node's dockerd (its containers are left to its containerd) and wait until it is gone."""
    node = lab.nodes[lab.names.index(name)]
    node.dockerd.signal(signal.SIGKILL)
    wait_until(lambda: not node.dockerd.alive(), 10, f"{name} dockerd to die")


def restart_engine(lab: LabState, name: str, timeout: float = 40) -> float:
    """Start the node's dockerd again and wait until it answers; the seconds it took."""
    node = lab.nodes[lab.names.index(name)]
    node.dockerd = start_dockerd(node, [lab.registry] if lab.registry else [])
    lab.save()
    return wait_until(lambda: answers(node.engine), timeout, f"{name} dockerd", node.dockerd)
