"""Manager overhead on a real 3-node lab: the same API calls sent through Shoal and straight to
one engine, interleaved, over keep-alive connections (no CLI start-up in the numbers).

    python -m bench.proxy_overhead [--runs 200] [--run-runs 30] [--lab bench] [--subnet 10.213.60.0/24]

Brings up its own lab (default `bench` on 10.213.60.0/24) with a manager, measures, tears it down.
Last line: ps_ratio=A inspect_ratio=B info_ms=C run_ratio=D (ratios of medians, manager/direct).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp

from bench.labs import add_lab_flags, lab_with_manager

PREFIX = "/v1.41"
CONTAINERS_PER_NODE = 10


async def timed(session: aiohttp.ClientSession, method: str, url: str, body: dict | None = None
                ) -> tuple[float, object]:
    began = time.perf_counter()
    async with session.request(method, url, json=body) as resp:
        data = await resp.json(content_type=None) if resp.status != 204 else None
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
    return (time.perf_counter() - began) * 1000, data


async def median_ms(session, method: str, url: str, runs: int) -> float:
    return statistics.median([(await timed(session, method, url))[0] for _ in range(runs)])


async def run_ms(session, base: str, runs: int, created: list[str]) -> float:
    """Median of create + start of `busybox sleep 300` (what `docker run -d` costs the server)."""
    samples = []
    for _ in range(runs):
        ms_create, data = await timed(session, "POST", f"{base}{PREFIX}/containers/create",
                                      {"Image": "busybox", "Cmd": ["sleep", "300"]})
        created.append(data["Id"])
        ms_start, _ = await timed(session, "POST", f"{base}{PREFIX}/containers/{data['Id']}/start")
        samples.append(ms_create + ms_start)
    return statistics.median(samples)


async def measure(manager: str, engine: str, runs: int, run_runs: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        while (await timed(session, "GET", f"{manager}/info"))[1]["SystemStatus"].count(
                ["  └ Status", "Healthy"]) < 3:
            await asyncio.sleep(0.2)
        created: list[str] = []
        for _ in range(CONTAINERS_PER_NODE):  # a cluster with something in it
            await run_ms(session, manager, 3, created)
        nodes = [(await timed(session, "GET", f"{manager}{PREFIX}/containers/{c}/json"))[1]["Node"]
                 for c in created]
        probe = next(c for c, node in zip(created, nodes) if node["Addr"] == engine)
        direct = f"http://{engine}"
        result = {}
        for key, path in (("ps", "/containers/json?all=1"), ("inspect", f"/containers/{probe}/json")):
            through, straight = [], []
            for _ in range(5):  # interleaved rounds, so load noise hits both sides alike
                through.append(await median_ms(session, "GET", f"{manager}{PREFIX}{path}", runs // 5))
                straight.append(await median_ms(session, "GET", f"{direct}{PREFIX}{path}", runs // 5))
            result[f"{key}_ms"], result[f"{key}_direct_ms"] = statistics.median(through), statistics.median(straight)
            print(f"{key}: manager {result[f'{key}_ms']:.2f} ms, direct {result[f'{key}_direct_ms']:.2f} ms",
                  flush=True)
        result["info_ms"] = await median_ms(session, "GET", f"{manager}{PREFIX}/info", runs)
        print(f"info: manager {result['info_ms']:.2f} ms", flush=True)
        mine: list[str] = []
        through, straight = [], []
        for _ in range(3):
            through.append(await run_ms(session, manager, run_runs // 3, mine))
            straight.append(await run_ms(session, direct, run_runs // 3, mine))
        result["run_ms"], result["run_direct_ms"] = statistics.median(through), statistics.median(straight)
        print(f"run -d: manager {result['run_ms']:.1f} ms, direct {result['run_direct_ms']:.1f} ms", flush=True)
        for cid in created + mine:
            await timed(session, "DELETE", f"{manager}{PREFIX}/containers/{cid}?force=1")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--run-runs", type=int, default=30)
    add_lab_flags(parser, "bench", "10.213.60.0/24")
    args = parser.parse_args(argv)
    with lab_with_manager(args) as (state, manager):
        r = asyncio.run(measure(manager, state.engines[0], args.runs, args.run_runs))
    print(f"ps_ratio={r['ps_ms'] / r['ps_direct_ms']:.2f} "
          f"inspect_ratio={r['inspect_ms'] / r['inspect_direct_ms']:.2f} "
          f"info_ms={r['info_ms']:.2f} run_ratio={r['run_ms'] / r['run_direct_ms']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
