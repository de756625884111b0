"""Classic Swarm's routes beyond run/ps (commit, import/load/save, login/search, system df, the legacy
routes and the 501s), image filters, create checks and the version strings, with the docker CLI 28
and 20.10 against `shoal manage` on the session lab."""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from lab.archives import image_archive
from lab.procs import wait_until
from shoal.version import VERSION
from tests.support.manager import Manager

CLIS = ("docker", "/usr/bin/docker")  # 28 and 20.10


@pytest.fixture(autouse=True)
def clean(mgr):
    """Every test ends with no container left."""
    yield
    mgr.remove_all_containers()


def holders(mgr: Manager, lab, ref: str) -> list[str]:
    """The nodes whose own engine has `ref`."""
    return [name for name, engine in zip(lab.names, lab.engines)
            if mgr.docker("-H", f"tcp://{engine}", "images", "-q", ref).stdout.strip()]


def node_of(mgr: Manager, ref: str) -> str:
    return mgr.docker("inspect", "--format", "{{.Node.Name}}", ref).stdout.strip()


@pytest.mark.parametrize("cli", CLIS)
def test_commit_by_every_reference_then_run_the_image_on_its_node(mgr, lab, cli):
    cid = mgr.docker("run", "-d", "--name", "src", "-e", "constraint:node==node2", "busybox", "sh", "-c",
                     "echo kept > /f; sleep 300").stdout.strip()
    swarm_id = json.loads(mgr.docker("inspect", "--format", "{{json .Config.Labels}}", cid).stdout)[
        "com.docker.swarm.id"]
    refs = ("src", "node2/src", cid, cid[:12], swarm_id) if cli == "docker" else ("src",)
    tags = []
    for n, ref in enumerate(refs):
        tags.append(f"committed{n}:1")
        mgr.docker("commit", "-c", 'CMD ["cat", "/f"]', ref, tags[-1], binary=cli)
    try:
        for tag in tags:
            assert holders(mgr, lab, tag) == ["node2"]
        out = mgr.docker("run", "--rm", tags[-1], binary=cli)  # only node2 has it: it runs there
        assert out.stdout == "kept\n"
        missing = mgr.docker("commit", "nosuch", "x:1", check=False, binary=cli)
        assert missing.returncode == 1 and "No such container: nosuch" in missing.stderr
    finally:
        mgr.docker("rmi", *tags)


def rootfs_tar(path: Path) -> Path:
    """A root filesystem to import: a greeting and 4 MiB of random bytes (more than one read of it)."""
    with tarfile.open(path, "w") as tar:
        for name, data in (("hello.txt", b"imported through shoal\n"), ("random.bin", os.urandom(4 * 1024 * 1024))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("cli", CLIS)
def test_import_load_and_save_of_one_and_several_images(mgr, lab, cli, tmp_path):
    out = mgr.docker("import", str(rootfs_tar(tmp_path / "root.tar")), "imported:1", binary=cli).stdout
    assert sorted(line.split(":")[0] for line in out.splitlines()) == lab.names  # `node1: sha256:...`
    assert holders(mgr, lab, "imported:1") == lab.names
    mgr.docker("tag", "busybox", "saved:a")
    mgr.docker("tag", "busybox", "saved:b")
    one, both = tmp_path / "one.tar", tmp_path / "both.tar"
    mgr.docker("save", "-o", str(one), "imported:1", binary=cli)
    mgr.docker("save", "-o", str(both), "saved:a", "saved:b", binary=cli)
    with tarfile.open(both) as tar:
        tags = {t for entry in json.load(tar.extractfile("manifest.json")) for t in entry["RepoTags"]}
    assert tags == {"saved:a", "saved:b"}
    mgr.docker("rmi", "imported:1", "saved:a", "saved:b")
    assert holders(mgr, lab, "imported:1") == [] and holders(mgr, lab, "saved:a") == []
    loaded = mgr.docker("load", "-i", str(both), binary=cli).stdout
    for name in lab.names:
        assert f"{name}: Loaded image: saved:a" in loaded and f"{name}: Loaded image: saved:b" in loaded
    mgr.docker("load", "-i", str(one), binary=cli)
    assert holders(mgr, lab, "saved:b") == lab.names and holders(mgr, lab, "imported:1") == lab.names
    listed = mgr.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert listed.count("imported:1") == 1 and listed.count("saved:a") == 1  # grouped by ID
    for route in ("/images/create", "/images/load"):  # a finished upload counts as answered, not `aborted`
        assert mgr.metrics("shoal_api_request_seconds_count", method="POST", route=route, status="aborted") == 0
    mgr.docker("-H", f"tcp://{lab.engines[0]}", "tag", "busybox", "onlyone:1")
    mgr.docker("-H", f"tcp://{lab.engines[1]}", "tag", "busybox", "onlytwo:1")
    time.sleep(0.5)  # the image events reach the manager's cache
    nowhere = mgr.docker("save", "-o", str(tmp_path / "x.tar"), "onlyone:1", "onlytwo:1", check=False,
                         binary=cli)
    mgr.docker("rmi", "imported:1", "saved:a", "saved:b", "onlyone:1", "onlytwo:1")
    assert nowhere.returncode == 1
    assert "Unable to find a healthy engine containing all images: [onlyone:1 onlytwo:1]" in nowhere.stderr


@pytest.mark.parametrize("cli", CLIS)
def test_push_of_a_tag_only_one_node_has(mgr, lab, cli):
    ref = f"{lab.registry}/pushed-{'28' if cli == 'docker' else '20'}:v7"
    mgr.docker("-H", f"tcp://{lab.engines[1]}", "tag", "busybox", ref)
    time.sleep(0.5)  # the image event reaches the manager's cache
    try:
        assert "v7: digest: sha256:" in mgr.docker("push", ref, binary=cli, timeout=60).stdout
        mgr.docker("-H", f"tcp://{lab.engines[2]}", "pull", ref, timeout=60)  # in the registry now
    finally:
        for engine in lab.engines[1:]:
            mgr.docker("-H", f"tcp://{engine}", "rmi", ref)


def test_a_load_every_node_refuses_gets_the_engines_error(mgr, lab, tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar" * 1000)
    direct = mgr.docker("-H", f"tcp://{lab.engines[0]}", "load", "-i", str(garbage), check=False)
    through = mgr.docker("load", "-i", str(garbage), check=False)
    assert direct.returncode == through.returncode == 1
    assert "invalid tar header" in direct.stderr
    assert through.stderr.removeprefix("Error response from daemon: ") == direct.stderr


@pytest.mark.parametrize("cli", CLIS)
def test_login_and_search_answer_like_an_engine_fast(mgr, lab, cli, tmp_path):
    config = ("--config", str(tmp_path / "cfg"))  # never the machine's own ~/.docker
    ok = mgr.docker(*config, "login", "-u", "me", "--password-stdin", lab.registry, input="pw\n", binary=cli)
    assert "Login Succeeded" in ok.stdout
    unreachable = f"{lab.bridge_ip}:5999"  # the lab's own bridge address, a port nothing listens on
    for args in (("login", "-u", "me", "--password-stdin", unreachable), ("search", "busybox")):
        began = time.monotonic()
        failed = mgr.docker(*config, *args, input="pw\n", check=False, binary=cli)
        assert failed.returncode == 1 and time.monotonic() - began < 10
        assert "Error response from daemon: " in failed.stderr
        assert "connection refused" in failed.stderr or "network is unreachable" in failed.stderr
    assert "Nodes: 3" in mgr.docker("info").stdout  # the manager answers all along


def test_system_df_names_node_local_objects(mgr, lab):
    mgr.docker("run", "-d", "--name", "dfc", "-e", "constraint:node==node3", "busybox", "sleep", "300")
    mgr.docker("volume", "create", "node1/dfvol")
    try:
        for cli in CLIS:
            verbose = mgr.docker("system", "df", "-v", binary=cli).stdout
            assert "node3/dfc" in verbose and "node1/dfvol" in verbose, cli
            assert all(f"{name}/busybox" in verbose for name in lab.names), cli
        _, usage = mgr.api("GET", "/v1.41/system/df")
        direct = [json.load(urllib.request.urlopen(f"http://{e}/v1.41/system/df", timeout=10))
                  for e in lab.engines]
        assert usage["LayersSize"] == sum(d["LayersSize"] for d in direct)
        assert len(usage["Images"]) == sum(len(d["Images"]) for d in direct)
    finally:
        mgr.docker("volume", "rm", "node1/dfvol")


def test_legacy_routes(mgr, lab):
    cid = mgr.docker("run", "-d", "-i", "--name", "legacy", "busybox", "cat").stdout.strip()
    assert mgr.api("GET", "/v1.41/containers/ps")[1] == mgr.api("GET", "/v1.41/containers/json")[1]
    request = urllib.request.Request(f"{mgr.url}/v1.23/containers/legacy/copy", method="POST",
                                     data=b'{"Resource": "/bin/busybox"}',
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        with tarfile.open(fileobj=io.BytesIO(resp.read())) as tar:
            assert tar.getnames() == ["busybox"]

    async def websocket_echo() -> bytes:
        url = f"{mgr.url.replace('http', 'ws')}/v1.41/containers/{cid[:12]}/attach/ws?stream=1&stdin=1&stdout=1"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_bytes(b"over a websocket\n")
            return (await asyncio.wait_for(ws.receive(), 10)).data

    assert asyncio.run(websocket_echo()) == b"over a websocket\n"
    _, found = mgr.api("GET", f"/v1.41/distribution/{lab.registry}/busybox/json")
    assert found["Descriptor"]["mediaType"].startswith("application/vnd.docker.distribution.manifest")
    assert "Total reclaimed space" in mgr.docker("builder", "prune", "-f").stdout


@pytest.mark.parametrize("cli", CLIS)
def test_what_shoal_does_not_serve_says_why(mgr, cli):
    plugins = mgr.docker("plugin", "ls", check=False, binary=cli)
    assert plugins.returncode == 1 and "plugins are installed and managed on each node's engine" in plugins.stderr
    services = mgr.docker("service", "ls", check=False, binary=cli)
    assert services.returncode == 1 and "Shoal does not serve GET /services: swarm-mode objects" in services.stderr
    status, body = mgr.api("GET", "/v1.41/services")
    assert status == 501 and "swarm-mode objects" in body["message"]
    unknown = mgr.docker("inspect", "nosuchobject", check=False, binary=cli)  # tries a plugin last
    assert unknown.returncode == 1 and "No such object: nosuchobject" in unknown.stderr, unknown.stderr


@pytest.fixture(scope="module")
def dated(mgr):
    """Three images loaded on every node, created in 2021, 2022 and 2023 (same ID everywhere), labelled
    `dated` and `year=YYYY`."""
    tags = [f"dated{year}:1" for year in (2021, 2022, 2023)]
    for tag in tags:
        year = tag[5:9]
        archive = image_archive(tag, created=f"{year}-06-01T00:00:00Z", labels={"dated": "", "year": year})
        request = urllib.request.Request(f"{mgr.url}/v1.41/images/load", method="POST", data=b"".join(archive),
                                         headers={"Content-Type": "application/x-tar"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert tag in resp.read().decode()
    yield tags
    mgr.docker("rmi", *tags)


@pytest.mark.parametrize("cli", CLIS)
def test_images_filters_before_since_reference_dangling_node(mgr, lab, dated, cli):
    def listed(*flags: str) -> list[str]:
        return mgr.docker("images", *flags, "--format", "{{.Repository}}:{{.Tag}}", binary=cli).stdout.split()

    assert listed("--filter", "before=dated2022:1") == ["dated2021:1"]
    newer = listed("--filter", "since=dated2022:1")
    assert "dated2023:1" in newer and "busybox:latest" in newer and not {"dated2021:1", "dated2022:1"} & set(newer)
    assert listed("--filter", "since=dated2021:1", "--filter", "before=dated2023:1") == ["dated2022:1"]
    assert listed("--filter", "reference=dated*") == ["dated2023:1", "dated2022:1", "dated2021:1"]  # once each
    assert listed("--filter", "label=dated") == ["dated2023:1", "dated2022:1", "dated2021:1"]
    assert listed("--filter", "label=year=2022") == ["dated2022:1"]
    assert listed("--filter", "label=dated", "--filter", "label=year=2021") == ["dated2021:1"]  # all must hold
    assert listed("--filter", "label=year=1999") == []
    dangling = listed("--filter", "dangling=true")
    assert set(dangling) <= {"<none>:<none>"} and "<none>:<none>" not in listed("--filter", "dangling=false")
    mgr.docker("-H", f"tcp://{lab.engines[1]}", "tag", "busybox", "ontwo:1")
    time.sleep(0.5)  # the image event reaches the manager's cache
    try:
        assert "ontwo:1" in listed("--filter", "node=node2") and "ontwo:1" not in listed("--filter", "node=node1")
    finally:
        mgr.docker("-H", f"tcp://{lab.engines[1]}", "rmi", "ontwo:1")
    for flt, message in (("before=nosuch:1", "Invalid filter: 'type'='before': no such image found: 'nosuch:1'"),
                         ("since=nosuch:1", "Invalid filter: 'type'='since': no such image found: 'nosuch:1'"),
                         ("dangling=maybe", "Invalid filter: 'type'='dangling'"),
                         ("colour=blue", "Invalid filter 'colour'")):
        refused = mgr.docker("images", "--filter", flt, check=False, binary=cli)
        assert refused.returncode == 1 and message in refused.stderr, flt


@pytest.mark.parametrize("cli", CLIS)
def test_an_image_id_runs_where_that_image_is_and_an_unknown_one_is_refused_at_once(mgr, lab, cli):
    unknown = "a" * 64
    began = time.monotonic()
    refused = mgr.docker("run", "-d", unknown, check=False, binary=cli)
    assert refused.returncode == 125 and time.monotonic() - began < 5
    assert (f"invalid repository name ({unknown}), cannot specify 64-byte hexadecimal strings"
            in refused.stderr)
    assert unknown not in mgr.log()  # no node was asked to create or pull it
    node3_busybox = mgr.docker("-H", f"tcp://{lab.engines[2]}", "image", "inspect", "--format", "{{.Id}}",
                               "busybox").stdout.strip().removeprefix("sha256:")  # each node imported its own
    cid = mgr.docker("run", "-d", node3_busybox, "sleep", "300", binary=cli).stdout.strip()
    assert node_of(mgr, cid) == "node3"


def test_cpu_shares_below_two_run_and_reserve_shares_over_1024_cpus(mgr):
    assert mgr.docker("run", "--rm", "--cpu-shares", "1", "busybox", "echo", "ran").stdout == "ran\n"
    cid = mgr.docker("run", "-d", "--cpu-shares", "1", "-e", "constraint:node==node1", "busybox", "sleep",
                     "300").stdout.strip()
    assert mgr.docker("inspect", "--format", "{{.HostConfig.CpuShares}}", cid).stdout.strip() == "2"
    reserved = dict(mgr.info_rows()[[k for k, _ in mgr.info_rows()].index(" node1"):][:8])["  └ Reserved CPUs"]
    assert reserved.startswith("0.00195312 / ")  # 2/1024 of a CPU: the shares the engine holds
    mgr.docker("update", "--cpu-shares", "1", cid)
    mgr.docker("restart", "-t", "0", cid)
    assert mgr.docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip() == "true"


@pytest.mark.parametrize("cli", CLIS)
def test_version_and_info_show_shoal_and_the_classic_string(mgr, cli):
    classic = f"swarm/1.2.9-compatible (shoal {VERSION})"
    out = mgr.docker("version", binary=cli).stdout
    assert "Server: Shoal" in out and f"Version:          {classic}" in out
    assert mgr.docker("version", "--format", "{{.Server.Version}}", binary=cli).stdout.strip() == classic
    assert f"Server Version: {classic}" in mgr.docker("info", binary=cli).stdout


def test_buildkit_build_session_and_cancel_reach_the_build_node(mgr, lab, tmp_path):
    """DOCKER_BUILDKIT=1 with the 20.10 CLI (the 28 CLI here has no buildx, so it always uses the
    classic builder): the session's hijack and the cancel go where the build runs."""
    (tmp_path / "Dockerfile").write_text('FROM busybox\nARG greeting=none\nRUN echo "$greeting" > /hello\n'
                                         'CMD ["cat", "/hello"]\n')
    (tmp_path / "Dockerfile.slow").write_text("FROM busybox\nRUN sleep 60\n")
    env = dict(mgr.env, DOCKER_BUILDKIT="1")
    ref = f"{lab.registry}/bk:1"
    subprocess.run(["/usr/bin/docker", "build", "-t", ref, "--build-arg", "greeting=via-buildkit",
                    "--build-arg", "constraint:node==node3", str(tmp_path)], env=env, check=True,
                   capture_output=True, timeout=120)
    assert holders(mgr, lab, ref) == ["node3"]
    assert re.search(r"buildkit session session=\S+ node=node3", mgr.log())
    assert mgr.docker("run", "--rm", ref).stdout == "via-buildkit\n"
    mgr.docker("rmi", ref)
    log = tmp_path / "slow.log"
    with log.open("w") as out:
        slow = subprocess.Popen(["/usr/bin/docker", "build", "--no-cache", "-f", str(tmp_path / "Dockerfile.slow"),
                                 "--build-arg", "constraint:node==node1", str(tmp_path)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "RUN sleep 60" in log.read_text(), 30, "the slow build's RUN step")
        slow.send_signal(signal.SIGINT)
        assert slow.wait(20) != 0
    finally:
        slow.kill()
        slow.wait()
    assert "CANCELED" in log.read_text()
    wait_until(lambda: re.search(r"build cancel build_id=\S+ node=node1", mgr.log()), 10, "the cancel")
