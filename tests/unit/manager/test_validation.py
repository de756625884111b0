"""Validating an engine takes one `/info` call: the API version it speaks comes from the
`Api-Version` header dockerd sends with every answer, `/version` is asked only when that header
is missing. Against a local HTTP server standing in for an engine."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from manager.cluster.engine import Engine
from manager.cluster.options import EngineOptions
from tests.support.standin import serving

INFO = {"ID": "ABCD:EFGH", "Name": "node1", "NCPU": 2, "MemTotal": 2 << 30, "ServerVersion": "20.10.24",
        "Architecture": "x86_64", "Labels": ["size=xxl"]}


@pytest.fixture
async def stand_in():
    """(address, the paths asked for, the answer headers /info sends)."""
    asked: list[str] = []
    info_headers: dict[str, str] = {}

    async def info(request):
        asked.append(request.path)
        return web.json_response(INFO, headers=info_headers)

    async def version(request):
        asked.append(request.path)
        return web.json_response({"Version": "20.10.24", "ApiVersion": "1.40"})

    app = web.Application()
    app.router.add_get("/v1.41/info", info)
    app.router.add_get("/v1.41/version", version)
    async with serving(app) as addr:
        yield addr, asked, info_headers


async def validated(addr: str) -> Engine:
    async with aiohttp.ClientSession() as session:
        engine = Engine(addr, session, EngineOptions(), lambda e, ev: None, lambda e: None)
        assert await engine._validate()
        return engine


async def test_the_api_version_comes_from_the_info_answer(stand_in):
    addr, asked, headers = stand_in
    headers["Api-Version"] = "1.39"
    engine = await validated(addr)
    assert asked == ["/v1.41/info"]
    assert (engine.name, engine.version, engine.api_version) == ("node1", "20.10.24", "1.39")
    assert engine.versioned("/containers/json") == "/v1.39/containers/json"
    assert engine.labels["size"] == "xxl"


async def test_a_newer_engine_is_spoken_to_at_our_version(stand_in):
    addr, asked, headers = stand_in
    headers["Api-Version"] = "1.47"
    assert (await validated(addr)).api_version == "1.41"


async def test_without_the_header_version_is_asked(stand_in):
    addr, asked, _ = stand_in
    engine = await validated(addr)
    assert asked == ["/v1.41/info", "/v1.41/version"]
    assert engine.api_version == "1.40"
