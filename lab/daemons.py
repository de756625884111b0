"""The lab's daemons: one dockerd per host, the offline busybox image, the registry, and Shoal's
own manager and agents (spawned as `python -m shoal ...` processes; the lab imports none of them).

Talks to engines with http.client over TCP, or over TLS with the lab's client certificate (the lab is
synchronous and stdlib-only).
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import ssl
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from lab.procs import LabError, Proc, run, spawn

REPO = Path(__file__).resolve().parent.parent
ENGINE_PORT = 2375
TLS_ENGINE_PORT = 2376  # Docker's convention for TLS
REGISTRY_PORT = 5000
SHUTDOWN_TIMEOUT = 2  # seconds dockerd gives running containers when it stops
BUSYBOX = "/bin/busybox"  # Debian busybox-static: one static binary
ROOTFS_DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555, "root": 0o700,
               "sys": 0o555, "tmp": 0o1777, "var": 0o755}


@dataclass
class Host:
    """One lab host: its namespace, veth, dirs, cgroup parent, labels and dockerd."""

    name: str
    ip: str
    netns: str
    veth: str
    dir: str
    run_dir: str
    cgroup: str
    labels: dict[str, str] = field(default_factory=dict)
    dockerd: Proc | None = None
    port: int = ENGINE_PORT

    @property
    def engine(self) -> str:
        """The engine's TCP address, "ip:2375" ("ip:2376" with TLS)."""
        return f"{self.ip}:{self.port}"


def api(addr: str, method: str, path: str, body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30.0,
        tls: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """One HTTP request to `addr` ("host:port"), over TLS when given a context: (status, whole body)."""
    host, port = addr.rsplit(":", 1)
    conn = (http.client.HTTPSConnection(host, int(port), timeout=timeout, context=tls) if tls
            else http.client.HTTPConnection(host, int(port), timeout=timeout))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    except (OSError, http.client.HTTPException) as err:
        raise LabError(f"{method} {path} on {addr}: {err!r}") from err
    finally:
        conn.close()


def answers(addr: str, path: str = "/_ping", tls: ssl.SSLContext | None = None) -> bool:
    """True if GET `path` on `addr` returns 200 within a second."""
    try:
        return api(addr, "GET", path, timeout=1.0, tls=tls)[0] == 200
    except LabError:
        return False


def api_checked(addr: str, method: str, path: str, body: bytes | BinaryIO | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0,
                tls: ssl.SSLContext | None = None) -> bytes:
    """A request that must succeed: raise LabError on an HTTP error status or on an
    `{"error": ...}` message in a streamed JSON reply (import, build, push)."""
    status, data = api(addr, method, path, body, headers, timeout, tls)
    errors = [m["error"] for m in _json_lines(data) if isinstance(m, dict) and m.get("error")]
    if status >= 300 or errors:
        raise LabError(f"{method} {path} on {addr}: {status} {errors or data[:300]!r}")
    return data


def _json_lines(data: bytes) -> list[object]:
    """The JSON values of a newline-separated stream; lines that are not JSON are skipped."""
    values = []
    for line in data.splitlines():
        try:
            values.append(json.loads(line))
        except ValueError:
            continue
    return values


def start_dockerd(node: Host, insecure_registries: list[str], tls: tuple[str, str, str] | None = None,
                  config_extra: dict | None = None) -> Proc:
    """Spawn dockerd in the node's netns and a fresh UTS namespace named after the node; with `tls`
    (CA, certificate, key) its TCP socket is `--tlsverify` (clients need a certificate from that CA);
    `config_extra` goes into its config file too."""
    home, exec_root = Path(node.dir), Path(node.run_dir)
    home.mkdir(parents=True, exist_ok=True)
    exec_root.mkdir(parents=True, exist_ok=True)
    pidfile = exec_root / "dockerd.pid"
    if pidfile.exists() and not _pid_alive(pidfile):  # left by a dockerd that was SIGKILLed
        pidfile.unlink()
    config = home / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(home / "key.json"),
                                  "insecure-registries": insecure_registries,
                                  "shutdown-timeout": SHUTDOWN_TIMEOUT, **(config_extra or {})}))
    flags = ["--data-root", str(home / "data"), "--exec-root", str(exec_root),
             "--pidfile", str(pidfile), "--config-file", str(config),
             "--host", f"tcp://{node.engine}", "--host", f"unix://{exec_root}/docker.sock",
             "--cgroup-parent", node.cgroup]
    if tls:
        flags += ["--tlsverify", "--tlscacert", tls[0], "--tlscert", tls[1], "--tlskey", tls[2]]
    else:
        flags.append("--tls=false")
    flags += [f"--label={k}={v}" for k, v in node.labels.items()]
    cmd = ["nsenter", f"--net=/run/netns/{node.netns}", "unshare", "--uts",
           "sh", "-c", f'hostname {node.name} && exec "$0" "$@"', "dockerd", *flags]
    return spawn(cmd, home / "dockerd.log")


def _pid_alive(pidfile: Path) -> bool:
    """Does the process named in a pid file still exist?"""
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def busybox_tar() -> bytes:
    """A rootfs tar: /bin/busybox from busybox-static plus a symlink per applet."""
    applets = [a for a in run(BUSYBOX, "--list").stdout.split() if a != "busybox"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in ROOTFS_DIRS.items():
            tar.addfile(_entry(name, tarfile.DIRTYPE, mode))
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            tar.addfile(_entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777, "busybox"))
    return buf.getvalue()


def _entry(name: str, kind: bytes, mode: int, target: str = "") -> tarfile.TarInfo:
    """A tar header for a directory or symlink owned by root."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, target
    return info


def import_busybox(addr: str, rootfs: bytes, tls: ssl.SSLContext | None = None) -> None:
    """`docker import -c 'CMD ["sh"]' - busybox:latest` on one engine."""
    query = urlencode({"fromSrc": "-", "repo": "busybox", "tag": "latest", "changes": 'CMD ["sh"]'})
    api_checked(addr, "POST", f"/images/create?{query}", rootfs, {"Content-Type": "application/x-tar"}, tls=tls)


def remove_containers(addr: str, tls: ssl.SSLContext | None = None) -> int:
    """Force-remove every container (and its anonymous volumes) on one engine."""
    containers = json.loads(api_checked(addr, "GET", "/containers/json?all=1", tls=tls))
    for c in containers:
        api_checked(addr, "DELETE", f"/containers/{c['Id']}?force=1&v=1", tls=tls)
    return len(containers)


def seed_registry(addr: str, registry: str, tls: ssl.SSLContext | None = None) -> None:
    """Push busybox from engine `addr` to `registry`, then drop that tag from the engine."""
    repo = f"{registry}/busybox"
    api_checked(addr, "POST", f"/images/busybox:latest/tag?repo={quote(repo)}&tag=latest", tls=tls)
    push_image(addr, f"{repo}:latest", tls)
    api_checked(addr, "DELETE", f"/images/{repo}:latest", tls=tls)


def push_image(addr: str, ref: str, tls: ssl.SSLContext | None = None) -> None:
    """`docker push <ref>` from engine `addr` (a lab registry needs no credentials)."""
    repo, _, tag = ref.rpartition(":")
    auth = {"X-Registry-Auth": base64.urlsafe_b64encode(b"{}").decode()}
    api_checked(addr, "POST", f"/images/{repo}/push?tag={quote(tag)}", headers=auth, timeout=120.0, tls=tls)


def start_registry(home: Path, bridge_ip: str) -> tuple[Proc, str]:
    """Debian's docker-registry on the bridge address, storage under `home`."""
    home.mkdir(parents=True, exist_ok=True)
    addr = f"{bridge_ip}:{REGISTRY_PORT}"
    config = home / "config.yml"  # YAML is a superset of JSON
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"}, "http": {"addr": addr},
        "storage": {"filesystem": {"rootdirectory": str(home / "data")}, "delete": {"enabled": True}},
    }))
    return spawn(["/usr/bin/docker-registry", "serve", str(config)], home / "registry.log"), addr


def shoal_command(*args: str) -> list[str]:
    """`shoal ARGS...` run from this checkout with the current interpreter."""
    return [sys.executable, "-m", "shoal", *args]


def start_manager(listen: str, discovery: str, flags: list[str], log_path: Path) -> Proc:
    """`shoal manage -H tcp://<listen> FLAGS... <discovery>`, output to `log_path`."""
    return spawn(shoal_command("manage", "-H", f"tcp://{listen}", *flags, discovery), log_path, cwd=REPO)


def start_agent(engine: str, discovery: str, log_path: Path, heartbeat: str = "1s", ttl: str = "3s",
                flags: list[str] | None = None) -> Proc:
    """`shoal join` keeping `engine` registered in `discovery` (more FLAGS: TLS, discovery options),
    output to `log_path`."""
    return spawn(shoal_command("join", "--advertise", engine, "--heartbeat", heartbeat, "--ttl", ttl,
                               *(flags or []), discovery), log_path, cwd=REPO)
