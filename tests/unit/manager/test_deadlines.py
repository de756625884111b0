"""Deadlines on engine calls: an engine that does not start answering in time is an error (not a
hang) unless the call may rightly stay silent; a streamed upload's deadline starts when it ends; a
pull that makes no progress ends with a clear error. Against a local HTTP server standing in for a
slow engine."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from lab.procs import free_port
from manager.api import proxy
from manager.api.proxy import head_timeout
from manager.cluster import images
from manager.cluster.engine import HEAD_TIMEOUT, Engine, EngineDown
from manager.cluster.options import EngineOptions
from manager.errors import ApiError
from tests.support.standin import serving


@pytest.mark.parametrize("path, query, wanted", [
    ("/containers/abc/wait", {}, None),
    ("/containers/abc/logs", {"follow": "1"}, None),
    ("/containers/abc/attach", {}, None),
    ("/containers/abc/stats", {}, None),
    ("/exec/abc/start", {}, None),
    ("/images/busybox/get", {}, None),
    ("/images/get", {}, None),
    ("/containers/abc/stop", {"t": "300"}, HEAD_TIMEOUT + 300),
    ("/containers/abc/restart", {}, HEAD_TIMEOUT + 10),
    ("/containers/abc/stop", {"t": "soon"}, HEAD_TIMEOUT + 10),
    ("/containers/abc/start", {}, HEAD_TIMEOUT),
    ("/images/busybox/push", {}, HEAD_TIMEOUT),
    ("/build", {}, HEAD_TIMEOUT),
])
def test_which_calls_may_stay_silent(path, query, wanted):
    assert head_timeout(path, query) == wanted


@pytest.fixture
async def slow_engine():
    """The address of a stand-in engine: /slow answers after a second, /upload after reading the
    whole body, /images/create sends one progress line and then nothing for a second."""

    async def slow(request):
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    async def upload(request):
        await request.read()
        return web.Response(text="read")

    async def pull(request):
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"status":"Pulling from x"}\n')
        await asyncio.sleep(1.0)
        return resp

    app = web.Application()
    app.router.add_get("/v1.41/slow", slow)
    app.router.add_post("/v1.41/upload", upload)
    app.router.add_post("/v1.41/images/create", pull)
    async with serving(app) as addr:
        yield addr


@pytest.fixture
async def engine(slow_engine):
    async with aiohttp.ClientSession() as session:
        yield Engine(slow_engine, session, EngineOptions(pull_stall=0.5), lambda e, ev: None, lambda e: None)


async def test_an_engine_that_does_not_answer_in_time_is_an_error(engine):
    began = time.monotonic()
    with pytest.raises(EngineDown, match=r"did not answer GET /slow within 0.3s"):
        await engine.open("GET", "/slow", head=0.3)
    assert time.monotonic() - began < 1.5
    assert engine.failures == 1


async def test_a_silent_call_may_take_its_time(engine):
    resp = await engine.open("GET", "/slow", head=None)
    assert await resp.text() == "late"


async def test_an_uploads_deadline_starts_when_the_upload_ends(engine):
    async def chunks():
        for _ in range(3):
            await asyncio.sleep(0.3)  # slower than the deadline in all
            yield b"x" * 1000

    resp = await engine.open("POST", "/upload", data=chunks(), head=0.5)
    assert await resp.text() == "read"


async def test_a_pull_without_progress_ends_with_a_clear_error(engine):
    began = time.monotonic()
    with pytest.raises(ApiError, match=r"^pull stalled on 127.0.0.1:\d+: no progress for 0.5s$"):
        async for _ in images.pull(engine, "fromImage=x"):
            pass
    assert time.monotonic() - began < 1.5
    assert engine.failures == 0  # a silent registry is not the engine's failure


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\n{\"message\":"])
async def test_a_hijack_the_engine_leaves_unanswered_ends_with_an_error(answer, monkeypatch):
    """No head, or a refusal whose body never ends: an error within the deadline, not a hang."""
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", free_port())
    monkeypatch.setattr(proxy, "HEAD_TIMEOUT", 0.3)
    async with server, aiohttp.ClientSession() as session:
        engine = Engine(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", session, EngineOptions(),
                        lambda e, ev: None, lambda e: None)
        request = make_mocked_request("POST", "/v1.41/containers/c1/attach?stream=1",
                                      headers={"Connection": "Upgrade", "Upgrade": "tcp"})
        began = time.monotonic()
        with pytest.raises(EngineDown, match=r"did not answer the POST /containers/c1/attach upgrade"):
            await asyncio.wait_for(proxy.hijack(request, engine, "/containers/c1/attach", "1.41", b""), 3)
        assert time.monotonic() - began < 1.5
