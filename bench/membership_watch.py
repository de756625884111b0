"""Membership at scale against a real etcd (not a timed test): with 1,000 registered addresses,
how long a new watcher takes to see all of them, how soon a change is seen after its etcd event,
and how many keepalives a heartbeat costs.

    python -m bench.membership_watch [--nodes 1000] [--samples 20] [--heartbeat 5]

The simulated agents (one `register()` each, as `shoal join` runs it) live in a child process, so
the watcher measured here does not share its CPU with them. Last line:
`change_visible_s=A all_1000_s=B` (A, B: the worst of the samples).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time

from etcd3aio import Etcd3Client

from discovery import from_url
from discovery.watcher import MembershipWatcher
from lab.etcd import EtcdServer

RENEWALS = "etcd_debugging_lease_renewed_total"


def node(i: int) -> str:
    return f"10.{i // 250}.{i % 250}.1:2375"


def report(name: str, samples: list[float]) -> float:
    """Print p50/max of `samples`; the max."""
    print(f"{name}: n={len(samples)} p50={statistics.median(samples):.4f}s max={max(samples):.4f}s")
    return max(samples)


async def agents(url: str, nodes: int, heartbeat: float) -> None:
    """Child process: keep `nodes` addresses registered until SIGTERM."""
    tasks = [asyncio.create_task(from_url(url, heartbeat=heartbeat).register(node(i), heartbeat * 3, heartbeat))
             for i in range(nodes)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def measure(server: EtcdServer, url: str, nodes: int, samples: int, heartbeat: float) -> None:
    """The three numbers, with the agents already starting in the child."""
    prefix = "/bench/docker/swarm/nodes/"
    async with MembershipWatcher(from_url(url)) as watcher, Etcd3Client([server.endpoint]) as client:
        took = await watcher.until(lambda members: len(members) == nodes, timeout=120)
        print(f"registered: {nodes} agents (heartbeat={heartbeat:g}s ttl={heartbeat * 3:g}s) seen after {took:.2f}s")

        window = 4
        before = server.metric(RENEWALS)
        await asyncio.sleep(window * heartbeat)
        renewed = server.metric(RENEWALS) - before
        print(f"keepalives: {renewed:.0f} in {window} heartbeats for {nodes} nodes = "
              f"{renewed / nodes / window:.2f} per node per heartbeat")

        all_seen = []
        for _ in range(3):
            started = time.monotonic()
            async with MembershipWatcher(from_url(url)) as fresh:
                await fresh.until(lambda members: len(members) == nodes, timeout=60)
            all_seen.append(time.monotonic() - started)
        all_nodes = report(f"new watcher sees all {nodes}", all_seen)

        changes = []
        for i in range(samples):
            addr = f"10.99.{i}.1:2375"
            for write, present in ((client.kv.put(prefix + addr, addr, timeout=5), True),
                                   (client.kv.delete(prefix + addr, timeout=5), False)):
                written = time.monotonic()               # from sending the write: includes its commit
                await write
                await watcher.until(lambda members: (addr in members) == present, timeout=5)
                changes.append(time.monotonic() - written)
        change = report("change seen after its etcd write", changes)
    print(f"change_visible_s={change:.4f} all_1000_s={all_nodes:.4f}")


def main() -> None:
    """Start etcd and the agents' process, measure, stop both."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--agents-of", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agents_of:
        asyncio.run(agents(args.agents_of, args.nodes, args.heartbeat))
        return
    with EtcdServer() as server:
        url = f"etcd://{server.endpoint}/bench"
        child = subprocess.Popen([sys.executable, "-m", "bench.membership_watch", "--agents-of", url,
                                  "--nodes", str(args.nodes), "--heartbeat", str(args.heartbeat)])
        try:
            asyncio.run(measure(server, url, args.nodes, args.samples, args.heartbeat))
        finally:
            child.terminate()
            child.wait(timeout=60)


if __name__ == "__main__":
    main()
