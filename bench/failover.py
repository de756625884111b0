"""Failover figures on a real lab: primary kill -> a new primary serving, and engine kill -> the
rescheduled container running elsewhere (median and max of `--runs`).

    python -m bench.failover [--runs 10] [--ttl 3] [--failure-retry 2] [--lab resbench] [--subnet 10.213.148.0/24]

Brings up its own lab (3 nodes, etcd), one agent per node and two managers with `--replication`,
measures, tears everything down. Targets: failover <= TTL + 1 s; reschedule <= failure detection + 2 s
(detection: the engine is seen Unhealthy or gone). Last lines: `failover_s ...` and `reschedule_s ...`.
"""
from __future__ import annotations

import argparse
import json
import secrets
import signal
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from lab.daemons import answers, start_agent, start_dockerd, start_manager
from lab.lifecycle import down, up
from lab.procs import Proc, free_ports, progress, stop, wait_until
from lab.state import LabSpec, LabState

REFRESH = ["--engine-refresh-min-interval", "5s", "--engine-refresh-max-interval", "10s"]
NAME = "bench-moved"


def get(addr: str, path: str) -> object:
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as reply:
        return json.load(reply)


def role(addr: str) -> str:
    try:
        return dict(get(addr, "/info")["SystemStatus"]).get("Role", "")
    except (OSError, ValueError, urllib.error.URLError):
        return "down"


def statuses(addr: str) -> dict[str, str]:
    """node name -> Status, as `docker info` shows it."""
    rows, result, node = get(addr, "/info")["SystemStatus"], {}, ""
    for key, value in rows:
        if key.startswith(" ") and not key.startswith("  "):
            node = key.strip()
        elif key == "  └ Status":
            result[node] = value
    return result


def where(addr: str) -> tuple[str, bool]:
    """(node, running) of the benchmark's container."""
    listed = get(addr, "/containers/json?all=1&filters=" + quote(json.dumps({"name": [NAME]})))
    if len(listed) != 1:
        return "", False
    return listed[0]["Names"][0].split("/")[1], listed[0]["State"] == "running"


class Managers:
    """Two replicated managers; the killed one is started again as a replica."""

    def __init__(self, discovery: str, ttl: float, retry: int, log_dir: Path) -> None:
        self.flags = ["--replication", "--replication-ttl", f"{ttl:g}s", "--engine-failure-retry", str(retry),
                      "--data-dir", str(log_dir / "state"), *REFRESH]
        self.discovery, self.log_dir = discovery, log_dir
        self.procs: dict[str, Proc] = {}
        for port in free_ports(2):
            self.start(f"127.0.0.1:{port}")

    def start(self, addr: str) -> None:
        self.procs[addr] = start_manager(addr, self.discovery, [*self.flags, "--advertise", addr],
                                         self.log_dir / f"manager-{addr.rsplit(':', 1)[1]}.log")
        wait_until(lambda: answers(addr), 20, f"manager {addr}", self.procs[addr])

    def primary(self) -> str:
        wait_until(lambda: sorted(map(role, self.procs)) == ["primary", "replica"], 30, "one primary")
        return next(a for a in self.procs if role(a) == "primary")


def failovers(managers: Managers, runs: int) -> list[float]:
    samples = []
    for run in range(runs):
        old = managers.primary()
        other = next(a for a in managers.procs if a != old)
        managers.procs[old].signal(signal.SIGKILL)
        took = wait_until(lambda: role(other) == "primary", 60, "the replica to take over")
        samples.append(took)
        progress("failover", run=run + 1, took=f"{took:.2f}s")
        managers.start(old)
    return samples


def reschedules(lab: LabState, manager: str, runs: int) -> list[tuple[float, float]]:
    """(detection, running elsewhere) seconds after each SIGKILL of the container's engine."""
    samples = []
    for run in range(runs):
        node_name, _ = where(manager)
        node = lab.nodes[lab.names.index(node_name)]
        node.dockerd.signal(signal.SIGKILL)
        began = time.monotonic()
        detected = moved = None
        while moved is None and time.monotonic() - began < 60:
            now = time.monotonic() - began
            if detected is None and statuses(manager).get(node_name, "gone") != "Healthy":
                detected = now
            placed, running = where(manager)
            if placed not in ("", node_name) and running:
                moved = now
            time.sleep(0.02)
        if moved is None:
            raise RuntimeError(f"run {run + 1}: {NAME} did not move off {node_name} within 60 s")
        samples.append((detected if detected is not None else moved, moved))
        progress("reschedule", run=run + 1, node=node_name, detected=f"{samples[-1][0]:.2f}s", running=f"{moved:.2f}s")
        node.dockerd = start_dockerd(node, [])
        lab.save()
        wait_until(lambda: answers(node.engine), 60, f"{node_name} dockerd", node.dockerd)
        wait_until(lambda: statuses(manager).get(node_name) == "Healthy" and where(manager)[1], 60,
                   f"{node_name} healthy and its old copy removed")
    return samples


def summary(name: str, values: list[float]) -> str:
    return f"{name}_median={statistics.median(values):.2f} {name}_max={max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=3.0, help="--replication-ttl, seconds")
    parser.add_argument("--failure-retry", type=int, default=2, help="--engine-failure-retry")
    parser.add_argument("--lab", default="resbench")
    parser.add_argument("--subnet", default="10.213.148.0/24")
    args = parser.parse_args()
    spec = LabSpec(name=args.lab, nodes=3, subnet=args.subnet, etcd=True)
    down(spec.name, spec.root)
    lab = up(spec)
    log_dir = Path(lab.dir) / "bench"
    log_dir.mkdir(exist_ok=True)
    discovery = f"etcd://{lab.etcd}/{secrets.token_hex(8)}"
    agents = [start_agent(e, discovery, log_dir / f"agent-{k}.log") for k, e in enumerate(lab.engines)]
    managers = None
    try:
        managers = Managers(discovery, args.ttl, args.failure_retry, log_dir)
        wait_until(lambda: list(statuses(managers.primary()).values()) == ["Healthy"] * 3, 30, "3 healthy nodes")
        failover = failovers(managers, args.runs)
        primary = managers.primary()
        body = json.dumps({"Image": "busybox", "Cmd": ["sleep", "3600"],
                           "Env": ["reschedule:on-node-failure"]}).encode()
        request = urllib.request.Request(f"http://{primary}/containers/create?name={NAME}", data=body,
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            cid = json.load(reply)["Id"]
        urllib.request.urlopen(urllib.request.Request(f"http://{primary}/containers/{cid}/start", method="POST"),
                               timeout=30).close()
        moves = reschedules(lab, primary, args.runs)
    finally:
        stop([*(managers.procs.values() if managers else []), *agents])
        down(spec.name, spec.root)
    print(f"settings: replication_ttl={args.ttl:g}s engine_failure_retry={args.failure_retry} "
          f"engine_probe=1s runs={args.runs}")
    print(f"failover_s {summary('kill_to_primary', failover)} target<={args.ttl + 1:g}")
    detection = [d for d, _ in moves]
    after = [m - d for d, m in moves]
    print(f"reschedule_s {summary('kill_to_running', [m for _, m in moves])} {summary('detection', detection)} "
          f"{summary('after_detection', after)} target_after_detection<=2")


if __name__ == "__main__":
    main()
