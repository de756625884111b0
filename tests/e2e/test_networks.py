"""Networks and volumes placed as classic Swarm places them, with the docker CLI (28 and 20.10) and
docker-compose 1.29 against `shoal manage` on the session lab (no multi-host networking here)."""
from __future__ import annotations

import collections
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.manager import Manager

CLIS = ("docker", "/usr/bin/docker")  # 28 and 20.10


@pytest.fixture(autouse=True)
def clean(mgr, lab):
    """Every test ends with no container and none of its networks or volumes left."""
    yield
    ids = mgr.docker("ps", "-aq").stdout.split()
    if ids:
        mgr.docker("rm", "-f", *ids)
    for engine in lab.engines:
        direct(engine, "network", "prune", "-f")
        direct(engine, "volume", "prune", "-f")


def direct(engine: str, *args: str) -> str:
    """The docker CLI straight at one engine."""
    return subprocess.run(["docker", "-H", f"tcp://{engine}", *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def node_of(mgr: Manager, ref: str) -> str:
    return mgr.docker("inspect", "--format", "{{.Node.Name}}", ref).stdout.strip()


def network_names(mgr: Manager, *filters: str, binary: str = "docker") -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return sorted(mgr.docker("network", "ls", *args, "--format", "{{.Name}}", binary=binary).stdout.split())


def holders(lab, name: str) -> list[str]:
    """The nodes whose engine has a network called `name` (asked directly)."""
    return [node for node, engine in zip(lab.names, lab.engines)
            if name in direct(engine, "network", "ls", "--format", "{{.Name}}").split()]


def test_network_create_makes_one_network_on_the_node_the_strategy_picks(mgr, lab):
    for node in ("node1", "node1", "node2"):  # spread: node3 has the fewest containers
        mgr.docker("run", "-d", "-e", f"constraint:node=={node}", "busybox", "sleep", "300")
    mgr.docker("network", "create", "spreadnet")
    assert holders(lab, "spreadnet") == ["node3"]
    mgr.docker("network", "create", "node1/pinned")
    assert holders(lab, "pinned") == ["node1"]
    for cli in CLIS:
        assert [n for n in network_names(mgr, binary=cli) if "net" in n or "pinned" in n] == \
            ["node1/pinned", "node3/spreadnet"]
        unknown = mgr.docker("network", "create", "node9/x", check=False, binary=cli)
        assert unknown.returncode == 1 and "No such node: node9" in unknown.stderr
        taken = mgr.docker("network", "create", "spreadnet", check=False, binary=cli)
        assert taken.returncode == 1 and "network with name spreadnet already exists" in taken.stderr
    assert mgr.docker("network", "inspect", "--format", "{{.Name}} {{.Driver}}", "spreadnet").stdout \
        == "spreadnet bridge\n"
    # one made straight on an engine shows up at once (network events), and goes away with it
    direct(lab.engines[1], "network", "create", "outside")
    time.sleep(0.5)
    assert "node2/outside" in network_names(mgr)
    direct(lab.engines[1], "network", "rm", "outside")
    time.sleep(0.5)
    assert "node2/outside" not in network_names(mgr)
    mgr.docker("network", "rm", "spreadnet", "node1/pinned")
    assert holders(lab, "spreadnet") == holders(lab, "pinned") == []
    mgr.docker("network", "create", "node1/gone1")
    mgr.docker("network", "create", "node3/gone3")
    pruned = mgr.docker("network", "prune", "-f").stdout.split()  # on every node
    assert "gone1" in pruned and "gone3" in pruned
    assert holders(lab, "gone1") == holders(lab, "gone3") == []


def test_network_ls_filters(mgr, lab):
    mgr.docker("network", "create", "--label", "team=a", "node2/labelled")
    assert network_names(mgr, "type=builtin", "node=node1") == ["node1/bridge", "node1/host", "node1/none"]
    assert network_names(mgr, "type=custom") == ["node2/labelled"]
    assert network_names(mgr, "label=team=a") == network_names(mgr, "name=node2/lab") == ["node2/labelled"]
    assert network_names(mgr, "driver=null") == [f"{n}/none" for n in lab.names]
    assert network_names(mgr, "scope=local", "dangling=true") == ["node2/labelled"]
    labelled_id = mgr.docker("network", "inspect", "--format", "{{.Id}}", "node2/labelled").stdout.strip()
    assert network_names(mgr, f"id={labelled_id[:10]}") == ["node2/labelled"]
    for cli in CLIS:
        bad = mgr.docker("network", "ls", "--filter", "type=odd", check=False, binary=cli)
        assert bad.returncode == 1 and "invalid filter: 'type'='odd'" in bad.stderr
    for cli in CLIS:  # no engine of the session lab has multi-host networking
        overlay = mgr.docker("network", "create", "-d", "overlay", "ov", check=False, binary=cli)
        assert overlay.returncode == 1 and "cannot create overlay network ov: the cluster has no multi-host " \
            "networking (no healthy node is in a swarm-mode cluster or has a cluster-store)" in overlay.stderr
        pinned = mgr.docker("network", "create", "-d", "overlay", "node1/ov", check=False, binary=cli)
        assert pinned.returncode == 1 and "an overlay network spans the cluster, no node can be named for it: " \
            "create it as ov, without node1/" in pinned.stderr
    assert [v for k, v in mgr.info_rows() if k == "Multi-host networking"] == [
        "none (no node is in a swarm-mode cluster or has a cluster-store)"]
    status, body = mgr.api("GET", "/v1.41/networks?filters=" + quote(json.dumps({"color": ["red"]})))
    assert status == 400 and body == {"message": "Invalid filter 'color'"}


def test_containers_go_where_their_network_is(mgr, lab):
    mgr.docker("network", "create", "node2/app")
    server = mgr.docker("run", "-d", "--name", "srv", "--net", "app", "busybox", "sleep", "300").stdout.strip()
    assert node_of(mgr, server) == "node2"
    pinned = mgr.docker("run", "-d", "--name", "pin", "--net", "node2/app", "busybox", "sleep", "300").stdout
    assert node_of(mgr, pinned.strip()) == "node2"
    assert mgr.docker("inspect", "--format", "{{.HostConfig.NetworkMode}}", "pin").stdout == "app\n"
    assert "1 packets received" in mgr.docker("run", "--rm", "--net", "app", "busybox", "ping", "-c1", "srv").stdout
    nofit = mgr.docker("run", "-d", "--net", "node2/app", "-e", "constraint:node==node1", "busybox", "true",
                       check=False)
    assert nofit.returncode == 125 and "node2: constraint node==node1 (node is node2)" in nofit.stderr
    assert "node1: network node2/app (only node2 has it)" in nofit.stderr
    missing = mgr.docker("run", "-d", "--net", "nosuch", "busybox", "true", check=False)
    assert missing.returncode == 125 and "network nosuch not found" in missing.stderr
    assert "Unable to find image" not in missing.stderr  # a 400, so the CLI does not try to pull
    # ps --filter network=
    mgr.docker("run", "-d", "--name", "other", "-e", "constraint:node==node3", "busybox", "sleep", "300")
    for flt in ("network=app", "network=node2/app"):
        assert mgr.docker("ps", "--filter", flt, "--format", "{{.Names}}").stdout.split() == ["node2/pin", "node2/srv"]
    assert mgr.docker("ps", "--filter", "network=node1/app", "-q").stdout == ""
    assert mgr.docker("ps", "--filter", "network=node3/bridge", "--format", "{{.Names}}").stdout == "node3/other\n"
    # connect / disconnect on the container's node; a container elsewhere is told why not
    wrong = mgr.docker("network", "connect", "app", "other", check=False)
    assert wrong.returncode == 1 and "container other is on node3, network app is on node2" in wrong.stderr
    mgr.docker("run", "-d", "--name", "late", "-e", "constraint:node==node2", "busybox", "sleep", "300")
    mgr.docker("network", "connect", "--alias", "later", "node2/app", "late")
    assert "1 packets received" in mgr.docker("exec", "srv", "ping", "-c1", "later").stdout
    mgr.docker("network", "disconnect", "app", "late")
    assert "app" not in mgr.docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", "late").stdout
    # the same name on a second node: a plain reference is ambiguous, `node/name` is not
    mgr.docker("network", "create", "node1/app")
    for cli in CLIS:
        ambiguous = mgr.docker("network", "inspect", "app", check=False, binary=cli)
        assert ambiguous.returncode == 1 and "network app is ambiguous" in ambiguous.stderr
        assert "node1/app, node2/app" in ambiguous.stderr
    assert mgr.docker("network", "inspect", "--format", "{{len .Containers}}", "node2/app").stdout == "2\n"
    run = mgr.docker("run", "--rm", "--net", "app", "busybox", "true", check=False)
    assert run.returncode == 125 and "network app is ambiguous" in run.stderr
    assert mgr.docker("run", "--rm", "--net", "node1/app", "busybox", "hostname", "-i").returncode == 0
    busy = mgr.docker("network", "rm", "node2/app", check=False)
    assert busy.returncode == 1 and "active endpoints" in busy.stderr
    mgr.docker("rm", "-f", "srv", "pin")
    mgr.docker("network", "rm", "node1/app", "node2/app")
    assert holders(lab, "app") == []


def test_compose_v2_project_stays_on_its_networks_node_and_works(mgr, tmp_path: Path):
    (tmp_path / "docker-compose.yml").write_text(
        'version: "2"\nservices:\n'
        "  web:\n    image: busybox\n"
        "    command: sh -c 'echo served-by-$$HOSTNAME > /index.html; exec httpd -f -p 80 -h /'\n"
        "  client:\n    image: busybox\n"
        "    command: sh -c 'while true; do wget -q -O - http://web/index.html; sleep 0.3; done'\n")

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-p", "vtwo", *args], cwd=tmp_path, env=mgr.env,
                              capture_output=True, text=True, timeout=180, check=True)

    compose("up", "-d", "--scale", "web=3")
    names = mgr.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 4 and len(collections.Counter(n.split("/")[0] for n in names)) == 1
    node = names[0].split("/")[0]
    assert network_names(mgr, "name=vtwo") == [f"{node}/vtwo_default"]
    webs = {f"served-by-{h}" for h in mgr.docker("ps", "-q", "--filter", "name=web").stdout.split()}
    deadline = time.monotonic() + 20
    while not webs <= set(logs := compose("logs", "--no-color", "client").stdout.split()) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert webs <= set(logs), logs  # the client reached every web container by the service name
    compose("down")
    assert mgr.docker("ps", "-aq").stdout == ""
    assert network_names(mgr, "name=vtwo") == []


def test_volumes_everywhere_pinned_or_whitelisted(mgr, lab):
    mgr.docker("volume", "create", "data")
    mgr.docker("volume", "create", "node2/solo")
    mgr.docker("volume", "create", "--label", 'com.docker.swarm.whitelists=["node==node1|node3"]', "--label",
               "team=b", "picked")

    def volumes(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return sorted(mgr.docker("volume", "ls", *args, "--format", "{{.Name}}").stdout.split())

    assert volumes() == ["node1/data", "node1/picked", "node2/data", "node2/solo", "node3/data", "node3/picked"]
    assert volumes("node=node2") == ["node2/data", "node2/solo"]
    assert volumes("name=pick") == volumes("label=team=b") == ["node1/picked", "node3/picked"]
    assert volumes("name=node2/") == ["node2/data", "node2/solo"]
    mgr.docker("run", "-d", "-v", "solo:/s", "-e", "constraint:node==node2", "busybox", "sleep", "300")
    assert volumes("dangling=false") == ["node2/solo"]
    assert volumes("driver=local", "node=node3") == ["node3/data", "node3/picked"]
    for cli in CLIS:
        assert mgr.docker("volume", "inspect", "--format", "{{.Name}}", "solo", "node3/data",
                          binary=cli).stdout.split() == ["solo", "data"]
    # a 404 (so that compose, finding no unique volume, creates it again: a no-op on every node);
    # the 20.10 CLI prints its own text for any 404 of a volume inspect, the 28 CLI prints ours
    several = mgr.docker("volume", "inspect", "data", check=False)
    assert several.returncode == 1 and "volume data is on 3 nodes (node1, node2, node3)" in several.stderr
    assert "No such volume: data" in mgr.docker("volume", "inspect", "data", check=False, binary=CLIS[1]).stderr
    nobody = mgr.docker("volume", "create", "--label", 'com.docker.swarm.whitelists=["node==node9"]', "x",
                        check=False)
    assert nobody.returncode == 1 and "no healthy node satisfies" in nobody.stderr
    bad = mgr.docker("volume", "ls", "--filter", "color=red", check=False)
    assert bad.returncode == 1 and "Invalid filter 'color'" in bad.stderr
    mgr.docker("volume", "rm", "data", "picked")
    assert volumes() == ["node2/solo"]
    mgr.docker("volume", "create", "node1/spare")
    mgr.docker("volume", "create", "node3/spare")
    mgr.docker("volume", "rm", "node1/spare")
    assert volumes() == ["node2/solo", "node3/spare"]
    pruned = mgr.docker("volume", "prune", "-f").stdout.split()  # on every node; node2/solo is in use
    assert "spare" in pruned and "solo" not in pruned
    assert volumes() == ["node2/solo"]
