"""After a start every engine lists (and turns Healthy) before the background inspects of any
engine begin; an engine whose validation fails does not hold them up. Against local HTTP servers
standing in for engines."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Awaitable, Callable

import aiohttp
from aiohttp import web

from manager.cluster.engine import HEALTHY, Engine
from manager.cluster.gates import Foreground
from manager.cluster.options import EngineOptions
from tests.support.standin import serving

V = "/v1.41"


def stand_in(name: str, info_gate: asyncio.Event, info_status: int = 200) -> tuple[web.Application, list[str]]:
    """An engine with one container whose `/info` waits for `info_gate`; the inspects it serves."""
    inspected: list[str] = []
    cid = name * 64
    row = {"Id": cid, "Names": [f"/{name}-c"], "Image": "busybox", "ImageID": "sha256:" + "1" * 64,
           "Command": "sh", "Created": 1, "Ports": [], "Labels": {}, "State": "running", "Status": "Up",
           "HostConfig": {"NetworkMode": "default"}, "NetworkSettings": {"Networks": {}}, "Mounts": []}

    async def info(request: web.Request) -> web.Response:
        await info_gate.wait()
        if info_status != 200:
            return web.json_response({"message": "not ready"}, status=info_status)
        return web.json_response({"ID": f"{name}:ID", "Name": name, "NCPU": 2, "MemTotal": 2 << 30,
                                  "ServerVersion": "20.10.24"}, headers={"Api-Version": "1.41"})

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)  # open until the engine stops
        return resp

    async def inspect(request: web.Request) -> web.Response:
        inspected.append(request.match_info["id"])
        return web.json_response({"Id": cid, "Name": f"/{name}-c", "Image": "sha256:" + "1" * 64,
                                  "Created": "2026-01-01T00:00:00Z", "Path": "sh", "Args": [],
                                  "Config": {"Image": "busybox", "Labels": {}},
                                  "State": {"Status": "running", "Running": True},
                                  "HostConfig": {"NetworkMode": "default"},
                                  "NetworkSettings": {"Networks": {}, "Ports": {}}, "Mounts": []})

    def answer(body: list) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(body)
        return handler

    app = web.Application()
    app.router.add_get(V + "/info", info)
    app.router.add_get(V + "/events", events)
    app.router.add_get(V + "/containers/json", answer([row]))
    app.router.add_get(V + "/containers/{id}/json", inspect)
    app.router.add_get(V + "/images/json", answer([]))
    app.router.add_get(V + "/networks", answer([]))
    return app, inspected


@contextlib.asynccontextmanager
async def started(*addrs: str):
    async with aiohttp.ClientSession() as session:
        engines = [Engine(a, session, EngineOptions(), lambda e, ev: None, lambda e: None) for a in addrs]
        for engine in engines:
            engine.start()
        try:
            yield engines
        finally:
            await asyncio.gather(*(e.stop() for e in engines))


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_inspects_wait_until_every_engine_has_listed():
    open_now, held = asyncio.Event(), asyncio.Event()
    open_now.set()
    (fast_app, fast_inspected), (slow_app, slow_inspected) = stand_in("a", open_now), stand_in("b", held)
    async with serving(fast_app) as fast, serving(slow_app) as slow, started(fast, slow) as (a, b):
        try:
            await until(lambda: a.state == HEALTHY)
            await asyncio.sleep(0.3)
            assert fast_inspected == [] and a.listed_only == 1  # b has not answered /info yet
        finally:
            held.set()  # else the stand-in's shutdown waits for its /info answer
        await until(lambda: b.state == HEALTHY and fast_inspected and slow_inspected)
        assert a.listed_only == 0 and b.listed_only == 0


async def test_an_engine_that_fails_validation_does_not_hold_the_inspects_up():
    open_now = asyncio.Event()
    open_now.set()
    (good_app, good_inspected), (bad_app, _) = stand_in("a", open_now), stand_in("b", open_now, info_status=500)
    async with serving(good_app) as good, serving(bad_app) as bad, started(good, bad) as (a, b):
        await until(lambda: good_inspected == ["a" * 64])
        assert b.state != HEALTHY and "not ready" in b.error


async def test_expected_work_keeps_quiet_waiting_until_done_once():
    gate = Foreground(1)
    done = gate.expect()
    waiting = asyncio.create_task(gate.quiet())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    done()
    done()  # a second call must not release someone else's work
    await asyncio.wait_for(waiting, 1)
    other = gate.expect()
    assert not gate._idle.is_set()
    other()
    await asyncio.wait_for(gate.quiet(), 1)
