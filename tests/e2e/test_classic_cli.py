"""The command line as classic Swarm's: flag errors before any connection, and file:// discovery whose
file appears after the manager (and `shoal list`) started."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lab.archives import image_archive
from lab.daemons import REPO, shoal_command
from lab.procs import wait_until
from tests.e2e.test_membership import engine_stopped
from tests.support.manager import start_manager


@contextlib.contextmanager
def listener():
    """A loopback port that counts as "dialled" as soon as anything connects to it."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def was_dialled(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
        return True
    except BlockingIOError:
        return False


@pytest.mark.parametrize("global_flags, argv, message", [  # with the global flags classic scripts pass
    (["--debug"], ["manage", "--cluster-opt", "swarm.createretry=-1"],
     "swarm.createretry can not be negative, -1 is invalid"),
    (["-l", "debug"], ["manage", "--engine-refresh-min-interval", "-10s"],
     "min refresh interval should be a positive number"),
    (["--log-level=warn", "--experimental"], ["manage", "--engine-refresh-max-interval", "-30s"],
     "max refresh interval cannot be less than min refresh interval"),
    (["-experimental", "-l", "error"], ["manage", "--engine-failure-retry", "-1"], "invalid failure retry count"),
    (["--debug"], ["manage", "--heartbeat", "-1s"], "--heartbeat should be at least one second"),
    (["-l", "debug"], ["list", "--timeout", "-1s"], "--timeout should be a positive number"),
    (["--log-level=warn", "--experimental"], ["join", "--advertise", "127.0.0.1:2375", "--heartbeat", "-10s"],
     "--heartbeat should be at least one second"),
    (["-experimental", "-l", "error"], ["join", "--advertise", "127.0.0.1:2375", "-delay", "-30s"],
     "--delay should not be a negative number"),
    (["--debug"], ["manage", "-c", "mesos-experimental"], 'unsupported cluster "mesos-experimental"'),
])
def test_bad_values_are_refused_with_classic_texts_before_any_connection(global_flags, argv, message):
    with listener() as etcd:
        discovery = f"etcd://127.0.0.1:{etcd.getsockname()[1]}/cluster"
        began = time.monotonic()
        done = subprocess.run(shoal_command(*global_flags, *argv, discovery), cwd=REPO, capture_output=True,
                              text=True, timeout=30)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == f"shoal {argv[0]}: {message}\n"
        assert time.monotonic() - began < 5
        assert not was_dialled(etcd)


def test_file_discovery_created_after_the_manager_and_list(lab, tmp_path: Path):
    cluster = tmp_path / "cluster"
    mgr = start_manager(f"file://{cluster}", "--heartbeat", "1s", healthy=0, log_dir=tmp_path)
    warning = f"discovery: cannot read file={cluster} error=No such file or directory"
    lister_err = tmp_path / "list.err"
    with lister_err.open("w") as err:
        lister = subprocess.Popen(shoal_command("list", "--timeout", "20s", f"file://{cluster}"), cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        wait_until(lambda: warning in mgr.log(), 10, "the manager's warning")
        wait_until(lambda: warning in lister_err.read_text(), 10, "the warning of shoal list")
        assert mgr.healthy_count() == 0 and lister.poll() is None
        cluster.write_text("\n".join(lab.engines) + "\n")
        began = time.monotonic()
        wait_until(lambda: mgr.healthy_count() == 3, 10, "3 healthy engines", mgr.proc)
        assert time.monotonic() - began < 4
        out, _ = lister.communicate(timeout=10)
        assert lister.returncode == 0 and sorted(out.split()) == sorted(lab.engines)
        assert mgr.docker("run", "--rm", "busybox", "echo", "found").stdout == "found\n"
    finally:
        lister.kill()
        lister.wait()
        mgr.stop()


def test_createretry_tries_the_next_best_node(lab, tmp_path: Path):
    """swarm.createretry=1: a create the chosen node fails (its engine just died, not yet Unhealthy)
    is made on the next best node; without it the user gets the engine's error. (And a load while
    that node is down lands on the others and says which node failed.)"""
    discovery = "nodes://" + ",".join(lab.engines)
    keep_healthy = ("--engine-failure-retry", "100")
    retrying = start_manager(discovery, *keep_healthy, "--cluster-opt", "swarm.createretry=1", healthy=3,
                             log_dir=tmp_path)
    plain = start_manager(discovery, *keep_healthy, healthy=3, log_dir=tmp_path)
    wish = ("-e", "constraint:node==~node1")  # a soft constraint: node1 first, any other node next
    try:
        with engine_stopped(lab, "node1"):
            cid = retrying.docker("run", "-d", *wish, "busybox", "sleep", "300").stdout.strip()
            assert node_name(retrying, cid) in ("node2", "node3")
            assert "create failed, trying the next best node node=node1" in retrying.log()
            failed = plain.docker("run", "-d", *wish, "busybox", "sleep", "300", check=False)
            assert failed.returncode == 125 and "Cannot connect to the Docker daemon" in failed.stderr
            assert retrying.healthy_count() == 3  # still counted Healthy: the retry did the work
            retrying.docker("rm", "-f", cid)
            # the same dead-but-Healthy node during a load: the others load it, the stream ends with node1's error
            archive = tmp_path / "image.tar"
            archive.write_bytes(b"".join(image_archive("partial:1")))
            loaded = retrying.docker("load", "-i", str(archive), check=False)
            assert loaded.returncode == 1
            assert "node2: Loaded image: partial:1" in loaded.stdout and "node3: Loaded image: partial:1" in loaded.stdout
            assert "node1: Cannot connect to the Docker daemon" in loaded.stderr
            retrying.docker("rmi", "partial:1")
    finally:
        retrying.stop()
        plain.stop()


def node_name(mgr, ref: str) -> str:
    return mgr.docker("inspect", "--format", "{{.Node.Name}}", ref).stdout.strip()
