"""Building and removing a lab: N real Docker hosts on this one Linux machine.

Per node K: a netns `<lab>-nodeK` wired by a veth (`<lab>-vK`) to the lab bridge
(`<lab>-br`, address .1 of `--subnet`, nodes at .11, .12, ...; no default route), and a dockerd started as
`nsenter --net=/run/netns/<ns> unshare --uts sh -c 'hostname nodeK && exec dockerd ...'`
(nsenter, not `ip netns exec`, which remounts /sys and hides the cgroup mounts). Each
dockerd has its own data-root (`<dir>/<lab>/nodeK/data`), a short exec-root
(`/run/shoal/<lab>/nK`, unix socket paths are limited to 108 bytes), pidfile, cgroup parent
`shoal-<lab>-nodeK`, engine labels, and a config file whose `deprecated-key-path` is its own
(so every engine has its own ID) and whose `insecure-registries` holds the lab registry.
A `busybox:latest` image (the busybox-static binary plus applet symlinks, CMD ["sh"]) is
imported offline into every engine. Optional: Debian's docker-registry on <bridge>:5000,
seeded with busybox; a single-member etcd on a free port of loopback and of the bridge (containers
on the nodes reach it there); a manager (and, with
etcd, one agent per node) spawned from this repository; multi-host networking (`--overlay`:
the engines as one swarm-mode cluster, or `--overlay kv` on the etcd's v2 API; see lab.overlay).

Checked on the dev machine (kernel 6.18, cgroup v1 hybrid, ext4 root, iptables-nft,
dockerd 20.10.24): the defaults work, so no storage/iptables flags are passed: overlay2 on
the ext4 data-root, cgroupfs driver, iptables NAT inside each netns (`-p 8080:80` answers on
the node address from the host), userland proxy for loopback. Only `--tls=false` (avoids
dockerd's 15 s start delay for an unencrypted TCP host; with `up --tls`, `--tlsverify` and the node's own
certificate on port 2376 instead) and `shutdown-timeout: 2` (a fast
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

import ipaddress
import shutil
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.daemons import (REGISTRY_PORT, Host, answers, busybox_tar, import_busybox, remove_containers,
                         seed_registry, start_agent, start_dockerd, start_manager, start_registry)
from lab.etcd import EtcdServer
from lab.net import create_bridge, create_node_net, delete_net
from lab.overlay import form_swarm, kv_config
from lab.procs import (LabError, cgroup_procs, procs_using, progress, remove_cgroup, stop, unmount_under,
                       wait_until)
from lab.state import DEFAULT_ROOT, LabSpec, LabState, load, plan
from lab.tls import docker_cert_path, issue, kv_flags, make_tls, tls_flags

ENGINE_TIMEOUT, AUX_TIMEOUT, MANAGER_TIMEOUT = 30.0, 15.0, 20.0
SERVICES = ("registry", "etcd")  # stopped after the manager and agents


def up(spec: LabSpec) -> LabState:
    """Build the lab described by `spec` and return its state (raises LabError on failure;
    whatever was built stays recorded for `down`)."""
    began = time.monotonic()
    state = plan(spec)
    state.save()
    prefixlen = ipaddress.IPv4Network(spec.subnet).prefixlen
    create_bridge(state.bridge, state.bridge_ip, prefixlen)
    for node in state.nodes:
        create_node_net(node.netns, node.veth, state.bridge, node.ip, prefixlen)
    progress("network up", lab=state.name, bridge=f"{state.bridge}:{state.bridge_ip}", nodes=len(state.nodes))
    if state.tls:
        _make_certificates(state)
    etcd = _start_aux(state, spec)
    if spec.overlay == "kv":  # the engines join the store as they start
        etcd.wait_ready(AUX_TIMEOUT)
    for node in state.nodes:
        certs = (state.tls_paths.ca, *_engine_pair(state, node)) if state.tls else None
        kv = kv_config(node, state.etcd_for_nodes, state.tls_paths) if spec.overlay == "kv" else None
        node.dockerd = start_dockerd(node, [f"{state.bridge_ip}:{REGISTRY_PORT}"], certs, kv)
        state.save()
    rootfs = busybox_tar()
    tls = state.client_tls()
    with ThreadPoolExecutor(len(state.nodes)) as pool:
        list(pool.map(lambda n: _ready_node(n, rootfs, tls), state.nodes))
    if spec.overlay == "swarm":
        form_swarm(state.nodes, tls)
    _ready_aux(state, etcd)
    if spec.manager_port:
        _start_manager(state, spec.manager_port)
    progress("up", lab=state.name, engines=",".join(state.engines), took=f"{time.monotonic() - began:.1f}s")
    return state


def _make_certificates(state: LabState) -> None:
    """A throwaway CA, the manager's pair, a client pair and one pair per engine (keys 0600)."""
    make_tls(state.tls, ("127.0.0.1", state.bridge_ip))  # etcd serves the bridge too
    for node in state.nodes:
        issue(state.tls, node.name, node.ip)
    progress("tls certificates made", dir=state.tls, cert_path=docker_cert_path(state.tls))


def _engine_pair(state: LabState, node: Host) -> tuple[str, str]:
    return str(Path(state.tls) / f"{node.name}.pem"), str(Path(state.tls) / f"{node.name}.key")


def _start_aux(state: LabState, spec: LabSpec) -> EtcdServer | None:
    """Spawn the registry and etcd (they get ready while the engines start)."""
    etcd = None
    if spec.registry:
        state.procs["registry"], state.registry = start_registry(Path(state.dir) / "registry", state.bridge_ip)
    if spec.etcd or spec.overlay == "kv":
        etcd = EtcdServer(Path(state.dir) / "etcd", f"shoal-{state.name}", also_on=(state.bridge_ip,),
                          tls=state.tls_paths, v2=spec.overlay == "kv")
        state.procs["etcd"], state.etcd = etcd.spawn(), etcd.endpoint
    state.save()
    return etcd


def _ready_node(node: Host, rootfs: bytes, tls: ssl.SSLContext | None) -> None:
    """Wait for a node's engine to answer, then import busybox into it."""
    took = wait_until(lambda: answers(node.engine, tls=tls), ENGINE_TIMEOUT, f"{node.name} dockerd", node.dockerd)
    progress(f"{node.name} dockerd up", addr=node.engine, pid=node.dockerd.pid, took=f"{took:.1f}s")
    import_busybox(node.engine, rootfs, tls)
    progress(f"{node.name} busybox imported")


def _ready_aux(state: LabState, etcd: EtcdServer | None) -> None:
    """Wait for etcd and the registry; seed the registry with busybox from node1."""
    if etcd:
        took = etcd.wait_ready(AUX_TIMEOUT)
        progress("etcd up", addr=state.etcd, took=f"{took:.1f}s")
    if state.registry:
        wait_until(lambda: answers(state.registry, "/v2/"), AUX_TIMEOUT, "registry", state.procs["registry"])
        seed_registry(state.engines[0], state.registry, state.client_tls())
        progress("registry up", addr=state.registry, seeded=f"{state.registry}/busybox:latest")


def _start_manager(state: LabState, port: int) -> None:
    """Spawn the manager (plus one agent per node when etcd is on); warn if it stays silent."""
    lab_dir, paths = Path(state.dir), state.tls_paths
    kv = kv_flags(paths) if paths and state.etcd else []
    if state.etcd:
        discovery = f"etcd://{state.etcd}/shoal"
        agent_flags = (tls_flags(paths, client=True) if paths else []) + kv
        for node in state.nodes:
            state.procs[f"agent-{node.name}"] = start_agent(node.engine, discovery, lab_dir / f"agent-{node.name}.log",
                                                            flags=agent_flags)
    else:
        discovery = "nodes://" + ",".join(state.engines)
    state.manager = f"127.0.0.1:{port}"
    flags = (tls_flags(paths, client=False) if paths else []) + kv
    state.procs["manager"] = start_manager(state.manager, discovery, flags, lab_dir / "manager.log")
    state.save()
    tls = state.client_tls()
    try:
        took = wait_until(lambda: answers(state.manager, tls=tls), MANAGER_TIMEOUT, "manager", state.procs["manager"])
        progress("manager up", addr=state.manager, discovery=discovery, took=f"{took:.1f}s")
    except LabError as err:
        progress("warning", what="manager not answering", error=str(err).replace("\n", " | "))


def down(name: str = "shoal", root: Path = DEFAULT_ROOT) -> None:
    """Remove lab `name` completely: containers, processes, mounts, cgroups, network, dirs.
    Idempotent; works on a partial lab."""
    state = load(name, root)
    if state is None:
        progress("down", lab=name, state="absent")
        return
    began = time.monotonic()
    stop([p for what, p in state.procs.items() if what not in SERVICES])  # manager, agents
    tls = state.client_tls()
    with ThreadPoolExecutor(len(state.nodes)) as pool:
        list(pool.map(lambda n: _clear_engine(n, tls), state.nodes))
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
    progress("down", lab=name, took=f"{time.monotonic() - began:.1f}s")


def _clear_engine(node: Host, tls: ssl.SSLContext | None) -> None:
    """Force-remove all containers of a node whose engine still answers."""
    if not answers(node.engine, tls=tls):
        return
    try:
        progress(f"{node.name} containers removed", count=remove_containers(node.engine, tls))
    except LabError as err:
        progress("warning", node=node.name, error=err)


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
    tls = state.client_tls()
    rows = [(n.name, n.engine, answers(n.engine, tls=tls)) for n in state.nodes]
    rows += [("registry", state.registry, answers(state.registry, "/v2/"))] if state.registry else []
    rows += [("etcd", state.etcd, answers(state.etcd, "/health", tls))] if state.etcd else []
    rows += [("manager", state.manager, answers(state.manager, tls=tls))] if state.manager else []
    rows += [(what, f"pid {p.pid}", p.alive()) for what, p in state.procs.items() if what.startswith("agent-")]
    return rows
