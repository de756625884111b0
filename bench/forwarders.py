"""Reference forwarders for bench.overlay: the least an HTTP proxy on aiohttp does (its server takes
each request, a client sends it on over a keep-alive connection, the answer goes back; no routing,
validation, cache or metrics), with aiohttp's client (`aiohttp`) or with Shoal's own short-call
client (`lean`, manager.cluster.calls: the least the card's stack can do), and a raw TCP relay
(`tcp`, no HTTP at all), so that Shoal's overhead on a request can be set against what aiohttp
itself and the extra hop cost on this machine.

    python -m bench.forwarders aiohttp|lean|tcp PORT ENGINE_ADDR
"""
from __future__ import annotations

import asyncio
import sys
from typing import Awaitable, Callable

import aiohttp
import uvloop
from aiohttp import web

from manager.cluster.calls import Calls

JSON = {"Content-Type": "application/json"}
Send = Callable[[str, str, bytes], Awaitable[tuple[int, bytes]]]  # method, path and query, body


def aiohttp_client(engine: str) -> Send:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=64),
                                    auto_decompress=False)

    async def send(method: str, target: str, body: bytes) -> tuple[int, bytes]:
        async with session.request(method, f"http://{engine}{target}", data=body or None, headers=JSON) as resp:
            return resp.status, await resp.read()
    return send


def lean_client(engine: str) -> Send:
    calls = Calls(engine, None, connect_timeout=5)

    async def send(method: str, target: str, body: bytes) -> tuple[int, bytes]:
        answer = await calls.call(method, target, JSON, body or None)
        return answer.status, answer.body
    return send


async def http_forwarder(port: int, send: Send) -> None:
    """An aiohttp server on 127.0.0.1:`port` whose one handler forwards with `send`."""

    async def forward(request: web.Request) -> web.Response:
        status, body = await send(request.method, request.rel_url.raw_path_qs, await request.read())
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()


class _Relay(asyncio.Protocol):
    """One side of a relayed connection: what it receives goes out on the other side."""

    def __init__(self, peer: "_Relay | None" = None) -> None:
        self.peer, self.transport, self.held = peer, None, []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.held.append(data)
        else:
            self.peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def tcp_relay(port: int, engine: str) -> None:
    """Relay every connection to 127.0.0.1:`port` to `engine`, bytes as they come."""
    loop = asyncio.get_running_loop()
    host, engine_port = engine.rsplit(":", 1)
    connecting: set[asyncio.Task] = set()

    def accepted() -> _Relay:
        client = _Relay()

        async def connect() -> None:
            _, upstream = await loop.create_connection(lambda: _Relay(client), host, int(engine_port))
            client.peer = upstream
            for data in client.held:
                upstream.transport.write(data)

        task = loop.create_task(connect())
        connecting.add(task)
        task.add_done_callback(connecting.discard)
        return client

    await loop.create_server(accepted, "127.0.0.1", port)


async def serve(kind: str, port: int, engine: str) -> None:
    if kind == "tcp":
        await tcp_relay(port, engine)
    else:
        await http_forwarder(port, (aiohttp_client if kind == "aiohttp" else lean_client)(engine))
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
