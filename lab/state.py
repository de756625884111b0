"""What a lab is: the spec `up` builds from, and the state it records as it goes (state.json)."""
from __future__ import annotations

import json
import re
import ssl
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.daemons import ENGINE_PORT, TLS_ENGINE_PORT, Host
from lab.net import addresses, check_subnet_free
from lab.overlay import MODES as OVERLAY_MODES
from lab.procs import LabError, Proc, port_in_use
from lab.tls import TlsPaths, client_context, tls_paths

DEFAULT_ROOT = Path("/var/lib/shoal/lab")
RUN_ROOT = Path("/run/shoal")
NAME_RE = re.compile(r"[a-z][a-z0-9]{0,9}")  # keeps `<name>-vNN` within 15 chars


@dataclass
class LabSpec:
    """What `up` builds; `labels` maps a node name to its engine labels."""

    name: str = "shoal"
    nodes: int = 3
    subnet: str = "10.213.0.0/24"
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    registry: bool = False
    etcd: bool = False
    overlay: str | None = None  # multi-host networking: "swarm" or "kv" (see lab.overlay)
    manager_port: int | None = None
    root: Path = DEFAULT_ROOT
    tls: bool = False


@dataclass
class LabState:
    """A lab as built so far (persisted as state.json); addresses are "host:port"."""

    name: str
    dir: str
    run_dir: str
    subnet: str
    bridge: str
    bridge_ip: str
    nodes: list[Host]
    registry: str | None = None
    etcd: str | None = None
    overlay: str | None = None
    manager: str | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    tls: str | None = None  # the certificates' directory (lab.tls) when the lab uses TLS

    @property
    def tls_paths(self) -> TlsPaths | None:
        return tls_paths(self.tls) if self.tls else None

    def client_tls(self) -> ssl.SSLContext | None:
        """A client context for the lab's engines and manager (None without TLS)."""
        paths = self.tls_paths
        return client_context(paths) if paths and Path(paths.cert).exists() else None

    @property
    def engines(self) -> list[str]:
        """Engine addresses, node1 first."""
        return [n.engine for n in self.nodes]

    @property
    def etcd_for_nodes(self) -> str | None:
        """etcd's address as the nodes (and their containers) reach it: on the bridge."""
        return self.etcd and f"{self.bridge_ip}:{self.etcd.rsplit(':', 1)[1]}"

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
    raw["nodes"] = [Host(**{**n, "dockerd": n["dockerd"] and Proc(**n["dockerd"])}) for n in raw["nodes"]]
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
    if spec.overlay not in (None, *OVERLAY_MODES):
        raise LabError(f"--overlay must be one of {', '.join(OVERLAY_MODES)}, not {spec.overlay!r}")
    if spec.manager_port and port_in_use(spec.manager_port):
        raise LabError(f"port {spec.manager_port} on 127.0.0.1 is already in use")
    bridge_ip, ips = addresses(spec.subnet, spec.nodes)
    check_subnet_free(spec.subnet)
    lab_dir, run_dir = spec.root.resolve() / spec.name, RUN_ROOT / spec.name
    nodes = [Host(name=f"node{k}", ip=ip, netns=f"{spec.name}-node{k}", veth=f"{spec.name}-v{k}",
                  dir=str(lab_dir / f"node{k}"), run_dir=str(run_dir / f"n{k}"),
                  cgroup=f"shoal-{spec.name}-node{k}", labels=spec.labels.get(f"node{k}", {}),
                  port=TLS_ENGINE_PORT if spec.tls else ENGINE_PORT)
             for k, ip in enumerate(ips, start=1)]
    return LabState(name=spec.name, dir=str(lab_dir), run_dir=str(run_dir), subnet=spec.subnet,
                    overlay=spec.overlay, bridge=f"{spec.name}-br", bridge_ip=bridge_ip, nodes=nodes,
                    tls=str(lab_dir / "tls") if spec.tls else None)
