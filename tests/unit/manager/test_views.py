"""What the manager computes from its cache: names, lookups, ps rows, status texts, sizes."""
from __future__ import annotations

import gc
import json

import pytest

from manager.api.render import list_containers as list_json, status_text
from manager.cluster.timefmt import bytes_size, human_duration, parse_time
from manager.cluster.cluster import Cluster
from manager.cluster.containers import State
from manager.cluster.engine import Engine
from manager.cluster.events import tag_event
from manager.cluster.images import image_matches, image_named, normalize_ref, tag_matches_reference
from manager.cluster.options import EngineOptions
from manager.errors import ApiError
from scheduler import ContainerSpec, Scheduler
from scheduler.spec import engine_cpu_shares

T0 = parse_time("2026-11-27T10:00:00.123456789Z")


def container(cid: str, name: str, created: str = "2026-11-27T10:00:00Z", running: bool = True,
              labels: dict | None = None, exit_code: int = 0) -> dict:
    return {
        "Id": cid, "Name": "/" + name, "Created": created, "Image": "sha256:img", "Path": "sleep",
        "Args": ["300"], "Config": {"Image": "busybox", "Labels": labels or {}},
        "HostConfig": {"NetworkMode": "default"}, "NetworkSettings": {"Ports": {}, "Networks": {}},
        "State": {"Status": "running" if running else "exited", "Running": running,
                  "ExitCode": exit_code, "StartedAt": "2026-11-27T10:00:00Z",
                  "FinishedAt": "2026-11-27T10:01:00Z" if not running else "0001-01-01T00:00:00Z"},
    }


def list_containers(cluster: Cluster, query: dict) -> list[dict]:
    return json.loads(b"".join(list_json(cluster, query)))


def engine(name: str, addr: str, *containers: dict, state: str = "Healthy") -> Engine:
    """A real Engine with a filled cache (no connection is made)."""
    e = Engine(addr, None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name, e.id, e.state = name, f"ID{name}|{addr}", state
    for c in containers:
        e._store(c["Id"], e.record_of(c))
    return e


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(Scheduler(), EngineOptions())
    e1 = engine("node1", "10.0.0.1:2375", container("a" * 64, "web"),
                container("ab" + "c" * 62, "db", created="2026-11-27T11:00:00Z", running=False,
                          labels={"team": "x"}, exit_code=2))
    e2 = engine("node2", "10.0.0.2:2375", container("d" * 64, "web", created="2026-11-27T12:00:00Z"))
    e3 = engine("node3", "10.0.0.3:2375", container("e" * 64, "lost"), state="Unhealthy")
    c.engines = {e.addr: e for e in (e1, e2, e3)}
    return c


def test_lookup_by_id_short_id_prefix_name_and_node_slash_name(cluster):
    assert cluster.find_container("a" * 64)[1].name == "web"
    assert cluster.find_container("a" * 12)[0].name == "node1"
    assert cluster.find_container("abc")[1].name == "db"
    assert cluster.find_container("db")[1].id.startswith("ab")
    assert cluster.find_container("node2/web")[0].name == "node2"
    with pytest.raises(ApiError, match="No such container: web"):  # two of them: ambiguous
        cluster.find_container("web")
    with pytest.raises(ApiError, match="No such container: a"):  # prefix of two IDs
        cluster.find_container("a")
    with pytest.raises(ApiError) as err:
        cluster.find_container("lost")
    assert err.value.status == 500 and "unhealthy node node3" in err.value.message
    assert cluster.name_taken("db") and not cluster.name_taken("nope")


def test_ps_hides_stopped_and_down_hosts_and_names_by_node(cluster):
    rows = list_containers(cluster, {})
    assert [r["Names"] for r in rows] == [["/node2/web"], ["/node1/web"]]
    everything = list_containers(cluster, {"all": "1"})
    assert [r["Names"][0] for r in everything] == ["/node2/web", "/node1/db", "/node1/web", "/node3/lost"]
    assert everything[-1]["Status"] == "Host Down"


@pytest.mark.parametrize("query, names", [
    ({"filters": '{"name":["db"]}'}, []),  # stopped: only with all
    ({"filters": '{"name":["db"]}', "all": "1"}, ["/node1/db"]),
    ({"filters": '{"node":{"node2":true}}'}, ["/node2/web"]),
    ({"filters": '{"label":["team=x"]}', "all": "True"}, ["/node1/db"]),
    ({"filters": '{"label":["team=x","team=y"]}', "all": "1"}, []),
    ({"filters": '{"status":["exited"]}'}, ["/node1/db"]),
    ({"filters": '{"exited":["2"]}'}, ["/node1/db"]),
    ({"limit": "1"}, ["/node2/web"]),
    ({"all": "1", "filters": '{"before":["node2/web"]}'}, ["/node1/db", "/node1/web", "/node3/lost"]),
])
def test_ps_filters_and_limits(cluster, query, names):
    assert [r["Names"][0] for r in list_containers(cluster, query)] == names


@pytest.mark.parametrize("query, message", [
    ({"filters": "{nope"}, "invalid filter"),
    ({"filters": '{"colour":["red"]}'}, "invalid filter 'colour'"),
    ({"filters": '{"status":["sleeping"]}'}, "invalid filter 'status=sleeping'"),
])
def test_ps_rejects_bad_filters(cluster, query, message):
    with pytest.raises(ApiError) as err:
        list_containers(cluster, query)
    assert err.value.status == 400 and message in err.value.message


def test_status_texts():
    now = T0 + 300
    started = parse_time("2026-11-27T10:00:00Z")
    assert status_text(State("running", running=True, started=started), now) == "Up 5 minutes"
    assert status_text(State("paused", running=True, paused=True, started=started),
                       now) == "Up 5 minutes (Paused)"
    assert status_text(State("running", running=True, started=started, health="healthy"),
                       now) == "Up 5 minutes (healthy)"
    assert status_text(State("created"), now) == "Created"
    assert status_text(State("exited", exit_code=137, started=started - 3600, finished=started),
                       now) == "Exited (137) 5 minutes ago"


def test_go_units_renderings():
    assert [human_duration(s) for s in (0.2, 1, 45, 61, 3000, 3600, 7200, 86400 * 3)] == [
        "Less than a second", "1 second", "45 seconds", "About a minute", "50 minutes",
        "About an hour", "2 hours", "3 days"]
    assert [bytes_size(n) for n in (0, 64 * 2**20, 1.022 * 2**30)] == ["0 B", "64 MiB", "1.022 GiB"]
    assert parse_time("2026-11-27T10:00:00.5+01:00") == T0 - 3600 + 0.5 - 0.123456789
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_events_are_tagged_like_classic_swarm():
    e = engine("node2", "10.0.0.2:2375")
    tagged = tag_event(e, {"status": "start", "id": "abc", "from": "busybox",
                           "Actor": {"ID": "abc", "Attributes": {"name": "web"}}})
    assert tagged["from"] == "busybox node:node2"
    assert tagged["node"] == {"Name": "node2", "Id": "IDnode2|10.0.0.2:2375", "Addr": "10.0.0.2:2375",
                              "Ip": "10.0.0.2"}
    assert tagged["Actor"]["Attributes"]["node.name"] == "node2"
    assert tagged["Actor"]["Attributes"]["name"] == "web"


def test_image_references():
    image = {"Id": "sha256:" + "f" * 64, "RepoTags": ["busybox:latest", "127.0.0.1:5000/x:v1"]}
    assert normalize_ref("docker.io/library/busybox") == "busybox:latest"
    assert image_matches(image, "busybox") and image_matches(image, "busybox:latest")
    assert image_matches(image, "127.0.0.1:5000/x:v1") and not image_matches(image, "127.0.0.1:5000/x")
    assert image_matches(image, "ffff") and not image_matches(image, "ff")


def test_cache_indexes_follow_renames_and_removals(cluster):
    node1 = cluster.engines["10.0.0.1:2375"]
    renamed = dict(node1.containers.get("a" * 64).inspect(), Name="/web2")
    node1._store("a" * 64, node1.record_of(renamed))
    assert cluster.find_container("web2")[1].id == "a" * 64
    assert cluster.find_container("web")[0].name == "node2"  # no longer ambiguous
    assert node1.containers.counts() == (2, 1, 0, 1)
    node1.forget_container("a" * 64)
    with pytest.raises(ApiError):
        cluster.find_container("web2")
    with pytest.raises(ApiError):
        cluster.find_container("a" * 12)
    assert node1.containers.counts() == (1, 0, 0, 1) and not cluster.name_taken("web2")


def test_a_pending_placement_counts_once_when_its_container_is_already_cached(cluster):
    node1 = cluster.engines["10.0.0.1:2375"]
    spec = ContainerSpec.from_create_body({"Image": "busybox", "Labels": {"com.docker.swarm.id": "f" * 64}})
    cluster._pending[node1.addr] = [spec.as_container("pending:" + "f" * 64)]
    count = {n.name: len(n.containers) for n in cluster.nodes()}
    assert count["node1"] == 3  # two cached + the pending one
    node1._store("9" * 64, node1.record_of(dict(container("9" * 64, "new"), Config={
        "Image": "busybox", "Labels": {"com.docker.swarm.id": "f" * 64}})))
    assert {n.name: len(n.containers) for n in cluster.nodes()}["node1"] == 3  # not 4


@pytest.mark.parametrize("tag, reference, kept", [
    ("busybox:latest", "busybox", True), ("busybox:latest", "busybox:latest", True),
    ("busybox:latest", "busy*", True), ("busybox:1", "*:latest", False), ("app:1", "*:1", True),
    ("10.0.0.1:5000/app:1", "10.0.0.1:5000/*", True), ("10.0.0.1:5000/app:1", "*", False),  # * stops at /
    ("busybox:1", "[ab]usybox", True), ("busybox:1", "bus", False),
])
def test_the_reference_filter_reads_patterns_as_dockerd(tag, reference, kept):
    assert tag_matches_reference(tag, reference) is kept


def test_docker_save_names_match_every_tag_of_a_repository():
    image = {"Id": "sha256:" + "ab" * 32, "RepoTags": ["app:1", "app:2"]}
    assert image_named(image, "app") and image_named(image, "app:2") and image_named(image, "abab")
    assert not image_named(image, "app:3") and not image_named(image, "other")


@pytest.mark.parametrize("given, sent", [(1, 2), (2, 2), (1024, 1024), (300000, 262144), (0, 0)])
def test_cpu_shares_reach_the_engine_within_its_range_but_reserve_what_was_asked(given, sent):
    spec = ContainerSpec.from_create_body({"Image": "busybox", "HostConfig": {"CpuShares": given}})
    assert spec.create_body()["HostConfig"]["CpuShares"] == sent
    assert spec.cpus == given / 1024
    assert engine_cpu_shares({"CpuShares": given})["CpuShares"] == sent  # `docker update`


def test_the_ps_order_is_frozen_once_built(cluster):
    """The `ps` order holds a tuple per container and lives on: young collections must not walk it
    (at 150,000 containers each walk was a 20-60 ms pause on whichever call ran next)."""
    rows = cluster.newest_first()
    young = {id(obj) for generation in (0, 1) for obj in gc.get_objects(generation=generation)}
    assert rows and not any(id(row) in young for row in rows)
    assert cluster.newest_first() is rows  # kept until a cache changes
