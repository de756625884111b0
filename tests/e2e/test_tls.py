"""TLS everywhere on a side lab made by `shoal lab up --tls` (a throwaway CA; engines, etcd, agents
and manager with --tlsverify): the docker CLI (28 and 20.10), docker-compose and docker-py work
unchanged, hijacked streams included; no certificate, another CA's or plain HTTP is refused;
discovery runs over etcd TLS; a fleet that mixes TLS and plain engines is refused per node."""
from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest

from lab.daemons import REPO, start_agent, start_manager as spawn_manager
from lab.lifecycle import down
from lab.procs import free_port, stop
from lab.state import LabState, load
from lab.tls import docker_cert_path, kv_flags, make_tls, tls_flags
from tests.e2e.test_lab import side_lab
from tests.support.manager import Manager, client_env, start_manager, start_replicated

CLIS = ["docker", "/usr/bin/docker"]  # 28 and 20.10


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(lab state, `shoal lab up --tls` output) for a 2-node TLS lab with etcd, agents and a manager."""
    spec = side_lab("tl", 6, nodes=2)
    down(spec.name, spec.root)
    port = free_port()
    try:
        up = subprocess.run([sys.executable, "-m", "shoal", "lab", "up", "--name", spec.name, "--subnet", spec.subnet,
                             "--nodes", "2", "--tls", "--etcd", "--manager", str(port)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        state = load(spec.name, spec.root)
        manager = Manager(f"https://{state.manager}", state.procs["manager"], Path(state.dir) / "manager.log",
                          state.tls_paths)
        deadline = time.monotonic() + 30
        while manager.healthy_count() < 2:  # the agents register over etcd TLS, the manager follows
            assert time.monotonic() < deadline, manager.log()
            time.sleep(0.3)
        yield state, up.stdout
    finally:
        down(spec.name, spec.root)


@pytest.fixture(scope="module")
def tls_lab(made) -> LabState:
    return made[0]


@pytest.fixture(scope="module")
def env(tls_lab) -> dict[str, str]:
    return client_env(tls_lab.manager, tls_lab.tls_paths)


def run(cli: str, *args: str, env: dict[str, str], input: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run([cli, *args], env=env, input=input, text=True, capture_output=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{cli} {' '.join(args)}: {result.stderr}"
    return result


def test_lab_up_prints_the_exports_and_keeps_keys_private(made):
    state, out = made
    assert f"export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={state.tls}/docker\n" in out
    assert f"export DOCKER_HOST=tcp://{state.manager}\n" in out
    assert f"dashboard\thttps://{state.manager}/dashboard/\nmetrics\thttps://{state.manager}/metrics\n" in out
    assert [n.engine.rsplit(":", 1)[1] for n in state.nodes] == ["2376", "2376"]
    keys = list(Path(state.tls).glob("*.key")) + [Path(state.tls) / "docker" / "key.pem"]
    assert len(keys) == 6 and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    logs = [p.read_text(errors="replace") for p in Path(state.dir).rglob("*.log")]
    secrets = [Path(k).read_text().splitlines()[1] for k in keys]  # a line of each key's base64
    assert logs and not any(s in text for s in ["PRIVATE KEY", *secrets] for text in [out, *logs])


@pytest.mark.parametrize("cli", CLIS)
def test_the_docker_cli_works_unchanged_over_tls(cli, env, tls_lab, tmp_path):
    info = run(cli, "info", env=env).stdout
    assert " Nodes: 2" in info and info.count("└ Status: Healthy") == 2
    assert run(cli, "run", "--rm", "busybox", "echo", "hi", env=env).stdout == "hi\n"
    # stdin ends: the CLI half-closes under TLS and still reads the output
    assert run(cli, "run", "-i", "--rm", "busybox", "cat", env=env, input="piped\n").stdout == "piped\n"
    tty = subprocess.run(["script", "-qec", f"{cli} run -it --rm busybox sh -c 'tty; exit 5'", "/dev/null"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert tty.returncode == 5 and "/dev/pts/0" in tty.stdout
    box = run(cli, "run", "-d", "busybox", "sh", "-c", "echo started; sleep 300", env=env).stdout.strip()
    try:
        assert run(cli, "exec", "-i", box, "cat", env=env, input="to exec\n").stdout == "to exec\n"
        ex = subprocess.run(["script", "-qec", f"{cli} exec -it {box} sh -c 'tty; exit 4'", "/dev/null"],
                            env=env, capture_output=True, text=True, timeout=60)
        assert ex.returncode == 4 and "/dev/pts/" in ex.stdout
        (tmp_path / "sent").write_text("copied over tls\n")  # a streamed request body (PUT archive)
        run(cli, "cp", str(tmp_path / "sent"), f"{box}:/tmp/sent", env=env)
        assert run(cli, "exec", box, "cat", "/tmp/sent", env=env).stdout == "copied over tls\n"
        follow = subprocess.Popen([cli, "logs", "-f", box], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert follow.stdout.readline() == "started\n"
        finally:
            follow.kill()
            follow.wait()
        since = int(time.time())
        late = run(cli, "run", "-d", "busybox", "sh", "-c", "sleep 1; echo attached", env=env).stdout.strip()
        assert run(cli, "attach", late, env=env).stdout == "attached\n"
        events = run(cli, "events", "--since", str(since), "--until", str(int(time.time()) + 1),
                     "--filter", "event=die", "--format", "{{.Actor.ID}}", env=env).stdout.split()
        assert late in events
        (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo built > /x\n")
        buildkit = "1" if cli == "/usr/bin/docker" else "0"  # 20.10's BuildKit: its session is a hijack too
        manager_log = Path(tls_lab.dir) / "manager.log"
        before = manager_log.read_text().count("buildkit session session=")
        run(cli, "build", "-q", "-t", "overtls", str(tmp_path), env=dict(env, DOCKER_BUILDKIT=buildkit))
        assert manager_log.read_text().count("buildkit session session=") - before == int(buildkit)
        assert run(cli, "run", "--rm", "overtls", "cat", "/x", env=env).stdout == "built\n"
        run(cli, "rm", "-f", late, env=env)
    finally:
        run(cli, "rm", "-f", box, env=env)


def test_compose_and_docker_py_work_unchanged_over_tls(env, tmp_path, monkeypatch):
    (tmp_path / "docker-compose.yml").write_text(
        'version: "2"\nservices:\n  bird:\n    image: busybox\n    command: sleep 300\n')

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-p", "tlsflock", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180, check=True)

    compose("up", "-d", "--scale", "bird=2")
    assert compose("exec", "-T", "bird", "echo", "composed").stdout == "composed\n"
    assert compose("run", "--rm", "-T", "bird", "echo", "ran").stdout == "ran\n"  # docker-py's attach socket
    compose("down")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would prefer them to docker-py's CA
        monkeypatch.delenv(name, raising=False)
    client = docker.DockerClient(**docker.utils.kwargs_from_env(environment=env))
    try:
        assert client.containers.run("busybox", ["echo", "from-sdk"], remove=True) == b"from-sdk\n"
        box = client.containers.run("busybox", ["sleep", "300"], detach=True)
        assert box.exec_run(["echo", "sdk-exec"]).output == b"sdk-exec\n"
        box.remove(force=True)
        assert client.containers.list(all=True) == []
    finally:
        client.close()


@pytest.mark.parametrize("cli", CLIS)
def test_no_certificate_another_ca_or_plain_http_is_refused(cli, tls_lab, env, tmp_path):
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    (only_ca / "ca.pem").write_bytes(Path(tls_lab.tls_paths.ca).read_bytes())
    other = Path(docker_cert_path(os.path.dirname(make_tls(str(tmp_path / "other")).ca)))
    (other / "ca.pem").write_bytes(Path(tls_lab.tls_paths.ca).read_bytes())  # trusts the manager, is not trusted
    for cert_path, error in ((only_ca, "tls: certificate required"), (other, "tls: unknown certificate authority")):
        refused = run(cli, "version", env=dict(env, DOCKER_CERT_PATH=str(cert_path)), check=False)
        assert refused.returncode == 1 and error in refused.stderr
    plain = {k: v for k, v in env.items() if k not in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
    refused = run(cli, "version", env=plain, check=False)
    assert refused.returncode == 1 and "Client sent an HTTP request to an HTTPS server." in refused.stderr


def test_list_and_discovery_over_etcd_tls(tls_lab):
    url = f"etcd://{tls_lab.etcd}/shoal"
    listed = subprocess.run([sys.executable, "-m", "shoal", "list", *kv_flags(tls_lab.tls_paths), url],
                            cwd=REPO, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and listed.stdout.split() == sorted(tls_lab.engines)
    plain = subprocess.run([sys.executable, "-m", "shoal", "list", "--timeout", "2s", url],
                           cwd=REPO, capture_output=True, text=True, timeout=30)
    assert plain.returncode == 1 and plain.stdout == ""


def test_join_health_checks_a_tls_engine_with_the_tls_flags(tls_lab, tmp_path):
    """`shoal join` registers a TLS engine only when its TLS flags let the health check through."""
    engine, paths = tls_lab.engines[0], tls_lab.tls_paths
    agents = {prefix: start_agent(engine, f"etcd://{tls_lab.etcd}/{prefix}", tmp_path / f"{prefix}.log",
                                  flags=tls + kv_flags(paths))
              for prefix, tls in (("probetls", tls_flags(paths, client=True)), ("probeplain", []))}
    try:
        lists = {prefix: subprocess.Popen([sys.executable, "-m", "shoal", "list", "--timeout", "5s", *kv_flags(paths),
                                           f"etcd://{tls_lab.etcd}/{prefix}"], cwd=REPO, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True) for prefix in agents}
        listed = {prefix: ls.communicate(timeout=30)[0] for prefix, ls in lists.items()}
    finally:
        stop(list(agents.values()))
    logs = {prefix: (tmp_path / f"{prefix}.log").read_text() for prefix in agents}
    assert listed["probetls"].split() == [engine] and "engine answering" in logs["probetls"], logs
    assert listed["probeplain"] == "" and "engine not answering" in logs["probeplain"], logs


def test_a_mixed_fleet_is_refused_per_node(tls_lab, lab, tmp_path):
    tls_engine, plain_engine = tls_lab.engines[0], lab.engines[0]
    plain = start_manager(f"nodes://{tls_engine}", healthy=0, log_dir=tmp_path)
    secure = start_manager(f"nodes://{tls_engine},{plain_engine}", healthy=1, log_dir=tmp_path, tls=tls_lab.tls_paths)
    try:
        deadline = time.monotonic() + 20
        while True:
            errors = [v for m in (plain, secure) for k, v in m.info_rows() if k.endswith("Error")]
            if len(errors) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert errors[0] == (f"{tls_engine} serves TLS: start the manager with --tls or --tlsverify (a cluster's "
                             "engines all use TLS, with certificates from the manager's CA, or none does)")
        assert errors[1].startswith(f"Cannot connect to the Docker daemon at tcp://{plain_engine} (unknown): ")
        assert errors[1].endswith("(a cluster's engines all use TLS, with certificates from the manager's CA, "
                                  "or none does)")
        assert secure.healthy_count() == 1 and json.loads(json.dumps(secure.info_rows()))
    finally:
        plain.stop()
        secure.stop()


def test_engines_with_certificates_from_another_ca_are_refused(tls_lab, tmp_path):
    """--tlsverify checks the engines too: a manager whose CA did not sign their certificates (and
    whose own certificate they do not trust) keeps every one Pending with the reason."""
    strangers = make_tls(str(tmp_path / "strangers"))
    manager = start_manager("nodes://" + ",".join(tls_lab.engines), healthy=0, log_dir=tmp_path, tls=strangers)
    try:
        deadline = time.monotonic() + 20
        while len(errors := [v for k, v in manager.info_rows() if k.endswith("Error")]) < 2:
            assert time.monotonic() < deadline, manager.info_rows()
            time.sleep(0.3)
        assert all("CERTIFICATE_VERIFY_FAILED" in e for e in errors), errors
        assert manager.healthy_count() == 0
    finally:
        manager.stop()


def test_tls_without_verify_encrypts_only(tls_lab, tmp_path):
    """`--tls` alone: the manager checks no client certificate and no engine certificate (classic's
    InsecureSkipVerify), but still shows its own pair to the engines, which require one."""
    paths, listen = tls_lab.tls_paths, f"127.0.0.1:{free_port()}"
    proc = spawn_manager(listen, "nodes://" + ",".join(tls_lab.engines),
                         ["--tls", "--tlscert", paths.server_cert, "--tlskey", paths.server_key],
                         tmp_path / "tls-only.log")
    try:
        # a client pair from a CA nobody here trusts: neither side checks the other
        strangers = docker_cert_path(os.path.dirname(make_tls(str(tmp_path / "strangers")).ca))
        env = dict(client_env(listen, None), DOCKER_CERT_PATH=strangers)
        deadline = time.monotonic() + 20
        while "Status: Healthy" not in (info := run("docker", "--tls", "info", env=env, check=False)).stdout:
            assert time.monotonic() < deadline, info.stderr + (tmp_path / "tls-only.log").read_text()
            time.sleep(0.3)
        assert run("docker", "--tls", "run", "--rm", "busybox", "echo", "encrypted", env=env).stdout == "encrypted\n"
        plain = run("docker", "info", env=env, check=False)
        assert "Client sent an HTTP request to an HTTPS server." in plain.stderr
    finally:
        stop([proc])


def test_replicas_forward_to_the_primary_over_tls(tls_lab, tmp_path):
    """Two `--replication --tlsverify` managers: a replica reaches the primary with the manager's own
    TLS config (calls, streams and the hijack of `docker run -it`)."""
    discovery, flags = f"etcd://{tls_lab.etcd}/shoal", kv_flags(tls_lab.tls_paths)
    started = start_replicated(discovery, 2, 3, *flags, healthy=2, log_dir=tmp_path, tls=tls_lab.tls_paths)
    try:
        deadline = time.monotonic() + 15
        while sorted(dict(m.info_rows())["Role"] for m in started) != ["primary", "replica"]:
            assert time.monotonic() < deadline, "no primary"
            time.sleep(0.2)
        replica = next(m for m in started if dict(m.info_rows())["Role"] == "replica")
        env = client_env(replica.url.removeprefix("https://"), tls_lab.tls_paths)
        for cli in CLIS:
            tty = subprocess.run(["script", "-qec", f"{cli} run -it --rm busybox sh -c 'tty; exit 6'", "/dev/null"],
                                 env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert tty.returncode == 6 and "/dev/pts/" in tty.stdout
            assert run(cli, "run", "--rm", "busybox", "echo", "through the primary", env=env).stdout == \
                "through the primary\n"
        assert "Cannot connect" not in run("docker", "ps", "-a", env=env).stderr
    finally:
        for mgr in started:
            mgr.stop()


def test_dashboard_and_metrics_need_a_client_certificate_too(tls_lab):
    """They are routes of the one table, so --tlsverify guards them like the Docker API."""
    paths = tls_lab.tls_paths
    with_cert = ssl.create_default_context(cafile=paths.ca)
    with_cert.load_cert_chain(paths.cert, paths.key)
    for path, expected in (("/dashboard/", b"<!doctype html>"), ("/metrics", b"shoal_engines{")):
        with urllib.request.urlopen(f"https://{tls_lab.manager}{path}", context=with_cert, timeout=10) as reply:
            assert expected in reply.read()
        with pytest.raises(OSError, match="CERTIFICATE_REQUIRED|certificate required|EOF|reset"):
            urllib.request.urlopen(f"https://{tls_lab.manager}{path}",
                                   context=ssl.create_default_context(cafile=paths.ca), timeout=10).read()


def test_metrics_addr_serves_metrics_alone_in_plain_http(tls_lab, tmp_path):
    """`--metrics-addr`: a local Prometheus scrapes without a client certificate; nothing else is there."""
    plain = f"127.0.0.1:{free_port()}"
    mgr = start_manager("nodes://" + ",".join(tls_lab.engines), "--metrics-addr", plain, healthy=len(tls_lab.engines),
                        log_dir=tmp_path, tls=tls_lab.tls_paths)
    try:
        with urllib.request.urlopen(f"http://{plain}/metrics", timeout=10) as reply:
            assert f'shoal_engines{{state="Healthy"}} {len(tls_lab.engines)}.0' in reply.read().decode()
        for path in ("/info", "/dashboard/", "/v1.41/containers/json"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://{plain}{path}", timeout=10)
            assert refused.value.code == 404
        assert mgr.metrics("shoal_engines", state="Healthy") == len(tls_lab.engines)  # the API's own, over TLS
    finally:
        mgr.stop()
