"""What a Prometheus scrape of `/metrics` costs the rest of the manager at N engines: the manager's
app in this process (no engines are dialled: the engines are records marked Healthy, each with a
refresh counted, as after start-up), the heap policy of `shoal manage` (manager.heap), and a task
that takes a turn of the loop whenever it can; each scrape's time, the longest the task had to wait
for its turn meanwhile, and the answer's size.

    python -m bench.metrics_scrape [--nodes 5000] [--scrapes 5]

Last line: scrape_ms=A max_loop_pause_ms=B size_mb=C (medians of the scrapes).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from aiohttp.test_utils import TestClient, TestServer

from manager import heap
from manager.api.routes import build_app
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.cluster.metrics import ENGINE_REFRESHES
from manager.cluster.options import EngineOptions
from scheduler import Scheduler


def cluster_of(nodes: int) -> Cluster:
    """A cluster of `nodes` Healthy engine records (2 CPUs, 1 GiB each), never connected."""
    cluster = Cluster(Scheduler(), EngineOptions())
    for n in range(1, nodes + 1):
        engine = Engine(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}:2375", None, EngineOptions(),
                        notify=lambda *_: None, is_duplicate=lambda _: None)
        engine.name, engine.id, engine.state, engine.cpus, engine.memory = f"node{n}", f"ID{n}", "Healthy", 2, 2**30
        cluster.engines[engine.addr] = engine
        ENGINE_REFRESHES.labels(engine.label, "ok").inc()
    return cluster


class LoopPauses:
    """While the block runs, a task takes every turn of the loop it can; `longest`: the longest it
    had to wait for one (seconds)."""

    async def __aenter__(self) -> "LoopPauses":
        self.pauses: list[float] = []
        self._task = asyncio.create_task(self._take_turns())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()

    async def _take_turns(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.pauses.append(now - last)
            last = now

    @property
    def longest(self) -> float:
        return max(self.pauses, default=0.0)


async def measure(nodes: int, scrapes: int) -> list[tuple[float, float, int]]:
    """(scrape ms, longest loop pause ms, bytes) of each scrape after a first one."""
    frozen = asyncio.create_task(heap.keep_frozen())
    results = []
    async with TestClient(TestServer(build_app(cluster_of(nodes)))) as client:
        await (await client.get("/metrics")).read()
        for _ in range(scrapes):
            async with LoopPauses() as loop:
                began = time.perf_counter()
                body = await (await client.get("/metrics")).read()
                took = time.perf_counter() - began
            results.append((took * 1000, loop.longest * 1000, len(body)))
            print(f"scrape {took * 1000:.0f} ms, longest loop pause {loop.longest * 1000:.1f} ms, "
                  f"{len(body) / 1e6:.2f} MB", flush=True)
    frozen.cancel()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--scrapes", type=int, default=5)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.nodes, args.scrapes))
    print(f"scrape_ms={statistics.median(r[0] for r in results):.0f} "
          f"max_loop_pause_ms={statistics.median(r[1] for r in results):.1f} "
          f"size_mb={statistics.median(r[2] for r in results) / 1e6:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
