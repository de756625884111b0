"""The container cache's records: from list rows and from inspect documents, what they answer
(ps rows, lookups, the scheduler's view, the rescheduling config), and `ps` written in chunks."""
from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref

import pytest

from manager.api import render
from manager.cluster.changes import CHANGES
from manager.cluster.cluster import Cluster
from manager.cluster.containers import OWNERS, ContainerCache, Interner, State, from_list_row
from manager.cluster.engine import Engine
from manager.cluster.options import EngineOptions
from scheduler import ContainerSpec, Scheduler
from scheduler.node import PortBinding

NOW = 1_800_000_000.0
POLICY = {"com.docker.swarm.reschedule-policies": '["on-node-failure"]', "com.docker.swarm.id": "s" * 64}


def list_row(cid: str, name: str, state: str, status: str, **extra) -> dict:
    """A row as dockerd 20.10 lists it (`GET /containers/json?all=1`)."""
    return {"Id": cid, "Names": [f"/{name}"], "Image": "busybox", "ImageID": "sha256:" + "b" * 64,
            "Command": "sleep 300", "Created": int(NOW) - 7200, "Ports": [], "Labels": {"team": "a"},
            "State": state, "Status": status, "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "n" * 64, "IPAddress": "172.17.0.2"}}},
            "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": True}], **extra}


def inspect_doc(cid: str, name: str, labels: dict) -> dict:
    return {"Id": cid, "Name": "/" + name, "Created": "2027-01-15T08:00:00.5Z", "Image": "sha256:img",
            "Path": "sleep", "Args": ["300"],
            "Config": {"Image": "busybox", "Labels": labels, "Env": ["A=1"], "Cmd": ["sleep", "300"]},
            "HostConfig": {"NetworkMode": "appnet", "Memory": 64 * 2**20,
                           "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
                                "Networks": {"appnet": {"Aliases": ["web", "abc123"], "NetworkID": "n1",
                                                        "IPAddress": "10.0.9.2", "Links": None}}},
            "State": {"Status": "running", "Running": True, "StartedAt": "2027-01-15T08:00:01Z",
                      "FinishedAt": "0001-01-01T00:00:00Z"}}


def test_a_list_row_reads_back_state_times_ports_and_the_status_text():
    row = list_row("a" * 64, "web", "running", "Up 2 hours (healthy)",
                   Ports=[{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                          {"PrivatePort": 443, "Type": "tcp"}])
    c = from_list_row(row, "node1", "10.0.0.1", Interner(), NOW)
    assert (c.name, c.state.status, c.state.running, c.state.health) == ("web", "running", True, "healthy")
    assert render.status_text(c.state, NOW) == "Up 2 hours (healthy)"
    assert c.inspected is None and c.inspect() is None and c.create_config() is None
    assert c.networks == (("bridge", "n" * 64),) and c.mounts == (("data", "/data"),)
    assert c.endpoints() == {"bridge": {"NetworkID": "n" * 64, "IPAddress": "172.17.0.2"}}
    assert c.info.port_bindings == (PortBinding("", "8080", "80/tcp"),)
    summary = json.loads(c.summary + b"}")
    assert summary["Names"] == ["/node1/web"]
    assert summary["Ports"][0] == {"IP": "10.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}

    exited = from_list_row(list_row("b" * 64, "job", "exited", "Exited (3) 5 minutes ago"),
                           "node1", "10.0.0.1", Interner(), NOW)
    assert exited.state.exit_code == 3 and not exited.state.running
    assert render.status_text(exited.state, NOW + 59) == "Exited (3) 5 minutes ago"
    assert render.status_text(exited.state, NOW + 61) == "Exited (3) 6 minutes ago"
    created = from_list_row(list_row("c" * 64, "new", "created", "Created"), "node1", "10.0.0.1", Interner(), NOW)
    assert render.status_text(created.state, NOW) == "Created"


def test_an_inspected_record_keeps_the_create_config_for_rescheduling():
    e = Engine("10.0.0.1:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name = "node1"
    doc = inspect_doc("d" * 64, "web", POLICY)
    e._store(doc["Id"], e.record_of(doc))
    (c,) = e.containers.reschedulable()
    assert c.reschedules_on_node_failure and c.swarm_id == "s" * 64
    assert c.inspect() == doc
    assert c.create_config() == {
        "Name": "/web", "Config": doc["Config"], "HostConfig": doc["HostConfig"],
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["web", "abc123"]}}}}
    assert (c.info.memory, c.info.port_bindings) == (64 * 2**20, (PortBinding("", "8080", "80/tcp"),))
    summary = json.loads(c.summary + b"}")
    assert summary["Ports"] == [{"IP": "10.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    assert summary["NetworkSettings"]["Networks"]["appnet"]["Aliases"] == ["web", "abc123"]
    plain = inspect_doc("e" * 64, "db", {"team": "a"})
    e._store(plain["Id"], e.record_of(plain))
    assert [r.id for r in e.containers.reschedulable()] == ["d" * 64]


def test_storing_an_equal_record_is_no_change_and_equal_labels_are_shared():
    cache = ContainerCache()
    first = from_list_row(list_row("a" * 64, "web", "running", "Up 1 second"), "n", "10.0.0.1", cache.interner, NOW)
    again = from_list_row(list_row("a" * 64, "web", "running", "Up 1 second"), "n", "10.0.0.1", cache.interner, NOW)
    assert cache.store(first.id, first) and not cache.store(again.id, again)
    other = from_list_row(list_row("b" * 64, "db", "running", "Up 1 second"), "n", "10.0.0.1", cache.interner, NOW)
    assert other.labels is first.labels
    assert cache.counts() == (1, 1, 0, 0)


def test_status_text_is_kept_exactly_as_long_as_it_reads_the_same():
    state = State("running", running=True, started=NOW - 58.5)
    assert render._status(state, NOW) == ("Up 58 seconds", NOW + 0.5)
    assert render._status(State("running", running=True, started=NOW - 125), NOW)[1] == NOW + 55
    assert render._status(State("created"), NOW)[1] == float("inf")


def test_a_big_ps_answer_comes_in_chunks_that_join_to_the_whole_list():
    e = Engine("10.0.0.1:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name, e.id, e.state = "node1", "ID|10.0.0.1:2375", "Healthy"
    now = time.time()
    for i in range(2000):
        row = list_row(f"{i:064x}", f"c{i}", "running", "Up 3 minutes", Created=int(now) - i)
        e._store(row["Id"], from_list_row(row, e.name, e.ip, e.containers.interner, now))
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e}
    chunks = list(render.list_containers(cluster, {"all": "1"}))
    assert len(chunks) == 2000 // render.PS_ROWS and not any(c.endswith(b"]\n") for c in chunks[:-1])
    rows = json.loads(b"".join(chunks))
    assert [r["Names"][0] for r in rows[:3]] == ["/node1/c0", "/node1/c1", "/node1/c2"]
    assert len(rows) == 2000 and {r["Status"] for r in rows} == {"Up 3 minutes"}


def test_info_splices_each_nodes_encoded_rows_into_one_document():
    engines = []
    for n in (1, 2):
        e = Engine(f"10.0.0.{n}:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
        e.name, e.id, e.state, e.cpus, e.memory = f"node{n}", f"ID{n}|10.0.0.{n}:2375", "Healthy", 2, 2**30
        row = list_row(f"{n:064x}", f"c{n}", "running", "Up 3 minutes")
        e._store(row["Id"], from_list_row(row, e.name, e.ip, e.containers.interner, NOW))
        engines.append(e)
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in engines}
    info = json.loads(b"".join(render.info(cluster, [["Role", "primary"]])))
    rows = info["SystemStatus"]
    assert rows[:2] == [["Role", "primary"], ["Strategy", "spread"]] and ["Nodes", "2"] in rows
    assert [r for r in rows if r[0] == "  └ Status"] == [["  └ Status", "Healthy"]] * 2
    assert [r[1] for r in rows if r[0] == "  └ Containers"] == ["1 (1 Running, 0 Paused, 0 Stopped)"] * 2
    assert (info["Containers"], info["ContainersRunning"], info["NCPU"]) == (2, 2, 4)


def test_a_listed_container_removed_before_its_inspect_waits_for_none():
    e = Engine("10.0.0.1:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name, e.id, e.state = "node1", "ID1|10.0.0.1:2375", "Healthy"
    row = list_row("1" * 64, "gone", "running", "Up 3 minutes")
    e._store(row["Id"], from_list_row(row, e.name, e.ip, e.containers.interner, NOW))
    e._to_inspect[row["Id"]] = None
    assert e.listed_only == 1
    e.forget_container(row["Id"])  # its destroy event (or a 404 to its inspect)
    assert e.listed_only == 0 and len(e.containers) == 0  # a placement here inspects nothing first


async def test_a_placement_on_an_engine_known_from_its_listing_only_inspects_it_first(monkeypatch):
    """node1 looks empty from its listing, but its container reserves 1.5 GiB: once inspected, a
    1 GiB container goes to node2 instead."""
    engines = []
    for n in (1, 2):
        e = Engine(f"10.0.0.{n}:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
        e.name, e.id, e.state, e.cpus, e.memory = f"node{n}", f"ID{n}|10.0.0.{n}:2375", "Healthy", 2, 2 * 2**30
        engines.append(e)
    node1, node2 = engines
    row = list_row("1" * 64, "big", "running", "Up 3 minutes")
    node1._store(row["Id"], from_list_row(row, node1.name, node1.ip, node1.containers.interner, NOW))
    node1._to_inspect[row["Id"]] = None
    small = inspect_doc("2" * 64, "small", {})
    small["HostConfig"] = {"Memory": 2**29}
    node2._store(small["Id"], node2.record_of(small))
    inspected = []

    async def inspect_listed() -> None:
        doc = dict(inspect_doc(row["Id"], "big", {}), HostConfig={"Memory": 3 * 2**29})
        node1._store(doc["Id"], node1.record_of(doc))
        node1._to_inspect.clear()
        inspected.append(node1.name)

    async def create_on(engine, body, name, auth):
        return {"Id": engine.name}

    async def refresh(cid):
        return None

    monkeypatch.setattr(node1, "inspect_listed", inspect_listed)
    for e in engines:
        monkeypatch.setattr(e, "refresh_container", refresh)
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in engines}
    monkeypatch.setattr(cluster, "_create_on", create_on)
    engine, _ = await cluster.create_container({"Image": "busybox", "HostConfig": {"Memory": 2**30}}, None, None)
    assert inspected == ["node1"] and engine is node2


def test_info_ps_order_and_engine_lists_follow_a_change_of_any_one_engine():
    """The cluster-wide views are kept between calls, yet each shows a change of one engine at once."""
    engines = []
    for n in (1, 2, 3):
        e = Engine(f"10.0.0.{n}:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
        e.name, e.id, e.state, e.cpus, e.memory = f"node{n}", f"ID{n}|10.0.0.{n}:2375", "Healthy", 2, 2**30
        row = list_row(f"{n:064x}", f"c{n}", "running", "Up 3 minutes", Created=int(NOW) - 10 * n)
        e._store(row["Id"], from_list_row(row, e.name, e.ip, e.containers.interner, NOW))
        engines.append(e)
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in engines}

    def statuses() -> list[str]:
        return [r[1] for r in json.loads(b"".join(render.info(cluster, [])))["SystemStatus"] if r[0] == "  └ Status"]

    assert statuses() == ["Healthy"] * 3 and [e.name for e in cluster.healthy()] == ["node1", "node2", "node3"]
    engines[1].state = "Unhealthy"
    assert statuses() == ["Healthy", "Unhealthy", "Healthy"]
    assert [e.name for e in cluster.healthy()] == ["node1", "node3"] and len(cluster.validated()) == 3
    engines[0].name = "node9"  # sorted by name again
    assert [e.name for e in cluster.listed_engines()] == ["node2", "node3", "node9"]
    assert statuses() == ["Unhealthy", "Healthy", "Healthy"]
    engines[2].error = "cut off"
    assert ["  └ Error", "cut off"] in json.loads(b"".join(render.info(cluster, [])))["SystemStatus"]
    assert [c.name for _, c in cluster.newest_first()] == ["c1", "c2", "c3"]
    row = list_row(f"{4:064x}", "c4", "running", "Up 1 second", Created=int(NOW))
    engines[2]._store(row["Id"], from_list_row(row, "node3", engines[2].ip, engines[2].containers.interner, NOW))
    assert [c.name for _, c in cluster.newest_first()] == ["c4", "c1", "c2", "c3"]
    info = json.loads(b"".join(render.info(cluster, [])))
    assert info["Containers"] == 4 and [r[1] for r in info["SystemStatus"] if r[0] == "  └ Containers"] == [
        "1", "2 (2 Running, 0 Paused, 0 Stopped)", "1 (1 Running, 0 Paused, 0 Stopped)"]  # node2, node3, node9
    assert sum(len(n.containers) for n in cluster.nodes()) == 4
    engines[1].error = "gone again"
    for _ in range(CHANGES.LOG):  # more writes than are logged since: info is built whole again
        engines[0].updated_at = NOW
    assert ["  └ Error", "gone again"] in json.loads(b"".join(render.info(cluster, [])))["SystemStatus"]


def test_info_rows_come_in_blocks_and_only_a_changed_nodes_block_is_joined_again():
    cluster, engines = healthy_engines(2 * render.INFO_BLOCK + 9)
    first = render.info(cluster, [])
    assert len(first) == 2 + 3  # head, three blocks of node rows, tail
    engines[render.INFO_BLOCK + 5].error = "cut off"
    second = render.info(cluster, [])
    assert second[1] is first[1] and second[3] is first[3] and second[2] != first[2]
    rows = json.loads(b"".join(second))["SystemStatus"]
    assert [r[1] for r in rows if r[0] == "  └ Error"] == ["cut off"]
    assert sum(1 for r in rows if r[0] == "  └ Status") == len(engines)


async def test_keep_up_takes_the_changed_nodes_rows_again_a_slice_at_a_time(monkeypatch):
    cluster, engines = healthy_engines(40)
    render.info(cluster, [])
    for e in engines[5:30]:
        e.error = "cut off"
    monkeypatch.setattr(render, "KEEP_UP_SLICE", 10)
    slices = []
    real_sleep = asyncio.sleep

    async def counted(delay):
        slices.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(render.asyncio, "sleep", counted)
    await render.keep_up(cluster)
    assert len(slices) == 2  # 25 changed nodes, 10 at a time: the loop ran others twice between
    memo = cluster.view("info", render.InfoMemo)
    assert not memo.behind
    taken = []
    monkeypatch.setattr(render, "_node_part", lambda *a: taken.append(a) or (b"", render.ZERO_STATS))
    rows = json.loads(b"".join(render.info(cluster, [])))["SystemStatus"]
    assert taken == []  # keep_up left nothing for docker info to do
    assert [r[1] for r in rows if r[0] == "  └ Error"] == ["cut off"] * 25


def healthy_engines(count: int) -> tuple[Cluster, list[Engine]]:
    """A cluster of `count` Healthy engines node1..node<count>, with empty caches (no connection is made)."""
    engines = []
    for n in range(1, count + 1):
        e = Engine(f"10.0.{n // 200}.{n % 200}:2375", None, EngineOptions(), notify=lambda *_: None,
                   is_duplicate=lambda _: None)
        e.name, e.id, e.state, e.cpus, e.memory = f"node{n}", f"ID{n}|{e.addr}", "Healthy", 2, 2**30
        engines.append(e)
    cluster = Cluster(Scheduler(), EngineOptions())
    cluster.engines = {e.addr: e for e in engines}
    return cluster, engines


def test_scheduler_snapshots_are_taken_again_only_for_the_engines_that_changed():
    cluster, engines = healthy_engines(3)

    def add(engine: Engine, n: int) -> None:
        row = list_row(f"{n:064x}", f"c{n}", "running", "Up 1 second", Created=int(NOW))
        engine._store(row["Id"], from_list_row(row, engine.name, engine.ip, engine.containers.interner, NOW))

    before = cluster.nodes()
    add(engines[1], 1)
    after = cluster.nodes()
    assert [len(n.containers) for n in after] == [0, 1, 0]
    assert after[0] is before[0] and after[2] is before[2] and after[1] is not before[1]
    while engines[2].state == "Healthy":  # which engines are healthy changed: all taken again
        engines[2].record_failure(OSError("cut off"))
    assert [n.health for n in cluster.nodes()] == [100, 100, 0]
    for _ in range(CHANGES.LOG):  # more writes than are logged: all taken again
        engines[0].updated_at = NOW
    add(engines[0], 2)
    assert [len(n.containers) for n in cluster.nodes()] == [1, 1, 0]
    engines[1].forget_container(f"{1:064x}")
    assert [len(n.containers) for n in cluster.nodes()] == [1, 0, 0]
    assert cluster.scheduler.choose(ContainerSpec.from_create_body({}), cluster.nodes()).name == "node2"


def test_keep_up_follows_the_writes_so_a_create_after_a_quiet_spell_takes_one_snapshot_again(monkeypatch):
    """Writes the snapshots do not read (`updated_at`: every refresh) leave the `nodes` view in place;
    keep_up still follows them, so a change after more than CHANGES.LOG of them takes one engine again."""
    cluster, engines = healthy_engines(3)
    before = cluster.nodes()
    for _ in range(3):  # a minute at 5,000 engines: refreshes, seen by keep_up every second
        for _ in range(CHANGES.LOG // 2):
            engines[0].updated_at = NOW
        cluster.keep_up()
    taken: list[str] = []
    node = cluster.node
    monkeypatch.setattr(cluster, "node", lambda e, *rest: taken.append(e.name) or node(e, *rest))
    row = list_row(f"{9:064x}", "c9", "running", "Up 1 second", Created=int(NOW))
    engines[1]._store(row["Id"], from_list_row(row, "node2", engines[1].ip, engines[1].containers.interner, NOW))
    after = cluster.nodes()
    assert taken == ["node2"] and after[0] is before[0] and [len(n.containers) for n in after] == [0, 1, 0]


@pytest.mark.parametrize("live, full_rounds", [(True, [10, 20]), (False, list(range(1, 21)))])
async def test_the_periodic_refresh_lists_everything_only_every_tenth_round_while_events_flow(
        monkeypatch, live, full_rounds):
    """Each round reads /info (the health check); the full listing comes every FULL_REFRESH_EVERY-th
    round while the events stream has been open all along, and every round when it has not."""
    e = Engine("10.0.0.1:2375", None, EngineOptions(refresh_min=0.001, refresh_max=0.001),
               notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name, e.id, e.state, e._live = "node1", "ID|10.0.0.1:2375", "Healthy", live
    calls: list[str] = []
    rounds = asyncio.Event()

    async def info() -> None:
        calls.append("info")
        if calls.count("info") == 20:
            rounds.set()
            await asyncio.sleep(3600)

    async def listing() -> None:
        calls.append("list")

    monkeypatch.setattr(e, "refresh_info", info)
    monkeypatch.setattr(e, "refresh_all", listing)
    task = asyncio.create_task(e._refresh_loop())
    await asyncio.wait_for(rounds.wait(), 10)
    task.cancel()
    listed_after = [calls[:i].count("info") for i, c in enumerate(calls) if c == "list"]
    assert listed_after == [r for r in full_rounds if r < 20]


def test_a_listed_view_reads_its_own_labels_after_the_label_cache_was_cleared(monkeypatch):
    monkeypatch.setattr(Interner, "LIMIT", 0)  # every new label map clears the cache
    interner = Interner()
    for k in range(50):  # a freed label map's address is soon reused by the next one
        row = list_row(f"{k:064x}", f"c{k}", "running", "Up 1 second",
                       Labels={"team": f"t{k}"})
        record = from_list_row(row, "n", "10.0.0.1", interner, NOW)
        assert record.info.labels == {"team": f"t{k}"}  # what the scheduler's label rules read
        del row, record
    bare = [from_list_row(list_row(f"{k:064x}", f"b{k}", "running", "Up 1 second", Labels=None),
                          "n", "10.0.0.1", interner, NOW) for k in range(2)]
    assert bare[0].labels is bare[1].labels and not bare[0].labels


async def test_a_full_id_names_its_engine_at_once_until_the_container_or_its_engine_is_gone(monkeypatch):
    cluster, engines = healthy_engines(3)
    cid = f"{7:064x}"
    row = list_row(cid, "web", "running", "Up 1 second", Created=int(NOW))
    engines[2]._store(cid, from_list_row(row, "node3", engines[2].ip, engines[2].containers.interner, NOW))
    cluster.validated()  # the view, as any request has made it before

    def no_walk(self, key):
        raise AssertionError("asked every engine's cache")

    with monkeypatch.context() as m:
        m.setattr(ContainerCache, "__contains__", no_walk)
        engine, container = cluster.find_container(cid)
    assert (engine, container.name) == (engines[2], "web")
    engines[2].forget_container(cid)
    assert cid not in OWNERS
    with pytest.raises(Exception, match="No such container"):
        cluster.find_container(cid)
    engines[1]._store(cid, from_list_row(row, "node2", engines[1].ip, engines[1].containers.interner, NOW))
    assert cluster.find_container(cid)[0] is engines[1]
    await cluster.set_members([engines[0].addr, engines[2].addr])  # node2 leaves the cluster
    assert cid not in OWNERS
    with pytest.raises(Exception, match="No such container"):
        cluster.find_container(cid)


async def test_an_engine_that_left_the_cluster_is_let_go_of_with_its_cache():
    cluster, engines = healthy_engines(2)
    assert all(cluster._duplicate_of(e) is None for e in engines)  # validated: each its Docker ID's owner
    row = list_row(f"{1:064x}", "web", "running", "Up 1 second", Created=int(NOW))
    engines[1]._store(row["Id"], from_list_row(row, "node2", engines[1].ip, engines[1].containers.interner, NOW))
    left = weakref.ref(engines[1])
    await cluster.set_members([engines[0].addr])  # node2 leaves
    del engines[1:]
    assert [e.name for e in cluster.validated()] == ["node1"]
    for _ in range(CHANGES.LOG):  # the log of recent writers lets go of it too
        engines[0].updated_at = NOW
    gc.collect()
    assert left() is None
