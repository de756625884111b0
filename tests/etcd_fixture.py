"""A real etcd (Debian's etcd-server) on free 127.0.0.1 ports, and a membership watcher, for tests and benches."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from discovery import Discovery

ETCD_BINARY = "/usr/bin/etcd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TlsPaths:
    """PEM files: a CA, etcd's server pair and a client pair, all signed by the CA."""

    ca: str
    server_cert: str
    server_key: str
    cert: str
    key: str


def make_tls(directory: str) -> TlsPaths:
    """A fresh CA and certificates for 127.0.0.1 (server) and a client, made with openssl."""
    def path(name: str) -> str:
        return os.path.join(directory, name)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=shoal-test-ca",
        "-keyout", path("ca.key"), "-out", path("ca.pem"))
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=shoal-test-{name}",
            "-keyout", path(f"{name}.key"), "-out", path(f"{name}.csr"))
        with open(path(f"{name}.ext"), "w") as ext:
            ext.write(extension + "\n")
        run("x509", "-req", "-in", path(f"{name}.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "1", "-extfile", path(f"{name}.ext"), "-out", path(f"{name}.pem"))
    return TlsPaths(path("ca.pem"), path("server.pem"), path("server.key"), path("client.pem"), path("client.key"))


class EtcdServer:
    """One etcd member with its own data dir; start/stop/restart by PID, same ports and data."""

    def __init__(self, tls: TlsPaths | None = None) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="shoal-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EtcdServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    @property
    def endpoint(self) -> str:
        """`host:port` of the client API."""
        return f"127.0.0.1:{self.client_port}"

    def _get(self, path: str) -> bytes:
        """GET on the client port (over TLS with the client certificate when TLS is on)."""
        if self.tls is None:
            url, context = f"http://{self.endpoint}{path}", None
        else:
            url, context = f"https://{self.endpoint}{path}", ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.cert, self.tls.key)
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.read()

    def start(self) -> None:
        """Start etcd and wait until it answers /health."""
        client_url = f"{'http' if self.tls is None else 'https'}://{self.endpoint}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        tls_flags = [] if self.tls is None else [
            "--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key,
            "--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        with open(os.path.join(self.data_dir, "etcd.log"), "ab") as log:
            self.process = subprocess.Popen(
                [ETCD_BINARY, "--name", "shoal-test", "--data-dir", self.data_dir,
                 "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"shoal-test={peer_url}", "--log-level", "error",
                 "--heartbeat-interval", "50", "--election-timeout", "500", *tls_flags],   # quick restarts
                stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}, see {self.data_dir}/etcd.log")
            with contextlib.suppress(OSError):
                if b'"true"' in self._get("/health"):
                    return
            time.sleep(0.05)
        raise RuntimeError("etcd did not become healthy within 15 s")

    def stop(self) -> None:
        """SIGTERM our etcd (by PID) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def metric(self, name: str) -> float:
        """The value of one Prometheus counter/gauge from etcd's /metrics."""
        for line in self._get("/metrics").decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def remove(self) -> None:
        """Stop and delete the data dir."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    """A running etcd for the tests of one module."""
    with EtcdServer() as server:
        yield server


class MembershipWatcher:
    """Runs `discovery.watch()` in the background and remembers every set it yielded, and when."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery
        self.history: list[tuple[float, frozenset[str]]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MembershipWatcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            async for addrs in self._discovery.watch():
                self.history.append((time.monotonic(), addrs))
                self._changed.set()
        finally:
            self._changed.set()

    @property
    def current(self) -> frozenset[str] | None:
        """The last set yielded, None before the first."""
        return self.history[-1][1] if self.history else None

    async def until(self, predicate: Callable[[frozenset[str]], bool], timeout: float) -> float:
        """Seconds until the watched set satisfies `predicate`; fails the test after `timeout`."""
        assert self._task is not None
        start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while self.current is None or not predicate(self.current):
                    self._changed.clear()
                    if self._task.done():
                        self._task.result()
                        raise AssertionError("watch() ended")
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"watched membership is still {self.current} after {timeout} s") from None
        return time.monotonic() - start
