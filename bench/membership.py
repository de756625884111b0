"""Membership through the manager (not a timed test): a real etcd, a real `shoal manage` on
`etcd://`, and 1,000 registered addresses (127.0.0.2:30000-30999: nothing listens there, so the
engines stay Pending and only membership is measured, not engine validation).

    python -m bench.membership [--nodes 1000] [--samples 10]

all_1000_s: from starting the manager until its `/info` shows all addresses.
change_visible_s: from an etcd put (or delete) until `/info` shows the new count (worst sample).
Last line: change_visible_s=A all_1000_s=B
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from etcd3aio import Etcd3Client

from discovery.etcd_store import EtcdStore
from lab.daemons import answers, start_manager
from lab.etcd import EtcdServer
from lab.procs import free_port, stop, wait_until

PREFIX = "bench"
KEYS = f"/{PREFIX}/docker/swarm/nodes/"


def address(i: int) -> str:
    return f"127.0.0.2:{30000 + i}"


async def node_count(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/info") as resp:
        info = await resp.json()
    return int(dict((k, v) for k, v in info["SystemStatus"])["Nodes"])


async def until_count(session, url: str, count: int, began: float, timeout: float = 30) -> float:
    while time.monotonic() - began < timeout:
        if await node_count(session, url) == count:
            return time.monotonic() - began
        await asyncio.sleep(0.01)
    raise RuntimeError(f"manager never showed {count} nodes")


async def run(endpoint: str, nodes: int, samples: int, log_dir: Path) -> tuple[float, list[float]]:
    async with EtcdStore([endpoint]) as store, Etcd3Client([endpoint]) as client:
        lease = await store.grant(600)
        for i in range(nodes):
            await store.put(KEYS + address(i), address(i), lease)
        began = time.monotonic()
        listen = f"127.0.0.1:{free_port()}"
        manager = start_manager(listen, f"etcd://{endpoint}/{PREFIX}", [], log_dir / "manager.log")
        url = f"http://{listen}"
        try:
            await asyncio.to_thread(wait_until, lambda: answers(listen), 30, "manager", manager)
            async with aiohttp.ClientSession() as session:
                all_seen = await until_count(session, url, nodes, began)
                print(f"all {nodes} seen after {all_seen:.2f}s (manager start included)", flush=True)
                changes = []
                for i in range(samples):
                    extra = address(nodes + i)
                    began = time.monotonic()
                    await store.put(KEYS + extra, extra, lease)
                    changes.append(await until_count(session, url, nodes + 1, began))
                    began = time.monotonic()
                    await client.kv.delete(KEYS + extra, timeout=5)
                    changes.append(await until_count(session, url, nodes, began))
        finally:
            stop([manager])
    return all_seen, changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args(argv)
    with EtcdServer() as etcd, tempfile.TemporaryDirectory() as logs:
        all_seen, changes = asyncio.run(run(etcd.endpoint, args.nodes, args.samples, Path(logs)))
    print(f"change visible: median {statistics.median(changes) * 1000:.0f} ms, "
          f"worst {max(changes) * 1000:.0f} ms over {len(changes)} puts/deletes")
    print(f"change_visible_s={max(changes):.3f} all_{args.nodes}_s={all_seen:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
