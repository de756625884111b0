"""Scheduler benchmark: placements per second and latency on a large simulated cluster.

Simulated nodes (1,000 x 30 containers by default: plain objects, no Docker). The spec has
two constraints (a glob and a plain value) and one container-label affinity, which leave about
a quarter of the nodes eligible; it is parsed from a create body for every placement, and each
placement is recorded on its node (as the manager records a pending container) before the
next one. Run: python -m bench.scheduler [--strategy binpack]. The last line is the result.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import random
import statistics
import time

from scheduler import ContainerInfo, ContainerSpec, ImageInfo, Node, PortBinding, Scheduler

REGIONS = ("eu-west", "eu-north", "us-east", "us-west")
IMAGES = ("nginx:1.25", "redis:7", "postgres:16", "busybox:latest", "app/api:3.1", "app/worker:3.1")


def make_nodes(count: int, per_node: int, rng: random.Random) -> list[Node]:
    """Simulated nodes with labels, images and containers (names, labels, ports, reservations)."""
    nodes = []
    for i in range(count):
        containers = tuple(
            ContainerInfo(
                id=f"{i:06x}{j:06x}".ljust(64, "0"), names=(f"svc{i}-{j}",), image=rng.choice(IMAGES),
                labels={"com.example.role": "db" if i % 5 == 0 else rng.choice(("web", "cache", "batch"))},
                port_bindings=(PortBinding("", str(8000 + j), "80/tcp"),) if j % 5 == 0 else (),
                cpus=0.1, memory=64 << 20)
            for j in range(per_node))
        nodes.append(Node(
            id=f"{i:012x}|10.0.{i // 250}.{i % 250}:2375", name=f"node-{i}",
            addr=f"10.0.{i // 250}.{i % 250}:2375",
            labels={"region": REGIONS[i % 4], "storage": "ssd" if i % 3 else "disk",
                    "operatingsystem": "Debian GNU/Linux 12 (bookworm)", "ostype": "linux"},
            cpus=16, memory=64 << 30, containers=containers,
            images=tuple(ImageInfo(f"sha256:{k:064x}", (name,)) for k, name in enumerate(IMAGES))))
    return nodes


BODY = {
    "Image": "app/api:3.1",
    "Env": ["constraint:region==eu-*", "constraint:storage==ssd", "affinity:com.example.role!=db", "MODE=prod"],
    "Labels": {"com.example.role": "web"},
    "HostConfig": {"Memory": 256 << 20, "NanoCpus": 500_000_000},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=30, help="existing containers per node")
    parser.add_argument("--placements", type=int, default=2000)
    parser.add_argument("--strategy", default="spread")
    args = parser.parse_args(argv)
    rng = random.Random(1)
    nodes = make_nodes(args.nodes, args.containers, rng)
    scheduler = Scheduler(strategy=args.strategy, rng=rng)
    index = {node.id: i for i, node in enumerate(nodes)}
    print(f"nodes={len(nodes)} containers={sum(len(n.containers) for n in nodes)} "
          f"strategy={scheduler.strategy_name} placements={args.placements}")
    latencies, cpu_times = [], []
    started, cpu_started = time.perf_counter(), time.thread_time()
    for n in range(args.placements):
        t0, c0 = time.perf_counter(), time.thread_time()
        spec = ContainerSpec.from_create_body(BODY, f"api-{n}")
        chosen = scheduler.choose(spec, nodes)
        latencies.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
        i = index[chosen.id]
        nodes[i] = dataclasses.replace(chosen, containers=chosen.containers + (spec.as_container(f"pending-{n}"),))
    elapsed, cpu_elapsed = time.perf_counter() - started, time.thread_time() - cpu_started
    by_count = collections.Counter(len(node.containers) for node in nodes)
    print(f"nodes by container count after the run: {dict(sorted(by_count.items()))}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; counting CPU time only "
          f"(not waiting for other processes): {report(args.placements, cpu_elapsed, cpu_times)}")
    print(report(args.placements, elapsed, latencies))


def report(placements: int, elapsed: float, latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"placements_per_s={placements / elapsed:.0f} p50_ms={cuts[49] * 1000:.2f} p99_ms={cuts[98] * 1000:.2f}"


if __name__ == "__main__":
    main()
