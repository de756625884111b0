"""Multi-host networking on a real 3-node lab whose engines form a swarm-mode cluster (`--overlay`):

* how long from `network create -d overlay` through Shoal until a container on another node resolves
  a peer by name (create the network, run the peer on node1, run a container on node2 that looks
  the peer up until it answers);
* ping RTT between containers on two nodes against two on one node (target: at most 2x);
* the manager's overhead on `network create -d overlay` against the same create sent straight to
  the swarm-mode manager engine (medians, interleaved, keep-alive; target: at most 1.2x), and the
  same with the docker CLI;
* the manager's CPU (utime + stime, from /proc: steadier than wall-clock medians on a shared machine)
  per overlay create + rm through Shoal, and per create + rm made straight on the engine (what its
  network events cost the manager);
* with --reference, the same interleaved creates through the least aiohttp forwarder (aiohttp's server
  and client), through the least the card's stack can do (aiohttp's server, Shoal's short-call
  client, nothing else) and through a raw TCP relay (bench.forwarders): what aiohttp itself and the
  extra hop cost here.

    python -m bench.overlay [--runs 30] [--lab benchov] [--subnet 10.213.64.0/24] [--reference]

Last line: resolve_s=A cross_node_rtt_ms=B same_node_rtt_ms=C rtt_ratio=D create_ms=E
create_direct_ms=F create_ratio=G cli_create_ratio=H (the same create with the docker CLI)
create_cpu_ms=I direct_create_cpu_ms=J (manager CPU per create + rm, CPU_ROUNDS of each)
[aiohttp_forwarder_ratio=K lean_forwarder_ratio=L tcp_relay_ratio=M].
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time

import aiohttp

from bench.proxy_overhead import PREFIX, timed
from bench.scale import cpu_seconds
from lab.lifecycle import down, up
from lab.procs import free_port, port_in_use, wait_until
from lab.state import LabSpec

PINGS = 20
CPU_ROUNDS = 300
REFERENCES = {"aiohttp": "the least aiohttp forwarder", "lean": "aiohttp's server and Shoal's short-call client",
              "tcp": "a raw TCP relay"}


def docker(manager: str, *args: str) -> str:
    """The docker CLI through the manager."""
    env = dict(os.environ, DOCKER_HOST=f"tcp://{manager}")
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_healthy(manager: str, count: int) -> None:
    """Until the manager shows `count` Healthy engines."""
    while docker(manager, "info", "--format", "{{json .SystemStatus}}").count('"Healthy"') < count:
        time.sleep(0.2)


def resolve_seconds(manager: str) -> float:
    """From `network create -d overlay` to a container on node2 resolving one on node1 by name."""
    began = time.perf_counter()
    docker(manager, "network", "create", "-d", "overlay", "benchnet")
    docker(manager, "run", "-d", "--name", "peer", "--net", "benchnet", "-e", "constraint:node==node1",
           "busybox", "sleep", "600")
    docker(manager, "run", "--rm", "--net", "benchnet", "-e", "constraint:node==node2", "busybox", "sh", "-c",
           "until nslookup peer 127.0.0.11 >/dev/null 2>&1; do sleep 0.05; done")
    return time.perf_counter() - began


def rtt_ms(manager: str, node: str) -> float:
    """Average RTT of PINGS pings from a container on `node` to `peer` (on node1)."""
    out = docker(manager, "run", "--rm", "--net", "benchnet", "-e", f"constraint:node=={node}", "busybox",
                 "ping", "-q", "-c", str(PINGS), "-i", "0.2", "peer")
    return float(re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out)[1])


ATTACHABLE = {"Driver": "overlay", "Attachable": True}  # what Shoal sends the engine


def sides(manager: str, engine: str, through: dict | None = None) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """The same overlay create through the manager (`through`: its body, by default without
    `Attachable`, which Shoal adds) and straight on the swarm-mode manager engine: (base URL, body)."""
    return (f"http://{manager}", through or {"Driver": "overlay"}), (f"http://{engine}", ATTACHABLE)


async def create_and_rm(session: aiohttp.ClientSession, base: str, body: dict, name: str) -> float:
    """Create an overlay (CheckDuplicate, as the CLI sends it) and remove it; the create's ms."""
    ms, data = await timed(session, "POST", f"{base}{PREFIX}/networks/create",
                           {"Name": name, "CheckDuplicate": True, **body})
    await timed(session, "DELETE", f"{base}{PREFIX}/networks/{data['Id']}")
    return ms


async def create_ms(manager: str, engine: str, runs: int, through_body: dict | None = None
                    ) -> tuple[float, float]:
    """Medians of overlay network creation through the manager (or a forwarder, sent `through_body`)
    and straight on the swarm manager."""
    through, straight = [], []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
        for k in range(runs):  # interleaved, so load noise hits both sides alike
            for (base, body), samples, side in zip(sides(manager, engine, through_body), (through, straight), "md"):
                samples.append(await create_and_rm(session, base, body, f"bench{side}{k}"))
    return statistics.median(through), statistics.median(straight)


async def create_cpu_ms(manager: str, engine: str, pid: int, rounds: int) -> tuple[float, float]:
    """The manager's CPU per create + rm through it, and per create + rm straight on the engine."""
    spent = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
        for (base, body), side in zip(sides(manager, engine), "md"):
            began = cpu_seconds(pid)
            for k in range(rounds):
                await create_and_rm(session, base, body, f"cpu{side}{k}")
            await asyncio.sleep(0.5)  # the last events, and any listing they start
            spent.append((cpu_seconds(pid) - began) * 1000 / rounds)
    return spent[0], spent[1]


def reference_ratio(kind: str, engine: str, runs: int) -> float:
    """create_ms's ratio through a reference forwarder (bench.forwarders `kind`) instead of Shoal."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.forwarders", kind, str(port), engine])
    try:
        wait_until(lambda: port_in_use(port), 10, f"the {kind} forwarder")
        through, straight = asyncio.run(create_ms(f"127.0.0.1:{port}", engine, runs, ATTACHABLE))
    finally:
        proc.terminate()
        proc.wait()
    what = REFERENCES[kind]
    print(f"network create -d overlay (API, keep-alive) through {what}: {through:.1f} ms, engine {straight:.1f} ms "
          f"(medians of {runs})", flush=True)
    return through / straight


def cli_create_ms(manager: str, engine: str, runs: int) -> tuple[float, float]:
    """Medians of `docker network create -d overlay` with the CLI (what a user waits for) through the
    manager and straight at the swarm-mode manager engine (`--attachable` there, as Shoal adds it)."""
    through, straight = [], []
    for k in range(runs):
        for host, samples, extra in ((manager, through, []), (engine, straight, ["--attachable"])):
            began = time.perf_counter()
            docker(host, "network", "create", "-d", "overlay", *extra, f"cli{len(samples)}{k}")
            samples.append((time.perf_counter() - began) * 1000)
            docker(host, "network", "rm", f"cli{len(samples) - 1}{k}")
    return statistics.median(through), statistics.median(straight)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="network creates on each side (default 30)")
    parser.add_argument("--lab", default="benchov", help="lab name (two runs at once need two)")
    parser.add_argument("--subnet", default="10.213.64.0/24")
    parser.add_argument("--reference", action="store_true",
                        help="also the creates through a bare aiohttp forwarder and a raw TCP relay")
    args = parser.parse_args(argv)
    references: dict[str, float] = {}
    port = free_port()
    spec = LabSpec(name=args.lab, nodes=3, subnet=args.subnet, manager_port=port, overlay="swarm")
    manager = f"127.0.0.1:{port}"
    down(spec.name, spec.root)
    try:
        state = up(spec)
        wait_healthy(manager, spec.nodes)
        resolve = resolve_seconds(manager)
        print(f"network create -d overlay -> peer on another node resolved by name: {resolve:.2f} s", flush=True)
        cross, same = rtt_ms(manager, "node2"), rtt_ms(manager, "node1")
        print(f"ping RTT: across nodes {cross:.3f} ms, on one node {same:.3f} ms ({PINGS} pings each)", flush=True)
        docker(manager, "rm", "-f", "peer")
        docker(manager, "network", "rm", "benchnet")
        through, straight = asyncio.run(create_ms(manager, state.engines[0], args.runs))
        print(f"network create -d overlay (API, keep-alive): manager {through:.1f} ms, engine {straight:.1f} ms "
              f"(medians of {args.runs})", flush=True)
        cpu, direct_cpu = asyncio.run(create_cpu_ms(manager, state.engines[0], state.procs["manager"].pid,
                                                    CPU_ROUNDS))
        print(f"manager CPU per create + rm: {cpu:.2f} ms through it, {direct_cpu:.2f} ms for one made straight "
              f"on the engine (its events; {CPU_ROUNDS} of each)", flush=True)
        if args.reference:
            references = {kind: reference_ratio(kind, state.engines[0], args.runs) for kind in REFERENCES}
        cli_through, cli_straight = cli_create_ms(manager, state.engines[0], max(3, args.runs // 3))
        print(f"docker network create -d overlay (CLI): manager {cli_through:.0f} ms, engine {cli_straight:.0f} ms",
              flush=True)
    finally:
        down(spec.name, spec.root)
    print(f"resolve_s={resolve:.2f} cross_node_rtt_ms={cross:.3f} same_node_rtt_ms={same:.3f} "
          f"rtt_ratio={cross / same:.2f} create_ms={through:.1f} create_direct_ms={straight:.1f} "
          f"create_ratio={through / straight:.2f} cli_create_ratio={cli_through / cli_straight:.2f} "
          f"create_cpu_ms={cpu:.2f} direct_create_cpu_ms={direct_cpu:.2f}" +
          "".join(f" {kind}_{'relay' if kind == 'tcp' else 'forwarder'}_ratio={ratio:.2f}"
                  for kind, ratio in references.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
