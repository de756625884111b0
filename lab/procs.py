"""Process, mount and cgroup helpers for the local lab.

Every process is remembered as (pid, start time); a PID is only ever signalled while its
start time still matches, so a recycled PID is never hit.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

CGROUP_ROOT = Path("/sys/fs/cgroup")
MNT_DETACH = 2


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


def progress(event: str, **fields: object) -> None:
    """One structured progress line on stderr: `lab: <event> k=v ...`."""
    pairs = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"lab: {event} {pairs}".rstrip(), file=sys.stderr, flush=True)


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a short command; raise LabError with its stderr when `check` and it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Proc:
    """A process this lab started: its PID, kernel start time and log file."""

    pid: int
    start: int
    log: str

    def alive(self) -> bool:
        """True while this very process (not a reused PID) exists and is not a zombie."""
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        stat = _stat(self.pid)
        return stat is not None and stat[0] not in "ZX" and int(stat[19]) == self.start

    def signal(self, sig: int) -> None:
        """Send `sig` if the process is still ours."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def proc_of(pid: int, log_path: str = "") -> Proc | None:
    """A Proc for a running PID (e.g. read from a pidfile), or None if it is gone."""
    stat = _stat(pid)
    return Proc(pid, int(stat[19]), log_path) if stat else None


def spawn(cmd: list[str], log_path: Path, cwd: Path | None = None) -> Proc:
    """Start a daemon in its own session, output to `log_path`; return its Proc."""
    try:
        with open(log_path, "ab") as out:
            child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     cwd=cwd, start_new_session=True)
    except OSError as err:
        raise LabError(f"cannot start {cmd[0]}: {err}") from err
    found = proc_of(child.pid, str(log_path))
    if found is None:
        raise LabError(f"{cmd[0]} exited at once: {tail(log_path)}")
    return found


def stop(procs: Iterable[Proc], timeout: float = 10.0) -> None:
    """SIGTERM all, wait up to `timeout` for them to exit, then SIGKILL the rest."""
    procs = [p for p in procs if p.alive()]
    for p in procs:
        p.signal(signal.SIGTERM)
    for p in _survivors(procs, timeout):
        progress("kill", pid=p.pid, reason="no exit after SIGTERM")
        p.signal(signal.SIGKILL)
    for p in _survivors(procs, 5.0):
        progress("warning", pid=p.pid, error="still alive after SIGKILL")


def _survivors(procs: list[Proc], timeout: float) -> list[Proc]:
    """Wait up to `timeout` for `procs` to exit; return those still alive."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if p.alive()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               proc: Proc | None = None) -> float:
    """Poll `check` until true; return seconds taken. Raise LabError (with the log tail of
    `proc`) on timeout or as soon as `proc` has exited."""
    began = time.monotonic()
    while not check():
        dead = proc is not None and not proc.alive()
        if dead or time.monotonic() - began > timeout:
            why = "exited" if dead else f"not ready after {timeout:.0f}s"
            log_tail = tail(Path(proc.log)) if proc else ""
            raise LabError(f"{what} {why}; log tail:\n{log_tail}")
        time.sleep(0.05)
    return time.monotonic() - began


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that are free right now."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One TCP port on 127.0.0.1 that is free right now."""
    return free_ports(1)[0]


def port_in_use(port: int) -> bool:
    """True if something already holds TCP `port` on 127.0.0.1."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def procs_using(paths: Iterable[Path], programs: tuple[str, ...]) -> list[Proc]:
    """Processes running one of `programs` (executable name prefixes) whose command line
    names one of `paths`: the dockerd, containerd and shims of a lab's exec-roots."""
    needles = [str(p).encode() for p in paths]
    found = []
    for entry in Path("/proc").iterdir():
        try:
            exe = os.readlink(entry / "exe") if entry.name.isdigit() else ""
            cmdline = (entry / "cmdline").read_bytes() if exe else b""
        except OSError:
            continue
        if Path(exe).name.startswith(programs) and any(n in cmdline for n in needles):
            p = proc_of(int(entry.name))
            found += [p] if p else []
    return found


def mounts_under(paths: Iterable[Path]) -> list[str]:
    """Mount points at or below any of `paths`, deepest first."""
    roots = [str(p).rstrip("/") for p in paths]
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if any(point == r or point.startswith(r + "/") for r in roots):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_under(paths: Iterable[Path]) -> None:
    """Unmount everything at or below `paths`, deepest first; lazily if busy."""
    libc = ctypes.CDLL(None, use_errno=True)
    for point in mounts_under(paths):
        if libc.umount2(point.encode(), 0) != 0 and libc.umount2(point.encode(), MNT_DETACH) != 0:
            progress("umount-failed", path=point, errno=ctypes.get_errno())


def cgroup_dirs(name: str) -> list[Path]:
    """Cgroup directories called `name` anywhere in the mounted hierarchies. A relative
    --cgroup-parent lands under dockerd's own cgroup, which differs per hierarchy."""
    found = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        found += [Path(top, name)] if name in dirs else []
        dirs[:] = [d for d in dirs if d != name]
    return found


def cgroup_procs(name: str) -> list[Proc]:
    """Processes still inside the cgroup `name` (any hierarchy, any depth)."""
    pids = {int(pid) for d in cgroup_dirs(name) for f in d.rglob("cgroup.procs")
            for pid in f.read_text().split()}
    return [p for p in map(proc_of, sorted(pids)) if p]


def remove_cgroup(name: str) -> None:
    """rmdir the (now empty) cgroup `name` and its children in every hierarchy."""
    for top in cgroup_dirs(name):
        for d in sorted([top, *[c for c in top.rglob("*") if c.is_dir()]],
                        key=lambda c: len(c.parts), reverse=True):
            try:
                d.rmdir()
            except OSError as err:
                progress("cgroup-left", path=d, error=err.strerror)
