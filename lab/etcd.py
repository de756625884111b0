"""etcd (Debian's etcd-server) on free 127.0.0.1 ports (and, for the lab, on its bridge address too,
so containers on the lab's nodes reach it), one member or a cluster of several: for the lab, the
tests and the benches."""
from __future__ import annotations

import contextlib
import shutil
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path

from lab.procs import LabError, Proc, free_ports, spawn, stop, tail
from lab.tls import TlsPaths

ETCD_BINARY = "/usr/bin/etcd"
READY_TIMEOUT = 15.0


class EtcdServer:
    """A single-member etcd with its own data dir; start/stop/restart by PID on the same ports and data."""

    def __init__(self, data_dir: str | Path | None = None, name: str = "shoal",
                 tls: TlsPaths | None = None, also_on: tuple[str, ...] = (), v2: bool = False) -> None:
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="shoal-etcd-"))
        self.name = name
        self.client_port, self.peer_port = free_ports(2)
        self.tls = tls
        self.also_on = also_on  # more addresses to serve clients on, same port
        self.v2 = v2  # also serve the v2 API (dockerd's cluster-store speaks only that)
        self.proc: Proc | None = None
        self.initial_cluster = ""  # set by EtcdCluster: every member's `name=peer URL`

    def __enter__(self) -> EtcdServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    @property
    def endpoint(self) -> str:
        """`host:port` of the client API."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def spawn(self) -> Proc:
        """Start etcd without waiting for it (see `wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        scheme = "http" if self.tls is None else "https"
        client_url = ",".join(f"{scheme}://{host}:{self.client_port}" for host in ("127.0.0.1", *self.also_on))
        peer_url = self.peer_url
        tls_flags = [] if self.tls is None else [
            "--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key,
            "--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        self.proc = spawn(
            [ETCD_BINARY, "--name", self.name, "--data-dir", str(self.data_dir / "data"),
             "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", self.initial_cluster or f"{self.name}={peer_url}", "--log-level", "warn",
             "--heartbeat-interval", "50", "--election-timeout", "500",   # quick restarts
             *(["--enable-v2=true"] if self.v2 else []), *tls_flags],
            self.data_dir / "etcd.log")
        return self.proc

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Wait until etcd answers /health; the seconds it took."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.proc is None or not self.proc.alive():
                raise LabError(f"etcd exited; log tail:\n{tail(self.data_dir / 'etcd.log')}")
            with contextlib.suppress(OSError):
                if b'"true"' in self._get("/health"):
                    return time.monotonic() - began
            time.sleep(0.05)
        raise LabError(f"etcd did not become healthy within {timeout:.0f} s")

    def start(self) -> None:
        """Start etcd and wait until it answers /health."""
        self.spawn()
        self.wait_ready()

    def stop(self) -> None:
        """SIGTERM our etcd (by PID) and wait for it."""
        if self.proc is not None:
            stop([self.proc])
        self.proc = None

    def remove(self) -> None:
        """Stop and delete the data dir."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _get(self, path: str) -> bytes:
        """GET on the client port (over TLS with the client certificate when TLS is on)."""
        if self.tls is None:
            url, context = f"http://{self.endpoint}{path}", None
        else:
            url, context = f"https://{self.endpoint}{path}", ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.cert, self.tls.key)
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.read()

    def metric(self, name: str) -> float:
        """The value of one Prometheus counter/gauge from etcd's /metrics."""
        for line in self._get("/metrics").decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


class EtcdCluster:
    """`size` members that form one etcd cluster (each its own process, data dir and ports)."""

    def __init__(self, size: int = 3, data_dir: str | Path | None = None, name: str = "shoal") -> None:
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="shoal-etcd-cluster-"))
        self.members = [EtcdServer(self.data_dir / f"m{k}", f"{name}{k}") for k in range(1, size + 1)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    @property
    def endpoints(self) -> str:
        """`h1:p1,h2:p2,h3:p3`, as a discovery URL takes them."""
        return ",".join(m.endpoint for m in self.members)

    def start(self) -> None:
        """Start every member at once (they need each other for a quorum), then wait for all."""
        for member in self.members:
            member.spawn()
        for member in self.members:
            member.wait_ready()

    def remove(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
