"""Shoal's own re-inspect after a create or a start stands for the one the action's event asks for."""
from __future__ import annotations

import asyncio
import json

import pytest

from manager.cluster import engine as engine_module
from manager.cluster.engine import Engine
from manager.cluster.options import EngineOptions

CID = "c" * 64


class FakeDockerd:
    """Answers `GET /containers/<id>/json` with the container's current state, counting them; an
    inspect can be held until released."""

    def __init__(self) -> None:
        self.status = "created"
        self.inspects = 0
        self.hold: asyncio.Event | None = None

    async def call_raw(self, method: str, path: str, **_: object) -> tuple[int, bytes, dict]:
        assert (method, path) == ("GET", f"/containers/{CID}/json")
        self.inspects += 1
        status = self.status  # what the engine would answer at the time the inspect arrives
        if self.hold is not None:
            await self.hold.wait()
        doc = {"Id": CID, "Name": "/web", "Created": "2027-01-15T08:00:00.5Z", "Image": "sha256:img",
               "Config": {"Image": "busybox", "Labels": {}}, "HostConfig": {}, "NetworkSettings": {},
               "State": {"Status": status, "Running": status == "running"}}
        return 200, json.dumps(doc).encode(), {}


@pytest.fixture
def engine(monkeypatch) -> tuple[Engine, FakeDockerd]:
    dockerd = FakeDockerd()
    e = Engine("10.0.0.1:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
    e.name, e.id, e.state = "node1", "ID|10.0.0.1:2375", "Healthy"
    monkeypatch.setattr(e, "call_raw", dockerd.call_raw)
    return e, dockerd


def event(action: str) -> dict:
    return {"Type": "container", "Action": action, "Actor": {"ID": CID, "Attributes": {"name": "web"}}}


async def test_the_event_after_shoals_own_inspect_asks_for_none(engine):
    e, dockerd = engine
    await e.refresh_after(CID, "create", 201)
    await e._apply(event("create"))
    assert dockerd.inspects == 1
    dockerd.status = "running"
    await e.refresh_after(CID, "start", 204)
    await e._apply(event("start"))
    assert dockerd.inspects == 2 and e.containers.get(CID).state.running
    dockerd.status = "exited"
    await e._apply(event("die"))  # not Shoal's: inspected
    assert dockerd.inspects == 3 and not e.containers.get(CID).state.running


async def test_an_event_that_came_first_lends_its_inspect_to_shoals_call(engine):
    e, dockerd = engine
    dockerd.status, dockerd.hold = "running", asyncio.Event()
    following = asyncio.create_task(e._apply(event("start")))  # the events stream was quicker
    await asyncio.sleep(0)
    call = asyncio.create_task(e.refresh_after(CID, "start", 204))
    await asyncio.sleep(0)
    assert not call.done()  # it waits for the event's inspect
    dockerd.hold.set()
    record = await call
    await following
    assert dockerd.inspects == 1 and record.state.running and e.containers.get(CID).state.running


async def test_a_call_that_changed_nothing_or_failed_covers_no_event(engine):
    e, dockerd = engine
    await e.refresh_after(CID, "start", 304)  # already started: dockerd sends no event
    await e.refresh_after(CID, "start", 409)
    await e._apply(event("start"))  # someone else's start, straight on the engine
    assert dockerd.inspects == 3


async def test_a_cover_ends_with_any_later_event_of_the_container_and_after_a_while(engine, monkeypatch):
    e, dockerd = engine
    await e.refresh_after(CID, "start", 204)  # its event is lost (the stream was cut)
    dockerd.status = "exited"
    await e._apply(event("die"))
    dockerd.status = "running"
    await e._apply(event("start"))  # a start straight on the engine: not covered by Shoal's
    assert dockerd.inspects == 3 and e.containers.get(CID).state.running
    monkeypatch.setattr(engine_module, "COVER_FOR", 0.0)
    await e._apply(event("die"))
    await e.refresh_after(CID, "start", 204)
    await e._apply(event("start"))  # too late to be the one Shoal's inspect stood for
    assert dockerd.inspects == 6
    await e.refresh_after(CID, "start", 204)  # the event's inspect is too old to stand for this call's
    assert dockerd.inspects == 7


async def test_an_event_during_shoals_inspect_is_passed_on_once_the_cache_holds_what_it_read(engine):
    """What an event is passed on to (the inventory, `docker events`) reads the cache after it, as
    it did when each event made its own inspect."""
    e, dockerd = engine
    running_when_passed_on: list[bool] = []
    e.notify = lambda engine, ev: running_when_passed_on.append(engine.containers.get(CID).state.running)
    dockerd.status, dockerd.hold = "running", asyncio.Event()
    call = asyncio.create_task(e.refresh_after(CID, "start", 204))
    await asyncio.sleep(0)
    following = asyncio.create_task(e._apply(event("start")))
    await asyncio.sleep(0.05)
    assert running_when_passed_on == [] and not following.done()
    dockerd.hold.set()
    await asyncio.gather(call, following)
    assert running_when_passed_on == [True] and dockerd.inspects == 1
