"""The API listener on a real socket (a cluster with no engines): size limits answered with their
own statuses in dockerd's JSON shape, slow senders cut off, the catch-all 500 logged with an ID."""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import ssl

import pytest

from manager.api import listener, render
from manager.api.jsonio import MAX_BODY
from manager.api import images
from manager.api.routes import ROUTES, build_app, resolve
from manager.cluster.cluster import Cluster
from manager.cluster.options import EngineOptions
from scheduler import Scheduler
from shoal.tls import TlsConfig
from lab.procs import free_port
from lab.tls import make_tls


@pytest.fixture
async def api():
    """(host, port) of a manager API with no engines, served by the real runner."""
    cluster = Cluster(Scheduler(), EngineOptions())
    await cluster.start()
    runner = listener.ApiRunner(build_app(cluster))
    await runner.setup()
    port = free_port()
    await listener.web.TCPSite(runner, "127.0.0.1", port).start()
    yield "127.0.0.1", port
    await runner.cleanup()
    await cluster.close()


@pytest.fixture
async def tls_api(tmp_path):
    """((host, port), a client context with a certificate) of a --tlsverify manager API with no engines."""
    certs = make_tls(str(tmp_path))
    cluster = Cluster(Scheduler(), EngineOptions())
    await cluster.start()
    runner = listener.ApiRunner(build_app(cluster))
    await runner.setup()
    port = free_port()
    server = TlsConfig(certs.server_cert, certs.server_key, certs.ca, verify=True).server_context()
    await listener.TlsSite(runner, "127.0.0.1", port, server).start()
    yield ("127.0.0.1", port), TlsConfig(certs.cert, certs.key, certs.ca, verify=True).client_context()
    await runner.cleanup()
    await cluster.close()


async def exchange(addr, data: bytes, timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> tuple[int, dict]:
    """Send raw bytes (over TLS with `tls`), read until the server closes or answers; (status, JSON body)."""
    reader, writer = await asyncio.open_connection(*addr, ssl=tls)
    try:
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        return int(head.split()[1]), json.loads(body)
    finally:
        writer.close()


async def test_a_long_url_is_414(api):
    path = "/containers/json?filters=" + "x" * listener.MAX_REQUEST_LINE
    status, body = await exchange(api, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert (status, body) == (414, {"message": f"request URI too long: the limit is {listener.MAX_REQUEST_LINE} bytes"})


async def test_a_big_header_is_431(api):
    status, body = await exchange(api, b"GET /_ping HTTP/1.1\r\nX-Registry-Auth: " +
                                  b"a" * listener.MAX_HEADER + b"\r\n\r\n")
    assert status == 431 and body["message"].startswith("request header too large")


async def test_too_many_headers_is_431(api):
    headers = "".join(f"X-H{i}: v\r\n" for i in range(listener.MAX_HEADERS + 1))
    status, body = await exchange(api, f"GET /_ping HTTP/1.1\r\n{headers}\r\n".encode())
    assert (status, body) == (431, {"message": f"too many request headers: the limit is {listener.MAX_HEADERS}"})


async def test_a_header_under_the_limit_is_fine(api):
    status, _ = await exchange(api, b"GET /version HTTP/1.1\r\nHost: x\r\nX-Registry-Auth: " + b"a" * 20000 + b"\r\n\r\n")
    assert status == 200


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_413(api, chunked):
    body = b"{" + b" " * MAX_BODY + b"}"
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n\r\n" % len(body) + body
    status, answer = await exchange(api, b"POST /containers/create HTTP/1.1\r\nHost: x\r\n" + framing)
    assert status == 413 and answer["message"].startswith("request body too large")
    assert answer["message"].endswith("the limit is 2 MiB")


async def test_a_malformed_request_gets_a_json_400(api):
    status, body = await exchange(api, b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n")
    assert status == 400 and body["message"].startswith("bad HTTP request")


async def test_slow_headers_are_cut_off(api, monkeypatch):
    monkeypatch.setattr(listener, "HEADER_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection(*api)
    writer.write(b"GET /_ping HTTP/1.1\r\n")  # ...and the rest never comes
    answer = await asyncio.wait_for(reader.read(), 3)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'{"message":"request headers not received within 0.5s"}' in answer
    writer.close()


async def test_the_limits_and_the_header_deadline_hold_over_tls_too(tls_api, monkeypatch):
    addr, tls = tls_api
    status, body = await exchange(addr, b"GET /_ping HTTP/1.1\r\nX-A: " + b"a" * listener.MAX_HEADER + b"\r\n\r\n",
                                  tls=tls)
    assert status == 431 and body["message"].startswith("request header too large")
    status, body = await exchange(addr, b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{"
                                  % (MAX_BODY + 1), tls=tls)
    assert status == 413 and body["message"].startswith("request body too large")
    monkeypatch.setattr(listener, "HEADER_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection(*addr, ssl=tls)
    writer.write(b"GET /_ping HTTP/1.1\r\n")  # the handshake is done, the head never ends
    assert (await asyncio.wait_for(reader.read(), 3)).startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_silent_connection_is_cut_off_too(api, monkeypatch):
    monkeypatch.setattr(listener, "HEADER_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection(*api)
    assert (await asyncio.wait_for(reader.read(), 3)).startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_slow_body_or_a_kept_alive_connection_is_not_cut(api, monkeypatch):
    monkeypatch.setattr(listener, "HEADER_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection(*api)
    writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(1.0)  # idle between requests: only the keep-alive timeout applies
    body = b'{"Name": 5}'
    writer.write(b"POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{" % len(body))
    await asyncio.sleep(1.0)  # the head is in: a slow body is not a slow head
    writer.write(body[1:])
    status_line = b""
    while not status_line.startswith(b"HTTP/1.1 400"):
        status_line = await asyncio.wait_for(reader.readline(), 3)
    writer.close()


async def test_the_catch_all_500_carries_a_request_id_that_is_logged(api, monkeypatch, caplog):
    def broken(*args):
        raise KeyError("Version")

    monkeypatch.setattr(render, "version", broken)
    with caplog.at_level(logging.ERROR, logger="shoal.api"):
        status, body = await exchange(api, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500
    request_id = body["message"].split("request ID ")[1].split(",")[0]
    assert len(request_id) == 12
    assert body["message"].endswith("KeyError: 'Version'")
    assert f"internal error request_id={request_id} method=GET path=/version" in caplog.text


RAW_BODIES = {images.session}  # a BuildKit session's bytes go to the hijack as they are
# (method, path, body, the 400's message): every route whose handler reads a body or a typed query
BAD_INPUT = [
    ("POST", "/containers/create", {"Env": 1}, "invalid request body: Env: expected an array, got 1"),
    ("POST", "/containers/web/update", {"Memory": "1g"}, 'invalid request body: Memory: expected an integer, got "1g"'),
    ("POST", "/containers/web/exec", {"Cmd": [1]},
     "invalid request body: Cmd: expected a string or an array of strings, got [1]"),
    ("POST", "/exec/e1/start", {"Detach": "yes"}, 'invalid request body: Detach: expected true or false, got "yes"'),
    ("POST", "/commit?container=web", {"Labels": ["a"]}, 'invalid request body: Labels: expected an object, got ["a"]'),
    ("POST", "/networks/create", {"Name": 5}, "invalid request body: Name: expected a string, got 5"),
    ("POST", "/networks/n1/connect", {"Container": 5}, "invalid request body: Container: expected a string, got 5"),
    ("POST", "/networks/n1/disconnect", {}, "invalid request body: Container: is required"),
    ("POST", "/volumes/create", {"DriverOpts": {"size": 1}},
     "invalid request body: DriverOpts.size: expected a string, got 1"),
    ("POST", "/nodes/node1/update?version=1", {"Labels": {"a": 1}},
     "invalid request body: Labels.a: expected a string, got 1"),
    ("POST", "/auth", {"username": 5}, "invalid request body: username: expected a string, got 5"),
    ("POST", "/build?memory=lots", None, 'invalid build parameters: memory: expected an integer, got "lots"'),
    *[("GET", f"/{what}?filters=%7B%22label%22%3A5%7D", None,
       "invalid filter '{\"label\":5}': label: expected an array of strings or an object of booleans, got 5")
      for what in ("containers/json", "images/json", "networks", "volumes", "nodes", "events")],
    *[("POST", f"/{what}/prune?filters=%7B%22until%22%3A5%7D", None,  # checked before any engine is asked
       "invalid filter '{\"until\":5}': until: expected an array of strings or an object of booleans, got 5")
      for what in ("containers", "images", "networks", "volumes")],
]


@pytest.mark.parametrize("method, path, body, message", BAD_INPUT)
async def test_every_body_shoal_reads_is_checked_before_anything_else(api, method, path, body, message):
    """The cluster has no engine, node, network or exec here: a 400 about the body (not a 404 about
    the object) proves the body is validated first, by the model, for every route that reads one."""
    data = b"" if body is None else json.dumps(body).encode()
    status, answer = await exchange(api, f"{method} /v1.41{path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                         f"application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    assert (status, answer["message"]) == (400, message)


def test_every_handler_that_reads_input_is_in_the_list_above():
    """A route added later that reads a body or typed parameters must get a model and a case above;
    nothing reads the request by hand (`request.read()`, `.json()`...) outside manager.api.jsonio."""
    checked = {resolve(method, path.split("?")[0])[0] for method, path, _, _ in BAD_INPUT}
    for _, _, handler in ROUTES:
        source = inspect.getsource(handler)
        assert not re.search(r"request\.(read|json|text|post)\(", source), handler.__qualname__
        reads = re.search(r"\b(read_model|read_body|validate|parse_filters)\(", source)
        if reads and handler not in RAW_BODIES:
            assert handler in checked, f"{handler.__module__}.{handler.__qualname__} reads input: add a case"
