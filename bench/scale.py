"""Shoal against classic Swarm on one simulated fleet: start-up, memory, `ps`, `info`, `run`, idle CPU.

    python -m bench.scale [--nodes 1000] [--containers 30] [--classic ../shared/anchors/swarm-1.2.9]

Starts the shared simulated fleet (`shared/tools/simfleet.py`, through bench.quiet_fleet: its
garbage collector off; N fake engines on 127.0.0.1, for numbers only), then each manager fresh on
it, one after the other: the time from its start until
`/info` shows all N engines Healthy, and until it has settled (under 25 % of a core for 2 s: the
work its start left is done); then `shared/tools/fleetbench.py` (sequential keep-alive calls:
`info`, `ps -a`, create+start, `rm -f`); `docker ps` (running only) timed the same way; its RSS after
all that, its peak RSS while it ran (VmHWM, reset before), and its CPU while idle. Prints one line
per manager and, with --classic, a last line of ratios (Shoal / classic):
`healthy_ratio=A rss_ratio=B rss_peak_ratio=C ps_p99_ratio=D info_p99_ratio=E run_p99_ratio=F
ps_running_p99_ratio=G runs_per_s_ratio=H` (`ps` = `ps -a`; runs/s: higher is better). A manager
that crashes or hangs gets its error printed under its line, and the next one is still measured.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from lab.daemons import shoal_command
from lab.procs import Proc, free_port, progress, spawn, stop, tail, wait_until

REPO = Path(__file__).resolve().parents[1]
API = "/v1.40"  # classic Swarm 1.2.9 speaks 1.40 at most


@dataclass
class Figures:
    """What one manager did on the fleet."""

    name: str
    healthy_s: float = math.nan
    settled_s: float = math.nan
    rss_mib: float = math.nan
    rss_peak_mib: float = math.nan
    ps_all_p99_ms: float = math.nan
    ps_p99_ms: float = math.nan
    info_p99_ms: float = math.nan
    run_p99_ms: float = math.nan
    runs_per_s: float = math.nan
    idle_cpu_pct: float = math.nan
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.name:<8} healthy_s={self.healthy_s:.2f} settled_s={self.settled_s:.1f} "
                f"rss_mib={self.rss_mib:.0f} "
                f"rss_peak_mib={self.rss_peak_mib:.0f} peak_over_steady={self.rss_peak_mib / self.rss_mib:.2f} "
                f"ps_all_p99_ms={self.ps_all_p99_ms:.1f} ps_p99_ms={self.ps_p99_ms:.1f} "
                f"info_p99_ms={self.info_p99_ms:.1f} run_p99_ms={self.run_p99_ms:.1f} "
                f"runs_per_s={self.runs_per_s:.1f} idle_cpu_pct={self.idle_cpu_pct:.1f} "
                f"errors={len(self.errors)}")


def ratios(shoal: Figures, classic: Figures) -> str:
    """The last line: each figure of Shoal over classic's."""
    pairs = [("healthy_ratio", "healthy_s"), ("rss_ratio", "rss_mib"), ("rss_peak_ratio", "rss_peak_mib"),
             ("ps_p99_ratio", "ps_all_p99_ms"), ("info_p99_ratio", "info_p99_ms"),
             ("run_p99_ratio", "run_p99_ms"), ("ps_running_p99_ratio", "ps_p99_ms"),
             ("runs_per_s_ratio", "runs_per_s")]
    return " ".join(f"{key}={getattr(shoal, attr) / getattr(classic, attr):.2f}" for key, attr in pairs)


def shared_tools() -> Path:
    """`shared/tools` beside the repository or one of its parents (worktrees live deeper)."""
    for parent in REPO.parents:
        if (parent / "shared" / "tools" / "fleetbench.py").exists():
            return parent / "shared" / "tools"
    raise SystemExit("bench.scale: shared/tools/ (simfleet.py, fleetbench.py) not found beside the repo")


def raise_fd_limit(nodes: int) -> None:
    """Enough descriptors for the fleet (4 per engine) and a manager's connections to it; children inherit."""
    need = 8 * nodes + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
        except (ValueError, OSError):  # not root: as far as the hard limit goes
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- the manager process, from /proc --------------------------------------------------------------
def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    """Set VmHWM (peak RSS) back to the current RSS (proc(5), clear_refs "5")."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


# ---- calls ----------------------------------------------------------------------------------------
def healthy_count(info: dict) -> int:
    rows = info.get("SystemStatus") or info.get("DriverStatus") or []
    return sum(1 for k, v in rows if k.strip().lstrip("└").strip() == "Status" and v == "Healthy")


async def wait_healthy(url: str, nodes: int, proc: Proc, began: float, timeout: float) -> float:
    """Seconds from `began` until `/info` shows `nodes` Healthy engines (polled every 0.2 s)."""
    last = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while time.monotonic() - began < timeout:
            if not proc.alive():
                raise SystemExit(f"bench.scale: the manager exited:\n{tail(Path(proc.log))}")
            healthy = 0
            try:
                async with session.get(url + API + "/info") as resp:
                    if resp.status == 200:
                        healthy = healthy_count(await resp.json(content_type=None))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                pass
            if healthy >= nodes:
                return time.monotonic() - began
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                progress("waiting", healthy=healthy, nodes=nodes, t=f"{last - began:.0f}s")
            await asyncio.sleep(0.2)
    raise SystemExit(f"bench.scale: not all {nodes} engines Healthy after {timeout:.0f}s")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.nan


async def ps_running_p99(url: str, runs: int) -> float:
    """p99 (ms) of `GET /containers/json` (what plain `docker ps` asks), sequential, keep-alive, body read."""
    samples = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1),
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:
        for _ in range(runs):
            began = time.perf_counter()
            async with session.get(url + API + "/containers/json") as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"bench.scale: docker ps answered {resp.status}")
            samples.append((time.perf_counter() - began) * 1000)
    return p99(samples)


SETTLED_CPU = 0.25  # of one core: above what either manager idles at with 5,000 engines (~20 %)


def settle(proc: Proc, began: float, timeout: float) -> float:
    """Seconds from `began` until the manager has used under SETTLED_CPU for 2 s in a row (the
    work a start leaves, e.g. Shoal's background inspects, is done); the timed calls come after."""
    window: list[tuple[float, float]] = []
    while time.monotonic() - began < timeout:
        window = (window + [(time.monotonic(), cpu_seconds(proc.pid))])[-9:]
        (t0, c0), (t1, c1) = window[0], window[-1]
        if t1 - t0 >= 2 and (c1 - c0) / (t1 - t0) < SETTLED_CPU:
            return t1 - began
        time.sleep(0.25)
    raise SystemExit(f"bench.scale: the manager was still busy after {timeout:.0f}s")


def fleetbench(tools: Path, url: str, pid: int, args: argparse.Namespace, log: Path) -> dict[str, float]:
    """Run fleetbench on the manager; the figures of its last line, and its errors."""
    cmd = [sys.executable, str(tools / "fleetbench.py"), "--manager", url.replace("http://", "tcp://"),
           "--runs", str(args.runs), "--ps-runs", str(args.ps_runs), "--pid", str(pid)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    figures = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+|nan)", last)}
    if "info_p99_ms" not in figures:
        raise SystemExit(f"bench.scale: fleetbench failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    figures["errors"] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("error:")]
    return figures


def measure(name: str, cmd: list[str], tools: Path, args: argparse.Namespace, workdir: Path) -> Figures:
    """Start one manager fresh on the fleet, measure it, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{name}.log"
    figures = Figures(name)
    began = time.monotonic()
    proc = spawn([part.replace("{port}", str(port)) for part in cmd], log, cwd=REPO)
    try:
        _measure(figures, proc, url, began, tools, args, workdir)
    except SystemExit as exc:  # it crashed or hung: the others are still measured, this one says why
        figures.errors.append(f"error: {str(exc.code)[-2000:]}")
    finally:
        stop([proc])
    return figures


def _measure(figures: Figures, proc: Proc, url: str, began: float, tools: Path, args: argparse.Namespace,
             workdir: Path) -> None:
    """Time the manager's start, then the calls, memory and idle CPU (SystemExit: it failed)."""
    name = figures.name
    figures.healthy_s = asyncio.run(wait_healthy(url, args.nodes, proc, began, args.healthy_timeout))
    progress("healthy", manager=name, seconds=f"{figures.healthy_s:.2f}")
    figures.settled_s = settle(proc, began, args.healthy_timeout)
    progress("settled", manager=name, seconds=f"{figures.settled_s:.1f}")
    reset_peak(proc.pid)
    bench = fleetbench(tools, url, proc.pid, args, workdir / f"{name}.fleetbench.txt")
    figures.info_p99_ms, figures.ps_all_p99_ms = bench["info_p99_ms"], bench["ps_p99_ms"]
    figures.run_p99_ms, figures.runs_per_s = bench["run_p99_ms"], bench["runs_per_s"]
    figures.errors = bench["errors"]
    progress("fleetbench", manager=name, info_p99_ms=figures.info_p99_ms,
             ps_all_p99_ms=figures.ps_all_p99_ms, run_p99_ms=figures.run_p99_ms)
    figures.ps_p99_ms = asyncio.run(ps_running_p99(url, args.ps_runs))
    figures.rss_peak_mib = status_kib(proc.pid, "VmHWM") / 1024
    figures.rss_mib = status_kib(proc.pid, "VmRSS") / 1024
    time.sleep(2)
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(args.idle_seconds)
    figures.idle_cpu_pct = 100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)


def start_fleet(tools: Path, args: argparse.Namespace, workdir: Path) -> Proc:
    addrs = workdir / "addrs.txt"
    proc = spawn([sys.executable, "-m", "bench.quiet_fleet", str(tools / "simfleet.py"), "--nodes", str(args.nodes),
                  "--containers-per-node", str(args.containers), "--base-port", str(args.base_port),
                  "--labels", "size=small", "--label-every", "node%10==0:size=xxl",
                  "--addrs-file", str(addrs)], workdir / "simfleet.log", cwd=REPO)
    wait_until(lambda: "READY" in (workdir / "simfleet.log").read_text(errors="replace"),
               timeout=60 + args.nodes / 20, what="simfleet", proc=proc)
    return proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--containers", type=int, default=30, help="containers per simulated engine")
    p.add_argument("--classic", help="classic Swarm binary (e.g. ../shared/anchors/swarm-1.2.9)")
    p.add_argument("--runs", type=int, default=200, help="info calls and create+start runs")
    p.add_argument("--ps-runs", type=int, default=50, help="`ps -a` calls, and `ps` calls")
    p.add_argument("--base-port", type=int, default=21000, help="the fleet's first port")
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--healthy-timeout", type=float, default=600.0)
    p.add_argument("--workdir", help="keep logs here (default: a temporary directory)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the fleet and managers are stopped
    tools = shared_tools()
    raise_fd_limit(args.nodes)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    discovery = f"nodes://127.0.0.1:[{args.base_port}:{args.base_port + args.nodes - 1}]"
    managers = [("shoal", shoal_command("manage", "-H", "tcp://127.0.0.1:{port}", discovery))]
    if args.classic:
        classic = str(Path(args.classic).resolve())
        managers.insert(0, ("classic", [classic, "manage", "-H", "tcp://127.0.0.1:{port}", discovery]))
    progress("fleet", nodes=args.nodes, containers=args.containers, logs=workdir)
    fleet = start_fleet(tools, args, workdir)
    results: dict[str, Figures] = {}
    try:
        for name, cmd in managers:
            progress("manager", name=name)
            results[name] = measure(name, cmd, tools, args, workdir)
            print(results[name].line(), flush=True)
            for error in sorted(set(results[name].errors))[:3]:
                print(f"  {error}", flush=True)
    finally:
        stop([fleet])
    if "classic" in results:
        print(ratios(results["shoal"], results["classic"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
