"""The dashboard on a simulated fleet: what its live stream costs and whether the page keeps up.

    python -m bench.dashboard [--nodes 1000] [--containers 30] [--runs 20] [--idle-seconds 60] [--no-browser]

Starts the shared simulated fleet (`shared/tools/simfleet.py`, as bench.scale) and a manager, waits
until every engine is Healthy and the manager has settled, then:
1. reads `/dashboard/stream` for --idle-seconds while nothing happens: state messages, KiB/s, the
   largest state, the manager's CPU;
2. `docker run`s (create + start through the API) --runs containers, one every 0.5 s, while
   reading the stream: KiB/s, the manager's CPU, and the seconds from the start's answer to the
   first state or update that shows the container running;
3. in headless Chromium: seconds until the page shows every node, then the same runs: seconds
   until each container shows on its node's card, the longest main-thread tasks, and a
   screenshot (`dashboard.png` in --workdir).
Last line: `idle_kib_s=.. idle_states=.. idle_updates=.. idle_cpu_pct=.. busy_kib_s=.. busy_cpu_pct=..
state_kib=.. stream_p50_s=.. stream_max_s=.. page_load_s=.. load_task_ms=.. page_p50_s=.. page_max_s=..
longest_task_ms=..` (`load_task_ms`: the longest main-thread task while the page first drew the
cluster; `longest_task_ms`: the longest one during the runs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.scale import REPO, cpu_seconds, raise_fd_limit, settle, shared_tools, start_fleet, wait_healthy
from lab.browser import headless_chromium, query
from lab.daemons import shoal_command
from lab.procs import Proc, free_port, progress, spawn, stop

API = "/v1.41"
RUN_EVERY = 0.5
# Long main-thread tasks (over 50 ms) as the browser reports them, from the page's start.
LONG_TASKS = """window.longest = 0; new PerformanceObserver(list => { for (const e of list.getEntries())
  window.longest = Math.max(window.longest, e.duration); }).observe({type: "longtask", buffered: true});"""


class Stream:
    """A reader of `/dashboard/stream`: bytes, states (the whole picture) and updates, and when
    each container was first seen running in one."""

    def __init__(self) -> None:
        self.bytes = self.states = self.updates = self.events = self.largest = 0
        self.running: dict[str, float] = {}

    async def read(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url + "/dashboard/stream") as resp:
            buf = bytearray()
            async for chunk in resp.content.iter_any():  # a state is one line of megabytes
                self.bytes += len(chunk)
                start = max(0, len(buf) - 1)
                buf += chunk
                while (end := buf.find(b"\n\n", start)) >= 0:
                    head, _, data = bytes(buf[:end]).partition(b"\ndata: ")
                    del buf[:end + 2]
                    start = 0
                    self._message(head.removeprefix(b"event: ").decode(), data)

    def _message(self, kind: str, data: bytes) -> None:
        if kind == "event":
            self.events += 1
            return
        if kind == "state":
            self.states += 1
            self.largest = max(self.largest, len(data))
        else:
            self.updates += 1
        now = time.monotonic()
        for node in json.loads(data)["nodes"]:
            for c in node["containers"]:
                if c["state"] == "running" and c["name"].startswith("dash-"):
                    self.running.setdefault(c["name"], now)


async def runs(session: aiohttp.ClientSession, url: str, names: list[str]) -> dict[str, float]:
    """Create and start each of `names`, one every RUN_EVERY seconds; name -> when its start answered."""
    started = {}
    for name in names:
        began = time.monotonic()
        body = {"Image": "busybox", "Cmd": ["sleep", "300"], "Env": ["constraint:ostype==linux"]}
        async with session.post(f"{url}{API}/containers/create?name={name}", json=body) as resp:
            created = await resp.json()
            if resp.status != 201:
                raise SystemExit(f"bench.dashboard: create answered {resp.status} {created}")
        async with session.post(f"{url}{API}/containers/{created['Id']}/start") as resp:
            if resp.status != 204:
                raise SystemExit(f"bench.dashboard: start answered {resp.status} {await resp.text()}")
        started[name] = time.monotonic()
        await asyncio.sleep(max(0.0, RUN_EVERY - (time.monotonic() - began)))
    return started


async def stream_figures(url: str, proc: Proc, idle: float, count: int) -> dict[str, float]:
    """Phases 1 and 2: the stream while idle, then while `count` containers are run."""
    stream = Stream()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as session:
        reader = asyncio.create_task(stream.read(session, url))
        await asyncio.sleep(2)  # the first state, whatever the stream sends when it opens
        bytes0, states0, updates0 = stream.bytes, stream.states, stream.updates
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(idle)
        took = time.monotonic() - t0
        figures = {"idle_kib_s": (stream.bytes - bytes0) / 1024 / took, "idle_states": stream.states - states0,
                   "idle_updates": stream.updates - updates0,
                   "idle_cpu_pct": 100 * (cpu_seconds(proc.pid) - cpu0) / took}
        bytes0, cpu0, t0 = stream.bytes, cpu_seconds(proc.pid), time.monotonic()
        started = await runs(session, url, [f"dash-s{i}" for i in range(count)])
        deadline = time.monotonic() + 30
        while len(stream.running) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        took = time.monotonic() - t0
        figures.update(busy_kib_s=(stream.bytes - bytes0) / 1024 / took,
                       busy_cpu_pct=100 * (cpu_seconds(proc.pid) - cpu0) / took,
                       state_kib=stream.largest / 1024)
        if reader.done():
            raise SystemExit(f"bench.dashboard: the stream ended: {reader.exception()!r}")
        reader.cancel()
    delays = [stream.running.get(name, float("inf")) - at for name, at in started.items()]
    figures.update(stream_p50_s=statistics.median(delays), stream_max_s=max(delays))
    return figures


def page_figures(url: str, nodes: int, count: int, profile: Path, screenshot: Path) -> dict[str, float]:
    """Phase 3: the page in headless Chromium; a screenshot of it at the end."""
    browser = headless_chromium(profile)
    try:
        browser.set_script_timeout(30)
        began = time.monotonic()
        browser.get(url + "/dashboard/")
        browser.execute_script(LONG_TASKS)
        while browser.execute_script("return document.querySelectorAll('.node').length") < nodes:
            if time.monotonic() - began > 120:
                raise SystemExit("bench.dashboard: the page did not show every node in 120 s")
            time.sleep(0.1)
        figures = {"page_load_s": time.monotonic() - began,
                   "load_task_ms": browser.execute_script("const l = window.longest; window.longest = 0; return l")}
        names = [f"dash-p{i}" for i in range(count)]
        seen: dict[str, float] = {}

        async def run_and_watch() -> dict[str, float]:
            async with aiohttp.ClientSession() as session:
                task = asyncio.create_task(runs(session, url, names))
                deadline = time.monotonic() + count * RUN_EVERY + 30
                while (not task.done() or len(seen) < count) and time.monotonic() < deadline:
                    shown = set(query(browser, "tr.running[data-container^='dash-p']", "data-container"))
                    now = time.monotonic()
                    for name in shown - seen.keys():
                        seen[name] = now
                    await asyncio.sleep(0.05)
                return await task

        started = asyncio.run(run_and_watch())
        delays = [seen.get(name, float("inf")) - at for name, at in started.items()]
        figures.update(page_p50_s=statistics.median(delays), page_max_s=max(delays),
                       longest_task_ms=browser.execute_script("return window.longest"))
        browser.save_screenshot(str(screenshot))
        progress("screenshot", path=screenshot)
    finally:
        browser.quit()
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--containers", type=int, default=30, help="containers per simulated engine")
    p.add_argument("--runs", type=int, default=20, help="containers run in each of phases 2 and 3")
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--base-port", type=int, default=31500, help="the fleet's first port")
    p.add_argument("--healthy-timeout", type=float, default=600.0)
    p.add_argument("--no-browser", action="store_true", help="leave out phase 3")
    p.add_argument("--workdir", help="keep logs here (default: a temporary directory)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the fleet and the manager are stopped
    raise_fd_limit(args.nodes)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-dashboard-"))
    workdir.mkdir(parents=True, exist_ok=True)
    progress("fleet", nodes=args.nodes, containers=args.containers, logs=workdir)
    fleet = start_fleet(shared_tools(), args, workdir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    discovery = f"nodes://127.0.0.1:[{args.base_port}:{args.base_port + args.nodes - 1}]"
    manager = spawn(shoal_command("manage", "-H", f"tcp://127.0.0.1:{port}", discovery), workdir / "manager.log",
                    cwd=REPO)
    try:
        began = time.monotonic()
        asyncio.run(wait_healthy(url, args.nodes, manager, began, args.healthy_timeout))
        settle(manager, began, args.healthy_timeout)
        progress("settled", seconds=f"{time.monotonic() - began:.1f}")
        figures = asyncio.run(stream_figures(url, manager, args.idle_seconds, args.runs))
        progress("stream", **{k: f"{v:.2f}" for k, v in figures.items()})
        if not args.no_browser:
            figures.update(page_figures(url, args.nodes, args.runs, workdir / "chromium-profile",
                                        workdir / "dashboard.png"))
    finally:
        stop([manager, fleet])
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
