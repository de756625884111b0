"""A real `shoal manage` process (the lab's launcher), and the real docker CLI pointed at it."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.daemons import start_manager as spawn_manager
from lab.procs import LabError, Proc, free_port, stop, tail, wait_until

FAST_REFRESH = ["--engine-refresh-min-interval", "5s", "--engine-refresh-max-interval", "10s"]


@dataclass
class Manager:
    """A running manager: its URL, its process, and a way to drive the docker CLI at it."""

    url: str
    proc: Proc
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DOCKER_HOST=self.url.replace("http://", "tcp://"))
        env.pop("DOCKER_API_VERSION", None)
        return env

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

    def healthy_count(self) -> int:
        """How many engines `docker info` shows as Healthy."""
        return [v for k, v in self.info_rows() if k.endswith("Status")].count("Healthy")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop([self.proc])


def start_manager(discovery: str, *flags: str, healthy: int, log_dir: Path,
                  timeout: float = 30) -> Manager:
    """Start `shoal manage` (quick engine refreshes) and wait until `healthy` engines are Healthy."""
    listen = f"127.0.0.1:{free_port()}"
    log_path = log_dir / f"manager-{listen.rsplit(':', 1)[1]}.log"
    manager = Manager(f"http://{listen}", spawn_manager(listen, discovery, [*FAST_REFRESH, *flags], log_path),
                      log_path)

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
