"""`shoal lab up | down | status`: N real Docker hosts on this one Linux machine.

Per node K: a netns `<lab>-nodeK` wired by a veth (`<lab>-vK`) to the lab bridge
(`<lab>-br`, address .1 of `--subnet`, nodes at .11, .12, ...), and a dockerd started as
`nsenter --net=/run/netns/<ns> unshare --uts sh -c 'hostname nodeK && exec dockerd ...'`
(nsenter, not `ip netns exec`, which remounts /sys and hides the cgroup mounts). Each
dockerd has its own data-root (`<dir>/<lab>/nodeK/data`), a short exec-root
(`/run/shoal/<lab>/nK`, unix socket paths are limited to 108 bytes), pidfile, cgroup parent
`shoal-<lab>-nodeK`, engine labels, and a config file whose `deprecated-key-path` is its own
(so every engine has its own ID) and whose `insecure-registries` holds the lab registry.
A `busybox:latest` image (the busybox-static binary plus applet symlinks, CMD ["sh"]) is
imported offline into every engine. Optional: Debian's docker-registry on <bridge>:5000,
seeded with busybox; a single-member etcd on free loopback ports; a manager (and, with
etcd, one agent per node) spawned from this repository.

Checked on the dev machine (kernel 6.18, cgroup v1 hybrid, ext4 root, iptables-nft,
dockerd 20.10.24): the defaults work, so no storage/iptables flags are passed: overlay2 on
the ext4 data-root, cgroupfs driver, iptables NAT inside each netns (`-p 8080:80` answers on
the node address from the host), userland proxy for loopback. Only `--tls=false` (avoids
dockerd's 15 s start delay for an unencrypted TCP host) and `shutdown-timeout: 2` (a fast
`down`) are added. Quirks: Debian's busybox `nc` has no `-k` (a persistent listener is
`nc -ll -p 80 -e ...`); the relative cgroup parent lands under dockerd's own cgroup, which
on the dev VM differs per hierarchy (memory is /process_api/<id>/shoal-...), so containers
stay inside the caller's memory limit and `down` finds the cgroup dirs by walking
/sys/fs/cgroup; images imported per engine get different IDs (import time), while pulling
from the lab registry gives one ID everywhere.

Every step is written to `<dir>/<lab>/state.json` as it happens, so `down` (idempotent)
also cleans up after a failed or interrupted `up`. Processes are ended only by their
recorded PID (checked against the kernel start time), or when they are containerd/shims
named after this lab's exec-roots, or inside this lab's cgroups.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from manager.lab_engine import (REGISTRY_PORT, Node, answers, busybox_tar, import_busybox, remove_containers,
                                seed_registry, start_dockerd, start_etcd, start_registry)
from manager.lab_net import addresses, check_subnet_free, create_bridge, create_node_net, delete_net
from manager.lab_sys import (LabError, Proc, cgroup_procs, log, port_in_use, procs_using,
                             remove_cgroup, spawn, stop, unmount_under, wait_until)

DEFAULT_ROOT = Path("/var/lib/shoal/lab")
RUN_ROOT = Path("/run/shoal")
REPO = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"[a-z][a-z0-9]{0,9}")  # keeps `<name>-vNN` within 15 chars
ENGINE_TIMEOUT, AUX_TIMEOUT, MANAGER_TIMEOUT = 30.0, 15.0, 20.0
SERVICES = ("registry", "etcd")  # stopped after the manager and agents


@dataclass
class LabSpec:
    """What `up` builds; `labels` maps a node name to its engine labels."""

    name: str = "shoal"
    nodes: int = 3
    subnet: str = "10.213.0.0/24"
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    registry: bool = False
    etcd: bool = False
    manager_port: int | None = None
    root: Path = DEFAULT_ROOT


@dataclass
class LabState:
    """A lab as built so far (persisted as state.json); addresses are "host:port"."""

    name: str
    dir: str
    run_dir: str
    subnet: str
    bridge: str
    bridge_ip: str
    nodes: list[Node]
    registry: str | None = None
    etcd: str | None = None
    manager: str | None = None
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def engines(self) -> list[str]:
        """Engine addresses, node1 first."""
        return [n.engine for n in self.nodes]

    @property
    def names(self) -> list[str]:
        """Node (and engine host) names."""
        return [n.name for n in self.nodes]

    def save(self) -> None:
        """Write state.json atomically."""
        path = Path(self.dir) / "state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(json.dumps(asdict(self), indent=1))
        path.with_suffix(".tmp").replace(path)


def load(name: str = "shoal", root: Path = DEFAULT_ROOT) -> LabState | None:
    """The saved state of lab `name`, or None if there is none."""
    path = root / name / "state.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    raw["nodes"] = [Node(**{**n, "dockerd": n["dockerd"] and Proc(**n["dockerd"])}) for n in raw["nodes"]]
    raw["procs"] = {k: Proc(**v) for k, v in raw["procs"].items()}
    return LabState(**raw)


def plan(spec: LabSpec) -> LabState:
    """Names, addresses and dirs for `spec`; refuses clashes before anything is created."""
    if not NAME_RE.fullmatch(spec.name):
        raise LabError(f"lab name {spec.name!r} must match {NAME_RE.pattern}")
    if load(spec.name, spec.root):
        raise LabError(f"lab {spec.name} is already up; run `shoal lab down --name {spec.name}` first")
    if unknown := set(spec.labels) - {f"node{k}" for k in range(1, spec.nodes + 1)}:
        raise LabError(f"labels for unknown nodes: {sorted(unknown)}")
    if spec.manager_port and port_in_use(spec.manager_port):
        raise LabError(f"port {spec.manager_port} on 127.0.0.1 is already in use")
    bridge_ip, ips = addresses(spec.subnet, spec.nodes)
    check_subnet_free(spec.subnet)
    lab_dir, run_dir = spec.root.resolve() / spec.name, RUN_ROOT / spec.name
    nodes = [Node(name=f"node{k}", ip=ip, netns=f"{spec.name}-node{k}", veth=f"{spec.name}-v{k}",
                  dir=str(lab_dir / f"node{k}"), run_dir=str(run_dir / f"n{k}"),
                  cgroup=f"shoal-{spec.name}-node{k}", labels=spec.labels.get(f"node{k}", {}))
             for k, ip in enumerate(ips, start=1)]
    return LabState(name=spec.name, dir=str(lab_dir), run_dir=str(run_dir), subnet=spec.subnet,
                    bridge=f"{spec.name}-br", bridge_ip=bridge_ip, nodes=nodes)


def up(spec: LabSpec) -> LabState:
    """Build the lab described by `spec` and return its state (raises LabError on failure;
    whatever was built stays recorded for `down`)."""
    began = time.monotonic()
    state = plan(spec)
    state.save()
    prefixlen = ipaddress.IPv4Network(spec.subnet).prefixlen
    create_bridge(state.bridge, state.bridge_ip, prefixlen)
    for node in state.nodes:
        create_node_net(node.netns, node.veth, state.bridge, node.ip, prefixlen, state.bridge_ip)
    log("network up", lab=state.name, bridge=f"{state.bridge}:{state.bridge_ip}", nodes=len(state.nodes))
    _start_aux(state, spec)
    for node in state.nodes:
        node.dockerd = start_dockerd(node, [f"{state.bridge_ip}:{REGISTRY_PORT}"])
        state.save()
    rootfs = busybox_tar()
    with ThreadPoolExecutor(len(state.nodes)) as pool:
        list(pool.map(lambda n: _ready_node(n, rootfs), state.nodes))
    _ready_aux(state)
    if spec.manager_port:
        _start_manager(state, spec.manager_port)
    log("up", lab=state.name, engines=",".join(state.engines), took=f"{time.monotonic() - began:.1f}s")
    return state


def _start_aux(state: LabState, spec: LabSpec) -> None:
    """Spawn the registry and etcd (they get ready while the engines start)."""
    if spec.registry:
        state.procs["registry"], state.registry = start_registry(Path(state.dir) / "registry", state.bridge_ip)
    if spec.etcd:
        state.procs["etcd"], state.etcd = start_etcd(Path(state.dir) / "etcd", f"shoal-{state.name}")
    state.save()


def _ready_node(node: Node, rootfs: bytes) -> None:
    """Wait for a node's engine to answer, then import busybox into it."""
    took = wait_until(lambda: answers(node.engine), ENGINE_TIMEOUT, f"{node.name} dockerd", node.dockerd)
    log(f"{node.name} dockerd up", addr=node.engine, pid=node.dockerd.pid, took=f"{took:.1f}s")
    import_busybox(node.engine, rootfs)
    log(f"{node.name} busybox imported")


def _ready_aux(state: LabState) -> None:
    """Wait for etcd and the registry; seed the registry with busybox from node1."""
    if state.etcd:
        took = wait_until(lambda: answers(state.etcd, "/health"), AUX_TIMEOUT, "etcd", state.procs["etcd"])
        log("etcd up", addr=state.etcd, took=f"{took:.1f}s")
    if state.registry:
        wait_until(lambda: answers(state.registry, "/v2/"), AUX_TIMEOUT, "registry", state.procs["registry"])
        seed_registry(state.engines[0], state.registry)
        log("registry up", addr=state.registry, seeded=f"{state.registry}/busybox:latest")


def _start_manager(state: LabState, port: int) -> None:
    """Spawn the manager (plus one agent per node when etcd is on); warn if it stays silent."""
    lab_dir, shoal = Path(state.dir), [sys.executable, "-m", "manager.cli"]
    if state.etcd:
        discovery = f"etcd://{state.etcd}/shoal"
        for node in state.nodes:
            join = [*shoal, "join", "--advertise", node.engine, "--heartbeat", "1s", "--ttl", "3s", discovery]
            state.procs[f"agent-{node.name}"] = spawn(join, lab_dir / f"agent-{node.name}.log", cwd=REPO)
    else:
        discovery = "nodes://" + ",".join(state.engines)
    state.manager = f"127.0.0.1:{port}"
    manage = [*shoal, "manage", "-H", f"tcp://{state.manager}", discovery]
    state.procs["manager"] = spawn(manage, lab_dir / "manager.log", cwd=REPO)
    state.save()
    try:
        took = wait_until(lambda: answers(state.manager), MANAGER_TIMEOUT, "manager", state.procs["manager"])
        log("manager up", addr=state.manager, discovery=discovery, took=f"{took:.1f}s")
    except LabError as err:
        log("warning", what="manager not answering", error=str(err).replace("\n", " | "))


def down(name: str = "shoal", root: Path = DEFAULT_ROOT) -> None:
    """Remove lab `name` completely: containers, processes, mounts, cgroups, network, dirs.
    Idempotent; works on a partial lab."""
    state = load(name, root)
    if state is None:
        log("down", lab=name, state="absent")
        return
    began = time.monotonic()
    stop([p for what, p in state.procs.items() if what not in SERVICES])  # manager, agents
    with ThreadPoolExecutor(len(state.nodes)) as pool:
        list(pool.map(_clear_engine, state.nodes))
    stop(state.procs.values())
    stop([n.dockerd for n in state.nodes if n.dockerd], timeout=20.0)
    stop(procs_using([Path(n.run_dir) for n in state.nodes], ("dockerd", "containerd")))
    stop([p for n in state.nodes for p in cgroup_procs(n.cgroup)], timeout=0)  # orphaned containers
    unmount_under([Path(state.dir), Path(state.run_dir)])
    for node in state.nodes:
        remove_cgroup(node.cgroup)
    delete_net([n.netns for n in state.nodes], [n.veth for n in state.nodes], state.bridge)
    for path in (Path(state.run_dir), Path(state.dir)):
        shutil.rmtree(path, ignore_errors=True)
        _rmdir_if_empty(path.parent)
    log("down", lab=name, took=f"{time.monotonic() - began:.1f}s")


def _clear_engine(node: Node) -> None:
    """Force-remove all containers of a node whose engine still answers."""
    if not answers(node.engine):
        return
    try:
        log(f"{node.name} containers removed", count=remove_containers(node.engine))
    except LabError as err:
        log("warning", node=node.name, error=err)


def _rmdir_if_empty(path: Path) -> None:
    """Remove `path` if it is an empty directory."""
    try:
        path.rmdir()
    except OSError:
        pass


def status(name: str = "shoal", root: Path = DEFAULT_ROOT) -> list[tuple[str, str, bool]] | None:
    """(component, address, answers) for every node and service of lab `name`, or None."""
    state = load(name, root)
    if state is None:
        return None
    rows = [(n.name, n.engine, answers(n.engine)) for n in state.nodes]
    services = [("registry", state.registry, "/v2/"), ("etcd", state.etcd, "/health"),
                ("manager", state.manager, "/_ping")]
    rows += [(what, addr, answers(addr, path)) for what, addr, path in services if addr]
    rows += [(what, f"pid {p.pid}", p.alive()) for what, p in state.procs.items() if what.startswith("agent-")]
    return rows


def _node_label(text: str) -> tuple[str, str, str]:
    """Parse `--label nodeK:key=value`."""
    node, sep, pair = text.partition(":")
    key, eq, value = pair.partition("=")
    if not (sep and eq and node and key):
        raise argparse.ArgumentTypeError(f"expected nodeK:key=value, got {text!r}")
    return node, key, value


def _cmd_up(args: argparse.Namespace) -> int:
    """`lab up`: build the lab and print how to reach it."""
    labels: dict[str, dict[str, str]] = {}
    for node, key, value in args.label:
        labels.setdefault(node, {})[key] = value
    spec = LabSpec(name=args.name, nodes=args.nodes, subnet=args.subnet, labels=labels,
                   registry=args.registry, etcd=args.etcd, manager_port=args.manager, root=args.dir)
    try:
        state = up(spec)
    except LabError as err:
        log("failed", lab=args.name, error=err)
        if load(args.name, args.dir):
            log("hint", cleanup=f"shoal lab down --name {args.name} --dir {args.dir}")
        return 1
    for node in state.nodes:
        print(f"{node.name}\ttcp://{node.engine}")
    for what, addr in (("registry", state.registry), ("etcd", state.etcd)):
        if addr:
            print(f"{what}\t{addr}")
    if state.manager:
        print(f"export DOCKER_HOST=tcp://{state.manager}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    """`lab down`: tear the lab down."""
    down(args.name, args.dir)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """`lab status`: one line per component; exit 1 unless all answer."""
    rows = status(args.name, args.dir)
    if rows is None:
        print(f"lab {args.name}: not up")
        return 1
    for what, addr, ok in rows:
        print(f"{what}\t{addr}\t{'up' if ok else 'DOWN'}")
    return 0 if all(ok for _, _, ok in rows) else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `lab up | down | status` to the shoal command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="shoal", help="lab name (default: shoal)")
    common.add_argument("--dir", type=Path, default=DEFAULT_ROOT, help=f"state root (default: {DEFAULT_ROOT})")
    lab = sub.add_parser("lab", help="a local lab of real Docker hosts (needs root)")
    actions = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up_p = actions.add_parser("up", parents=[common], help="start N Docker hosts")
    up_p.add_argument("--nodes", type=int, default=3, help="number of Docker hosts (default: 3)")
    up_p.add_argument("--label", type=_node_label, action="append", default=[], metavar="NODE:KEY=VALUE",
                      help="an engine label, e.g. node3:size=xxl (repeatable)")
    up_p.add_argument("--subnet", default="10.213.0.0/24", help="lab subnet: bridge .1, nodes .11+")
    up_p.add_argument("--registry", action="store_true", help="a registry on <bridge>:5000")
    up_p.add_argument("--etcd", action="store_true", help="an etcd on 127.0.0.1")
    up_p.add_argument("--manager", type=int, metavar="PORT", help="also start a manager on this port")
    up_p.set_defaults(func=_cmd_up)
    actions.add_parser("down", parents=[common], help="remove the lab").set_defaults(func=_cmd_down)
    actions.add_parser("status", parents=[common], help="show the lab").set_defaults(func=_cmd_status)
