"""The user's flows with the stock docker CLI and docker-compose against `shoal manage` on the lab."""
from __future__ import annotations

import collections
import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.manager import Manager


@pytest.fixture(autouse=True)
def clean(mgr):
    """Every test starts and ends with no containers in the cluster."""
    yield
    mgr.remove_all_containers()


def node_of(mgr: Manager, ref: str) -> str:
    return mgr.docker("inspect", "--format", "{{.Node.Name}}", ref).stdout.strip()


def test_info_shows_every_node_with_its_labels(mgr, lab):
    out = mgr.docker("info").stdout
    assert " Nodes: 3" in out
    assert " Strategy: spread" in out
    assert " Filters: health, port, containerslots, dependency, affinity, constraint" in out
    for name, addr in zip(lab.names, lab.engines):
        assert f"  {name}: {addr}" in out
    assert out.count("   └ Status: Healthy") == 3
    assert out.count("   └ ServerVersion: 20.10.") == 3  # the engines' own, from their /info
    assert "size=xxl" in out and "size=small" in out and "storagedriver=overlay2" in out
    assert out.count("   └ Reserved Memory: 0 B / ") == 3


def test_version_negotiates_the_engines_api(mgr):
    out = mgr.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip()
    assert out == "1.41"


def test_run_constraint_lands_on_the_labelled_node_and_reserves_memory(mgr):
    cid = mgr.docker("run", "-d", "-e", "constraint:size==xxl", "-m", "64m", "busybox",
                     "sleep", "300").stdout.strip()
    assert node_of(mgr, cid) == "node3"
    labels = json.loads(mgr.docker("inspect", "--format", "{{json .Config.Labels}}", cid).stdout)
    assert json.loads(labels["com.docker.swarm.constraints"]) == ["size==xxl"]
    env = mgr.docker("inspect", "--format", "{{json .Config.Env}}", cid).stdout
    assert "constraint:" not in env
    rows = mgr.info_rows()
    node3 = [k for k, _ in rows].index(" node3")
    assert dict(rows[node3:node3 + 8])["  └ Reserved Memory"].startswith("64 MiB / ")


def test_affinity_container_and_image(mgr, lab):
    mgr.docker("run", "-d", "--name", "web", "-e", "constraint:node==node2", "busybox", "sleep", "300")
    mate = mgr.docker("run", "-d", "-e", "affinity:container==web", "busybox", "sleep", "300")
    assert node_of(mgr, mate.stdout.strip()) == "node2"
    apart = mgr.docker("run", "-d", "-e", "affinity:container!=web", "busybox", "sleep", "300")
    assert node_of(mgr, apart.stdout.strip()) != "node2"
    # an image only node1 has: tag it there directly on the engine
    subprocess.run(["docker", "-H", f"tcp://{lab.engines[0]}", "tag", "busybox", "onlyone:1"], check=True)
    try:
        time.sleep(0.5)  # the image event reaches the manager's cache
        placed = mgr.docker("run", "-d", "-e", "affinity:image==onlyone:1", "busybox", "sleep", "300")
        assert node_of(mgr, placed.stdout.strip()) == "node1"
        avoid = mgr.docker("run", "-d", "-e", "affinity:image!=onlyone:1", "busybox", "sleep", "300")
        assert node_of(mgr, avoid.stdout.strip()) in ("node2", "node3")
    finally:
        subprocess.run(["docker", "-H", f"tcp://{lab.engines[0]}", "rmi", "onlyone:1"], check=True)
    nofit = mgr.docker("run", "-d", "-e", "affinity:image!=busybox", "busybox", "true", check=False)
    assert nofit.returncode == 125
    assert "Unable to find a node that satisfies the following conditions" in nofit.stderr
    assert "node1: affinity image!=busybox" in nofit.stderr


def test_image_on_one_node_only_runs_where_it_is(mgr, lab):
    ref = f"{lab.registry}/onlyhere:1"  # the registry does not have it: other nodes cannot pull
    subprocess.run(["docker", "-H", f"tcp://{lab.engines[0]}", "tag", "busybox", ref], check=True)
    try:
        time.sleep(0.5)
        for _ in range(3):  # spread alone would have put one of these on node2 or node3
            cid = mgr.docker("run", "-d", ref, "sleep", "300").stdout.strip()
            assert node_of(mgr, cid) == "node1"
    finally:
        subprocess.run(["docker", "-H", f"tcp://{lab.engines[0]}", "rm", "-f", *mgr.docker(
            "ps", "-q").stdout.split()], capture_output=True)
        subprocess.run(["docker", "-H", f"tcp://{lab.engines[0]}", "rmi", ref], check=True)


def test_run_rm_prints_output_and_exit_code(mgr):
    assert mgr.docker("run", "--rm", "busybox", "echo", "hi").stdout == "hi\n"
    failed = mgr.docker("run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 7", check=False)
    assert (failed.returncode, failed.stderr) == (7, "oops\n")
    assert mgr.docker("ps", "-aq").stdout == ""


def test_run_i_streams_stdin_both_ways(mgr):
    data = "".join(f"line {i}\n" for i in range(20000))
    out = mgr.docker("run", "-i", "--rm", "busybox", "cat", input=data)
    assert out.stdout == data


def test_run_it_and_exec_it_in_a_terminal(mgr):
    script = ["script", "-qec"]
    run = subprocess.run([*script, "docker run -it --rm busybox sh -c 'tty; exit 5'", "/dev/null"],
                         env=mgr.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 5 and "/dev/pts/" in run.stdout
    mgr.docker("run", "-d", "--name", "box", "busybox", "sleep", "300")
    ex = subprocess.run([*script, "docker exec -it box sh -c 'tty; exit 4'", "/dev/null"],
                        env=mgr.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ex.returncode == 4 and "/dev/pts/" in ex.stdout
    plain = mgr.docker("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (plain.returncode, plain.stdout, plain.stderr) == (3, "out\n", "err\n")


def test_logs_follow_streams_new_lines(mgr):
    mgr.docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
               "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done")
    proc = subprocess.Popen(["docker", "logs", "-f", "ticker"], env=mgr.env, stdout=subprocess.PIPE,
                            text=True)
    try:
        began = time.monotonic()
        lines = [proc.stdout.readline() for _ in range(8)]
        assert lines[-1].startswith("tick") and time.monotonic() - began < 10
    finally:
        proc.kill()
        proc.wait()
    assert mgr.docker("logs", "--tail", "1", "ticker").stdout.startswith("tick")


def test_ps_names_node_slash_name_and_filters(mgr):
    mgr.docker("run", "-d", "--name", "bob", "-e", "constraint:node==node1", "-l", "team=a",
               "busybox", "sleep", "300")
    mgr.docker("run", "--name", "done", "-e", "constraint:node==node2", "busybox", "true")
    assert mgr.docker("ps", "--format", "{{.Names}}").stdout.split() == ["node1/bob"]
    assert sorted(mgr.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()) == \
        ["node1/bob", "node2/done"]
    assert mgr.docker("ps", "-l", "--format", "{{.Names}}").stdout.split() == ["node2/done"]
    assert mgr.docker("ps", "-n", "2", "-q").stdout.count("\n") == 2
    for flt, expected in [("name=bob", ["node1/bob"]), ("node=node2", ["node2/done"]),
                          ("label=team=a", ["node1/bob"]), ("status=exited", ["node2/done"]),
                          ("exited=0", ["node2/done"])]:
        got = mgr.docker("ps", "-a", "--filter", flt, "--format", "{{.Names}}").stdout.split()
        assert got == expected, flt


def test_container_lifecycle_by_every_kind_of_reference(mgr, lab):
    cid = mgr.docker("run", "-d", "--name", "life", "-p", "8080:80", "busybox", "sleep", "300").stdout.strip()
    node = node_of(mgr, cid)
    for ref in (cid, cid[:12], cid[:7], "life", f"{node}/life"):
        assert mgr.docker("inspect", "--format", "{{.Id}}", ref).stdout.strip() == cid
    port = mgr.docker("port", "life").stdout
    subnet = lab.bridge_ip.rsplit(".", 1)[0]
    assert f"80/tcp -> {subnet}." in port and ":8080" in port
    assert "sleep 300" in mgr.docker("top", "life").stdout
    assert "life" in mgr.docker("stats", "--no-stream", "life").stdout
    mgr.docker("pause", "life")
    assert "(Paused)" in mgr.docker("ps", "--format", "{{.Status}}").stdout
    mgr.docker("unpause", "life")
    mgr.docker("stop", "-t", "1", "life")
    assert mgr.docker("ps", "-q").stdout == ""
    mgr.docker("start", "life")
    mgr.docker("restart", "-t", "1", "life")
    mgr.docker("update", "--memory-reservation", "32m", "life")
    reserved = [v for k, v in mgr.info_rows() if k == "  └ Reserved Memory"]
    assert sum(v.startswith("32 MiB / ") for v in reserved) == 1
    stream = subprocess.Popen(["docker", "stats", "--format", "{{.Name}} {{.MemUsage}}", "life"],
                              env=mgr.env, stdout=subprocess.PIPE, text=True)
    try:
        assert "life" in stream.stdout.readline() + stream.stdout.readline()
    finally:
        stream.kill()
        stream.wait()
    mgr.docker("rename", "life", "life2")
    assert mgr.docker("ps", "--format", "{{.Names}}").stdout.strip() == f"{node}/life2"
    mgr.docker("kill", "life2")
    assert mgr.docker("wait", "life2").stdout.strip() == "137"
    mgr.docker("rm", "life2")
    assert mgr.docker("ps", "-aq").stdout == ""


def test_attach_sees_output(mgr):
    mgr.docker("run", "-d", "--name", "talker", "busybox", "sh", "-c", "sleep 1; echo hello-attach")
    out = mgr.docker("attach", "--sig-proxy=false", "talker", timeout=30)
    assert "hello-attach" in out.stdout


def test_port_filter_keeps_one_host_port_per_node(mgr):
    for _ in range(3):
        mgr.docker("run", "-d", "-p", "9090:80", "busybox", "sleep", "300")
    nodes = mgr.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(n.split("/")[0] for n in nodes) == ["node1", "node2", "node3"]
    nofit = mgr.docker("run", "-d", "-p", "9090:80", "busybox", "sleep", "300", check=False)
    assert nofit.returncode == 125 and "port 9090" in nofit.stderr


def test_concurrent_runs_see_each_others_ports_and_names(mgr):
    def run(*args: str) -> subprocess.Popen:
        return subprocess.Popen(["docker", "run", "-d", *args, "busybox", "sleep", "300"], env=mgr.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    racers = [run("-p", "9393:80") for _ in range(5)]
    results = [(p.wait(60), p.stderr.read()) for p in racers]
    assert sorted(rc for rc, _ in results) == [0, 0, 0, 125, 125]
    assert all("port 9393" in err for rc, err in results if rc)
    nodes = [n.split("/")[0] for n in mgr.docker("ps", "--format", "{{.Names}}").stdout.split()]
    assert sorted(nodes) == ["node1", "node2", "node3"]
    twins = [run("--name", "twin") for _ in range(3)]
    outcomes = sorted((p.wait(60), p.stderr.read()) for p in twins)
    assert [rc for rc, _ in outcomes] == [0, 125, 125]
    assert all("The name twin is already assigned" in err for _, err in outcomes[1:])


def test_pull_from_the_registry_lands_on_every_node_and_rmi_removes_it(mgr, lab):
    ref = f"{lab.registry}/busybox"
    out = mgr.docker("pull", ref, timeout=120).stdout
    for name in lab.names:
        assert f"{name}: Pulling {ref}:latest... : downloaded" in out
    listing = mgr.docker("images", "--format", "{{.Repository}}").stdout.split()
    assert ref in listing
    on_node2 = mgr.docker("images", "--filter", "node=node2", "--format", "{{.Repository}}").stdout
    assert ref in on_node2.split()
    image_id = mgr.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    direct_id = subprocess.run(["docker", "-H", f"tcp://{lab.engines[1]}", "image", "inspect", "--format",
                                "{{.Id}}", ref], capture_output=True, text=True, check=True).stdout.strip()
    assert image_id == direct_id and image_id.startswith("sha256:")
    assert mgr.docker("history", "-q", ref).stdout.split()[0] == image_id[7:19]
    for engine in lab.engines:
        direct = subprocess.run(["docker", "-H", f"tcp://{engine}", "images", "-q", ref],
                                capture_output=True, text=True, check=True)
        assert direct.stdout.strip(), engine
    mgr.docker("rmi", ref)
    assert ref not in mgr.docker("images", "--format", "{{.Repository}}").stdout.split()
    for engine in lab.engines:
        direct = subprocess.run(["docker", "-H", f"tcp://{engine}", "images", "-q", ref],
                                capture_output=True, text=True, check=True)
        assert direct.stdout.strip() == "", engine


def test_run_pulls_a_missing_image_on_the_chosen_node_only(mgr, lab):
    ref = f"{lab.registry}/busybox"
    out = mgr.docker("run", "-e", "constraint:node==node2", "--rm", ref, "echo", "pulled", timeout=120)
    assert out.stdout == "pulled\n"
    holders = {n for n in lab.names if ref in mgr.docker(
        "images", "--filter", f"node={n}", "--format", "{{.Repository}}").stdout.split()}
    assert holders == {"node2"}
    mgr.docker("tag", ref, "retagged:7")
    tagged = mgr.docker("images", "--filter", "node=node2", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert "retagged:7" in tagged.split()
    mgr.docker("rmi", "retagged:7", ref)
    assert "retagged" not in mgr.docker("images", "--format", "{{.Repository}}").stdout


def test_compose_scale_spreads_4_3_3_then_kill_and_rm(mgr, tmp_path: Path):
    (tmp_path / "flock.yml").write_text(
        "bird:\n  image: busybox\n  command: sleep 300\n  restart: always\n")

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-p", "flock", "-f", "flock.yml", *args], cwd=tmp_path,
                              env=mgr.env, capture_output=True, text=True, timeout=180, check=True)

    compose("scale", "bird=10")
    names = mgr.docker("ps", "--format", "{{.Names}}").stdout.split()
    counts = collections.Counter(n.split("/")[0] for n in names)
    assert sorted(counts.values()) == [3, 3, 4] and len(names) == 10
    assert len(compose("ps", "-q").stdout.split()) == 10
    compose("kill")
    assert mgr.docker("ps", "-q").stdout == ""
    compose("rm", "-vf")
    assert mgr.docker("ps", "-aq").stdout == ""


def test_linked_service_lands_beside_its_dependency(mgr, tmp_path: Path):
    (tmp_path / "docker-compose.yml").write_text(
        "db:\n  image: busybox\n  command: sleep 300\n"
        "web:\n  image: busybox\n  command: sleep 300\n  links:\n    - db\n")
    subprocess.run(["docker-compose", "-p", "linked", "up", "-d"], cwd=tmp_path, env=mgr.env, check=True,
                   capture_output=True, timeout=120)
    names = mgr.docker("ps", "--format", "{{.Names}}").stdout.split()
    nodes = {n.split("/")[1].split("_")[1]: n.split("/")[0] for n in names}
    assert nodes["web"] == nodes["db"]
    plain = mgr.docker("run", "-d", "--link", names[0].split("/")[1] + ":x", "busybox", "sleep", "300")
    assert node_of(mgr, plain.stdout.strip()) == names[0].split("/")[0]


def test_build_runs_on_the_node_its_constraint_names(mgr, lab, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nARG greeting=none\nRUN echo "$greeting" > /hello\nCMD ["cat", "/hello"]\n')
    ref = f"{lab.registry}/built:1"  # registry-qualified: no node ever tries a public registry
    mgr.docker("build", "-t", ref, "--build-arg", "greeting=hi", "--build-arg", "constraint:node==node3",
               str(tmp_path), timeout=120)
    holders = mgr.docker("images", "--filter", "node=node3", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert ref in holders.split()
    assert mgr.docker("run", "--rm", ref).stdout == "hi\n"
    nofit = mgr.docker("build", "-t", "x:1", "--build-arg", "constraint:node==node9", str(tmp_path),
                       check=False)
    assert nofit.returncode == 1 and "constraint node==node9" in nofit.stderr
    mgr.docker("rmi", ref)


def test_clear_errors_for_bad_requests(mgr):
    nofit = mgr.docker("run", "-d", "-e", "constraint:size==nosuch", "busybox", "true", check=False)
    assert nofit.returncode == 125
    assert "Unable to find a node that satisfies the following conditions" in nofit.stderr
    assert "node3: constraint size==nosuch (node has size=xxl)" in nofit.stderr
    bad = mgr.docker("run", "-d", "-e", "constraint:1bad==x", "busybox", "true", check=False)
    assert bad.returncode == 125 and "1bad" in bad.stderr
    missing = mgr.docker("stop", "nope", check=False)
    assert missing.returncode == 1 and "No such container: nope" in missing.stderr
    mgr.docker("run", "-d", "--name", "dup", "busybox", "sleep", "300")
    conflict = mgr.docker("run", "-d", "--name", "dup", "busybox", "sleep", "300", check=False)
    assert conflict.returncode == 125 and "Conflict: The name dup is already assigned" in conflict.stderr
    status, body = mgr.api("POST", "/v1.41/containers/create", b"{not json")
    assert status == 400 and "invalid JSON" in body["message"]
    status, body = mgr.api("GET", "/v1.41/swarm")
    assert status == 501 and "GET /swarm" in body["message"]
    status, body = mgr.api("GET", "/nonsense")
    assert status == 404 and body == {"message": "page not found"}


def test_events_are_tagged_with_their_node(mgr):
    since = int(time.time()) - 1
    cid = mgr.docker("run", "-d", "-e", "constraint:node==node2", "busybox", "true").stdout.strip()
    out = mgr.docker("events", "--since", str(since), "--until", str(int(time.time()) + 2),
                     "--filter", f"container={cid}", "--format", "{{json .}}", timeout=30).stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert {"create", "start", "die"} <= {e["Action"] for e in events}
    assert all(e["Actor"]["Attributes"]["node.name"] == "node2" for e in events)
