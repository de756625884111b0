"""A real `shoal manage` process (the lab's launcher), and the real docker CLI pointed at it (over TLS
with the lab's certificates when given them)."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lab.daemons import start_manager as spawn_manager
from lab.procs import LabError, Proc, free_port, free_ports, stop, tail, wait_until
from lab.tls import TlsPaths, client_context, docker_cert_path, tls_flags

FAST_REFRESH = ["--engine-refresh-min-interval", "5s", "--engine-refresh-max-interval", "10s"]


@dataclass
class Manager:
    """A running manager: its URL, its process, and a way to drive the docker CLI at it."""

    url: str
    proc: Proc
    log_path: Path
    tls: TlsPaths | None = None

    @property
    def env(self) -> dict[str, str]:
        """For the docker CLI, docker-compose and docker-py (`docker.from_env()`)."""
        return client_env(self.url.split("://", 1)[1], self.tls)

    def docker(self, *args: str, input: str | None = None, check: bool = True,
               timeout: float = 60, binary: str = "docker") -> subprocess.CompletedProcess:
        """Run the stock docker CLI (or another `binary`, e.g. /usr/bin/docker 20.10) against the manager."""
        result = subprocess.run([binary, *args], env=self.env, input=input, text=True,
                                capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{binary} {' '.join(args)} failed rc={result.returncode}\n"
                                 f"stdout={result.stdout}\nstderr={result.stderr}")
        return result

    def api(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict | list | str]:
        """A raw HTTP call to the manager: (status, decoded JSON or text)."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        context = client_context(self.tls) if self.tls else None
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def remove_all_containers(self) -> None:
        """Force-remove every container in the cluster."""
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)

    def metrics(self, name: str, **labels: str) -> float:
        """One sample of `/metrics` (parsed by prometheus-client), 0 when it is absent."""
        status, text = self.api("GET", "/metrics")
        assert status == 200, text
        wanted = sorted(labels.items())
        return next((s.value for family in text_string_to_metric_families(text) for s in family.samples
                     if s.name == name and sorted(s.labels.items()) == wanted), 0.0)

    def info_rows(self) -> list[tuple[str, str]]:
        """The SystemStatus rows of `docker info`, in order."""
        _, info = self.api("GET", "/info")
        return [(k, v) for k, v in info["SystemStatus"]]

    def healthy_count(self) -> int:
        """How many engines `docker info` shows as Healthy."""
        return [v for k, v in self.info_rows() if k.endswith("Status")].count("Healthy")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop([self.proc])


def client_env(addr: str, tls: TlsPaths | None) -> dict[str, str]:
    """The environment the docker tools need to reach `addr` (with the lab's client pair when TLS).

    Without TLS variables in it that the docker tools would use instead of DOCKER_CERT_PATH (the
    requests library lets REQUESTS_CA_BUNDLE win over docker-py's CA)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCKER_API_VERSION", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "REQUESTS_CA_BUNDLE",
                        "CURL_CA_BUNDLE")}
    env["DOCKER_HOST"] = f"tcp://{addr}"
    if tls:
        env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=docker_cert_path(os.path.dirname(tls.ca)))
    return env


def start_manager(discovery: str, *flags: str, healthy: int, log_dir: Path,
                  timeout: float = 30, tls: TlsPaths | None = None, listen: str | None = None) -> Manager:
    """Start `shoal manage` (quick engine refreshes, on `listen` or a free port; `--tlsverify` with
    the lab's server pair when `tls`) and wait until `healthy` engines are Healthy."""
    listen = listen or f"127.0.0.1:{free_port()}"
    log_path = log_dir / f"manager-{listen.rsplit(':', 1)[1]}.log"
    state = ["--data-dir", str(log_dir / "state")]  # the module's own state file (nodes://, file://)
    all_flags = [*FAST_REFRESH, *state, *(tls_flags(tls, client=False) if tls else []), *flags]
    manager = Manager(f"{'https' if tls else 'http'}://{listen}", spawn_manager(listen, discovery, all_flags, log_path),
                      log_path, tls)

    def ready() -> bool:
        try:
            return manager.healthy_count() >= healthy
        except OSError:
            return False

    try:
        wait_until(ready, timeout, f"manager with {healthy} healthy engines", manager.proc)
    except LabError as err:
        manager.stop()
        raise AssertionError(f"{err}\n{tail(log_path, 60)}") from None
    return manager


class Restartable:
    """A manager a test stops and starts again: same discovery, flags and state file (`.mgr` is the
    running one)."""

    def __init__(self, discovery: str, *flags: str, healthy: int, log_dir: Path) -> None:
        self.discovery, self.flags, self.log_dir = discovery, flags, log_dir
        self.mgr = self.start(healthy)

    def start(self, healthy: int) -> Manager:
        self.mgr = start_manager(self.discovery, *self.flags, healthy=healthy, log_dir=self.log_dir)
        return self.mgr

    def restart(self, healthy: int = 3) -> Manager:
        self.mgr.stop()
        return self.start(healthy)


def start_replicated(discovery: str, count: int, ttl: float, *flags: str, healthy: int, log_dir: Path,
                     tls: TlsPaths | None = None) -> list[Manager]:
    """`count` managers with `--replication` (each advertising its own listen address) on `discovery`;
    on failure the ones already started are stopped."""
    started: list[Manager] = []
    try:
        for port in free_ports(count):
            addr = f"127.0.0.1:{port}"
            started.append(start_manager(discovery, *flags, "--replication", "--advertise", addr,
                                         "--replication-ttl", f"{ttl:g}s", healthy=healthy, log_dir=log_dir,
                                         tls=tls, listen=addr))
    except BaseException:
        for mgr in started:
            mgr.stop()
        raise
    return started
