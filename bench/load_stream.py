"""`docker load` of a large image through Shoal on a real 3-node lab: the body is read once and
streamed to every node at once, so the manager's memory must not grow with the image size.

    python -m bench.load_stream [--mb 512] [--lab bload] [--subnet 10.213.61.0/24]

Brings up its own lab with a manager, loads a generated image of --mb MiB (random bytes: nothing to
compress) through the manager and straight into one engine, tears the lab down.
Last line: mb=N through_s=A direct_s=B ratio=A/B manager_peak_rss_growth_mb=C
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.request

from bench.labs import add_lab_flags, lab_with_manager
from lab.archives import image_archive


def load(url: str, mb: int, tag: str) -> float:
    """Seconds to POST the generated archive to `url` (/images/load) and read the answer."""
    began = time.monotonic()
    request = urllib.request.Request(url, data=image_archive(tag, mb), method="POST",
                                     headers={"Content-Type": "application/x-tar"})
    with urllib.request.urlopen(request, timeout=3600) as resp:
        answer = resp.read().decode()
    if '"error"' in answer or tag not in answer:
        raise RuntimeError(f"load failed: {answer[-500:]}")
    return time.monotonic() - began


def wait_healthy(manager: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{manager}/info", timeout=10) as resp:
            if json.load(resp)["SystemStatus"].count(["  └ Status", "Healthy"]) >= count:
                return
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {count} healthy engines after {timeout:g} s")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kb / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512)
    add_lab_flags(parser, "bload", "10.213.61.0/24")
    args = parser.parse_args(argv)
    with lab_with_manager(args) as (state, url):
        pid = state.procs["manager"].pid
        wait_healthy(url, 3)
        manager = f"{url}/v1.41/images/load"
        load(manager, 1, "warmup:1")
        before = peak_rss_mb(pid)
        through = load(manager, args.mb, "big:1")
        growth = peak_rss_mb(pid) - before
        print(f"through the manager (3 nodes): {through:.1f} s, {args.mb / through:.0f} MiB/s, "
              f"manager peak RSS {before:.0f} -> {before + growth:.0f} MiB", flush=True)
        direct = load(f"http://{state.engines[0]}/v1.41/images/load", args.mb, "big:2")
        print(f"straight into one engine: {direct:.1f} s", flush=True)
    print(f"mb={args.mb} through_s={through:.1f} direct_s={direct:.1f} ratio={through / direct:.2f} "
          f"manager_peak_rss_growth_mb={growth:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
