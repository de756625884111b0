"""A real `shoal manage` process over the lab, and the real docker CLI pointed at it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Manager:
    """A running manager: its URL, its process, and a way to drive the docker CLI at it."""

    url: str
    proc: subprocess.Popen
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DOCKER_HOST=self.url.replace("http://", "tcp://"))
        env.pop("DOCKER_API_VERSION", None)
        return env

    def docker(self, *args: str, input: str | None = None, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the stock docker CLI against the manager."""
        result = subprocess.run(["docker", *args], env=self.env, input=input, text=True,
                                capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed rc={result.returncode}\n"
                                 f"stdout={result.stdout}\nstderr={result.stderr}")
        return result

    def api(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict | list | str]:
        """A raw HTTP call to the manager: (status, decoded JSON or text)."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def info_rows(self) -> list[tuple[str, str]]:
        """The SystemStatus rows of `docker info`, in order."""
        _, info = self.api("GET", "/info")
        return [(k, v) for k, v in info["SystemStatus"]]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_manager(discovery: str, *flags: str, healthy: int, log_dir: Path,
                  timeout: float = 30) -> Manager:
    """Start `shoal manage` and wait until `healthy` engines show as Healthy in /info."""
    port = free_port()
    log_path = log_dir / f"manager-{port}.log"
    log_file = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "manager.cli", "manage", "-H", f"tcp://127.0.0.1:{port}",
         "--engine-refresh-min-interval", "5s", "--engine-refresh-max-interval", "10s",
         *flags, discovery], cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
    manager = Manager(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"manager exited rc={proc.returncode}:\n{manager.log()}")
        try:
            statuses = [v for k, v in manager.info_rows() if k.endswith("Status")]
            if statuses.count("Healthy") >= healthy:
                return manager
        except OSError:
            pass
        time.sleep(0.2)
    manager.stop()
    raise AssertionError(f"manager did not see {healthy} healthy engines:\n{manager.log()}")
