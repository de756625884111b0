"""Short calls to an engine (manager.cluster.calls, Engine.call_raw) against local servers that
answer with exactly the bytes each test gives: keep-alive reuse, chunked bodies, answers cut
short, silence, and what is not HTTP."""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from manager.api.routes import build_app
from manager.cluster.calls import BodyLost, Calls, NoAnswer
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine, EngineDown
from manager.cluster.options import EngineOptions
from scheduler import Scheduler

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A loopback server running `handler` per connection; its port."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, host, 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    """Per connection: read a request head (and its body), write the next answer, repeat."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            head = await reader.readuntil(b"\r\n\r\n")
            HEADS.append(head)
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
            if length and length[0]:
                HEADS.append(await reader.readexactly(length[0]))
            writer.write(answer)
            await writer.drain()
        if not then_close:
            await reader.read()  # wait for the client to close
    return handler


HEADS: list[bytes] = []  # what the servers read: request heads, and bodies after theirs
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\n[]"


@pytest.fixture(autouse=True)
def _clear() -> None:
    HEADS.clear()


async def test_calls_reuse_one_kept_alive_connection_and_send_the_request_as_given():
    connections = []

    async def counted(reader, writer):
        connections.append(writer)
        await answering(OK, OK, OK, OK)(reader, writer)

    async with server(counted) as port:
        calls = Calls(f"127.0.0.1:{port}", None, 5)
        for _ in range(3):
            answer = await calls.call("GET", "/v1.41/containers/json?all=1", {}, None, 5)
            assert (answer.status, answer.body, answer.headers["content-type"]) == (200, b"[]", "application/json")
        await calls.call("POST", "/v1.41/x", {"Content-Type": "application/json"}, b'{"a":1}', 5)
        assert [conn._answer for conn in calls._idle] == [None]  # nor its last answer's bytes
        calls.close()
    assert len(connections) == 1
    assert HEADS[0].startswith(b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 7\r\n" in HEADS[-2] and HEADS[-1] == b'{"a":1}'


async def test_a_v6_engine_is_dialled_bare_and_named_with_brackets_in_host():
    async with server(answering(OK), host="::1") as port:
        calls = Calls(f"[::1]:{port}", None, 5)
        assert (await calls.call("GET", "/_ping", {}, None, 5)).status == 200
        calls.close()
    assert HEADS[0] == f"GET /_ping HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n".encode()


async def test_a_chunked_answer_and_an_answer_without_a_body():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
               b"3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n")
    async with server(answering(chunked, b"HTTP/1.1 204 No Content\r\n\r\n")) as port:
        calls = Calls(f"127.0.0.1:{port}", None, 5)
        assert (await calls.call("GET", "/a", {}, None, 5)).body == b"[1,2]"
        empty = await calls.call("POST", "/b", {}, None, 5)
        assert (empty.status, empty.body) == (204, b"")
        assert b"Content-Length: 0\r\n" in HEADS[-1]
        calls.close()


async def test_an_answer_without_a_length_ends_with_its_connection():
    """What dockerd's TLS port answers to plain HTTP: HTTP/1.0, no headers, the text, then close."""
    plain_to_tls = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    async with server(answering(plain_to_tls, then_close=True)) as port:
        answer = await Calls(f"127.0.0.1:{port}", None, 5).call("GET", "/v1.41/info", {}, None, 5)
    assert (answer.status, answer.body) == (400, b"Client sent an HTTP request to an HTTPS server.\n")


async def test_an_answer_cut_short_is_a_lost_body_and_the_connection_is_not_kept():
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[1,2"
    async with server(answering(cut, then_close=True)) as port:
        calls = Calls(f"127.0.0.1:{port}", None, 5)
        with pytest.raises(BodyLost):
            await calls.call("GET", "/a", {}, None, 5)
        assert calls._idle == []


async def test_silence_is_a_timeout_and_not_http_is_a_connection_error():
    async def silent(reader, writer):
        await reader.read()

    async with server(silent) as port:
        with pytest.raises(TimeoutError):
            await Calls(f"127.0.0.1:{port}", None, 5).call("GET", "/a", {}, None, 0.2)
    async with server(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", then_close=True)) as port:
        with pytest.raises(ConnectionError, match="not HTTP"):
            await Calls(f"127.0.0.1:{port}", None, 5).call("GET", "/a", {}, None, 5)


async def test_a_head_deadline_bounds_the_wait_for_the_answer_to_begin_not_the_answer():
    async def slow_body(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[")
        await asyncio.sleep(0.5)
        writer.write(b"]")
        await reader.read()

    async def silent(reader, writer):
        await reader.read()

    async with server(slow_body) as port:
        calls = Calls(f"127.0.0.1:{port}", None, 5)
        assert (await calls.call("DELETE", "/images/x", {}, None, head=0.3)).body == b"[]"
        calls.close()
    async with server(silent) as port:
        calls = Calls(f"127.0.0.1:{port}", None, 5)
        with pytest.raises(NoAnswer):
            await calls.call("POST", "/images/prune", {}, None, head=0.2)
        assert calls._idle == []


async def test_an_engine_call_with_a_head_deadline_sends_bytes_and_query_as_given():
    async def silent(reader, writer):
        await reader.read()

    async with aiohttp.ClientSession() as session:
        async with server(answering(OK)) as port:
            engine = Engine(f"127.0.0.1:{port}", session, EngineOptions(), lambda e, ev: None, lambda e: None)
            status, raw, _ = await engine.call_raw("POST", "/networks/create", query="a=%2F1", body=b'{"Name":"n"}',
                                                   client_version="1.30", head=5)
            assert (status, raw) == (200, b"[]")
            assert HEADS[0].startswith(b"POST /v1.30/networks/create?a=%2F1 HTTP/1.1\r\n")
            assert b"Content-Type: application/json\r\n" in HEADS[0] and HEADS[1] == b'{"Name":"n"}'
            await engine.stop()
        async with server(silent) as port:
            engine = Engine(f"127.0.0.1:{port}", session, EngineOptions(), lambda e, ev: None, lambda e: None)
            with pytest.raises(EngineDown, match=r"did not answer POST /images/prune within 0.2s"):
                await engine.call_raw("POST", "/images/prune", head=0.2)
            assert engine.failures == 1
            await engine.stop()


async def test_an_engine_turns_transport_failures_into_engine_down_and_counts_them():
    cut = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[1"
    async with aiohttp.ClientSession() as session:
        async with server(answering(OK, cut, then_close=True)) as port:
            engine = Engine(f"127.0.0.1:{port}", session, EngineOptions(), lambda e, ev: None, lambda e: None)
            assert await engine.get_json("/images/json", params={"all": "0", "filters": '{"a b":1}'}) == []
            assert HEADS[0].startswith(b"GET /v1.41/images/json?all=0&filters=%7B%22a+b%22%3A1%7D HTTP/1.1")
            with pytest.raises(EngineDown, match="Lost the connection to"):
                await engine.call("GET", "/containers/json")
            assert engine.failures == 1
        with pytest.raises(EngineDown, match=f"Cannot connect to the Docker daemon at tcp://127.0.0.1:{port}"):
            await engine.call("GET", "/info")
        assert engine.failures == 2
        await engine.stop()


async def test_container_actions_go_over_the_engines_kept_alive_connection():
    """`docker start` (and stop, rm...) through the app: the engine's answer as it is, then the
    re-inspect, all on the one connection the short calls keep (the engine has no aiohttp session
    here: a connection of the action's own would fail)."""
    cid = "c" * 64
    doc = (b'{"Id":"' + cid.encode() + b'","Name":"/web","Created":"2027-01-15T08:00:00Z","Config":{"Labels":{}},'
           b'"HostConfig":{},"NetworkSettings":{},"State":{"Status":"running","Running":true}}')
    inspected = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(doc), doc)
    not_modified = b"HTTP/1.1 304 Not Modified\r\nApi-Version: 1.41\r\n\r\n"
    conflict = (b'HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n'
                b'{"message":"is busy"}\n')
    connections = []

    async def engine_side(reader, writer):
        connections.append(1)
        await answering(b"HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n", inspected,
                        not_modified, inspected, conflict, inspected)(reader, writer)

    async with server(engine_side) as port:
        cluster = Cluster(Scheduler(), EngineOptions())
        engine = Engine(f"127.0.0.1:{port}", None, EngineOptions(), lambda e, ev: None, lambda e: None)
        engine.name, engine.id, engine.state = "node1", f"ID|127.0.0.1:{port}", "Healthy"
        cluster.engines[engine.addr] = engine
        engine._store(cid, engine.record_of(json.loads(doc), doc))
        async with TestClient(TestServer(build_app(cluster))) as client:
            answers = [await client.post(f"/v1.41/containers/web/{action}", data=body, headers=headers)
                       for action, body, headers in (("start", None, None), ("start", None, None),
                                                     ("stop", b"{}", {"Content-Type": "application/json"}))]
            assert [a.status for a in answers] == [204, 304, 409]
            assert (await answers[2].json())["message"] == "is busy"
        await engine.stop()
    assert connections == [1]
    assert HEADS[0].startswith(f"POST /v1.41/containers/{cid}/start HTTP/1.1\r\n".encode())
    assert HEADS[1].startswith(f"GET /v1.41/containers/{cid}/json HTTP/1.1\r\n".encode())
    assert HEADS[4].startswith(f"POST /v1.41/containers/{cid}/stop HTTP/1.1\r\n".encode()) and HEADS[5] == b"{}"
