"""Shoal's container image, built offline on a lab node, and a cluster run from it: a containerised
manager on node1 and a containerised `shoal join` on every node, used through the stock CLIs."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from lab.daemons import api_checked
from lab.image import build_and_push
from lab.state import LabState
from shoal.version import VERSION

MANAGER_PORT = 4000
MAX_IMAGE_MIB = 200  # python:3.11-slim alone is about 125 MiB


def docker(host: str, *args: str, cli: str = "docker", timeout: float = 120) -> str:
    """The stock docker CLI against `host` ("ip:port"); its stdout (fails on a non-zero exit)."""
    done = subprocess.run([cli, "-H", f"tcp://{host}", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cli} {' '.join(args)}: rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def image(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`<registry>/shoal:<version>`, built on node1 from a debootstrapped base and pushed;
    every container and image it led to is removed afterwards."""
    ref = build_and_push(lab.engines[0], lab.registry, tmp_path_factory.mktemp("image"))
    yield ref
    for engine in lab.engines:
        for container in json.loads(api_checked(engine, "GET", "/containers/json?all=1")):
            if container["Image"] == ref:
                api_checked(engine, "DELETE", f"/containers/{container['Id']}?force=1")
        for leftover in (ref, "shoal-base:bookworm"):
            subprocess.run(["docker", "-H", f"tcp://{engine}", "rmi", "-f", leftover], capture_output=True)


def test_image_is_small_runs_as_non_root_and_prints_its_version(lab: LabState, image: str) -> None:
    node2 = lab.engines[1]  # pulls it from the lab registry
    assert docker(node2, "run", "--rm", image, "--version").strip() == f"shoal version {VERSION}"
    inspect = json.loads(docker(node2, "image", "inspect", image))[0]
    size_mib = inspect["Size"] / 2**20
    print(f"image {image} size_mib={size_mib:.0f}")
    assert size_mib < MAX_IMAGE_MIB
    assert inspect["Config"]["User"] == "shoal"
    assert docker(node2, "run", "--rm", "--entrypoint", "id", image, "-u").strip() != "0"
    history = docker(lab.engines[0], "history", "--no-trunc", "--format", "{{.Comment}}", image)
    assert "Imported from -" in history  # the debootstrapped base, not a pulled one


def wait_for(check, timeout: float, what: str) -> None:
    """Poll `check` until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_containerised_manager_and_agents_form_a_cluster(lab: LabState, image: str) -> None:
    discovery = f"etcd://{lab.etcd_for_nodes}/{lab.name}image"
    node1 = lab.engines[0]
    docker(node1, "run", "-d", "--name", "shoal-manager", "-p", f"{MANAGER_PORT}:{MANAGER_PORT}", image,
           "manage", "-H", f"tcp://0.0.0.0:{MANAGER_PORT}", "--log-format", "json", "--engine-refresh-min-interval", "5s",
           "--engine-refresh-max-interval", "10s", discovery)
    for node in lab.nodes:
        docker(node.engine, "run", "-d", "--name", "shoal-agent", image,
               "join", "--log-format", "json", "--advertise", node.engine, "--heartbeat", "1s", "--ttl", "3s",
               discovery)
    manager = f"{lab.nodes[0].ip}:{MANAGER_PORT}"

    def three_healthy() -> bool:
        done = subprocess.run(["docker", "-H", f"tcp://{manager}", "info", "--format", "{{json .SystemStatus}}"],
                              capture_output=True, text=True)
        rows = json.loads(done.stdout) if done.returncode == 0 else []
        return [v for k, v in rows if k.endswith("Status")].count("Healthy") == 3

    wait_for(three_healthy, 30, "3 healthy nodes through the containerised manager")
    for cli in ("docker", "/usr/bin/docker"):
        assert docker(manager, "run", "--rm", "busybox", "echo", "hi", cli=cli) == "hi\n"
    docker(manager, "run", "-d", "--name", "imgweb", "-e", "constraint:node==node3", "busybox", "sleep", "300")
    for cli in ("docker", "/usr/bin/docker"):
        names = docker(manager, "ps", "--format", "{{.Names}}", cli=cli).split()
        assert "node3/imgweb" in names
        assert {"node1/shoal-manager", "node1/shoal-agent", "node2/shoal-agent", "node3/shoal-agent"} <= set(names)
    docker(manager, "rm", "-f", "imgweb")
    lines = json_logs(node1, "shoal-manager")
    connected = {line["node"] for line in lines if line["event"] == "engine connected"}
    assert connected == {"node1", "node2", "node3"}
    created = [line for line in lines if line["event"] == "container created" and line["name"] == "imgweb"]
    assert created[0]["node"] == "node3" and created[0]["took_ms"] > 0
    for node in lab.nodes:
        joining = [line for line in json_logs(node.engine, "shoal-agent") if line["event"] == "joining"]
        assert joining and joining[0]["addr"] == node.engine and joining[0]["heartbeat"] == "1s"


def json_logs(engine: str, container: str) -> list[dict]:
    """A container's stderr under `--log-format json`: every line must be one JSON object."""
    logs = subprocess.run(["docker", "-H", f"tcp://{engine}", "logs", container], capture_output=True,
                          text=True, timeout=30).stderr.splitlines()
    return [json.loads(line) for line in logs]
