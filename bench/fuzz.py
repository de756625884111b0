"""The request fuzzer (bench.fuzzgen, the e2e fuzz test's generator) at volume against a manager on a
real 3-node lab: wrongly typed and malformed bodies, paths, filters, query strings and raw HTTP,
four at a time.

    python -m bench.fuzz [--requests 10000] [--lab benchfz] [--subnet 10.213.61.0/24]

Brings up its own lab (registry included) and a manager, sends, cleans up, tears the lab down.
Progress every 1,000 requests; last line: sent=N internal=0 hangs=0 alive=yes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from bench.fuzzgen import FUZZ_LABEL, Fuzzer, fuzz_requests
from bench.labs import add_lab_flags, lab_with_manager

BATCH = 4


def run(base: str, registry: str, total: int) -> tuple[Fuzzer, bool]:
    """Send `total` generated requests to the manager at `base`; (the fuzzer, manager alive after)."""
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    fuzzer = Fuzzer(base, session)
    try:
        target = loop.run_until_complete(_target(session, base))
        began = time.monotonic()

        @settings(max_examples=total // BATCH + 1, deadline=None, database=None, phases=[Phase.generate],
                  derandomize=False, suppress_health_check=list(HealthCheck))  # not even with CI set
        @given(st.lists(fuzz_requests(registry, target), min_size=BATCH, max_size=BATCH))
        def batch(requests):
            if fuzzer.tally.sent >= total:
                return
            loop.run_until_complete(fuzzer.send_all(requests))
            if fuzzer.tally.sent % 1000 < BATCH:
                print(f"progress {fuzzer.tally.line(alive=True).rsplit(' ', 1)[0]} "
                      f"rate={fuzzer.tally.sent / (time.monotonic() - began):.0f}/s", flush=True)

        while fuzzer.tally.sent < total:  # hypothesis may stop early on a small search space
            batch()
        alive = loop.run_until_complete(fuzzer.alive())
        fuzzer.created["containers"].add(target)
        for failure in loop.run_until_complete(fuzzer.clean_up()):
            print(f"cleanup failed: {failure}", flush=True)
        return fuzzer, alive
    finally:
        loop.run_until_complete(session.close())
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=BATCH * 2), auto_decompress=False)


async def _target(session: aiohttp.ClientSession, base: str) -> str:
    """A created (never started) container for bodies that need one; waits for 3 healthy nodes."""
    while True:
        async with session.get(f"{base}/info") as resp:
            if (await resp.json())["SystemStatus"].count(["  └ Status", "Healthy"]) == 3:
                break
        await asyncio.sleep(0.2)
    body = {"Image": "busybox", "Cmd": ["true"], "Labels": {FUZZ_LABEL: "1"}}
    async with session.post(f"{base}/containers/create?name=fuzztarget", data=json.dumps(body),
                            headers={"Content-Type": "application/json"}) as resp:
        return (await resp.json())["Id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    add_lab_flags(parser, "benchfz", "10.213.61.0/24")
    args = parser.parse_args(argv)
    with lab_with_manager(args, registry=True) as (state, url):
        began = time.monotonic()
        fuzzer, alive = run(url, state.registry, args.requests)
        took = time.monotonic() - began
    for example in fuzzer.tally.bad:
        print(f"bad: {example}")
    print(f"statuses={json.dumps(dict(sorted(fuzzer.tally.statuses.items())))} took={took:.0f}s")
    print(fuzzer.tally.line(alive))
    return 0 if alive and not (fuzzer.tally.internal or fuzzer.tally.hangs) else 1


if __name__ == "__main__":
    sys.exit(main())
