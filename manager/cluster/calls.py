"""Short HTTP/1.1 calls to one engine over kept-alive connections (`Calls`): the request's bytes
go out, the status, headers and body come back, parsed by httptools (llhttp, what uvicorn uses).

The cache's listings and inspects, the manager's own JSON calls and the client's JSON requests it
sends on to engines (manager.api.fanout.send_each: network and volume create, inspect and rm, prune,
`system df`, image rm) go this way. aiohttp's client spent about 350 µs of CPU on each such call
here (request and response objects, URL parsing, timers, the connector), this about 150 µs; at a
start on 1,000 engines its client was a quarter of the manager's CPU (py-spy), and on an overlay
`network create` its share of the manager's CPU was 0.2 of 1.4 ms. Streams, uploads, hijacks and the
proxy stay on aiohttp.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Mapping, NamedTuple

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

IDLE_KEPT = 8  # idle connections kept per engine; more are closed once their call is done


class BodyLost(ConnectionError):
    """The connection broke after the answer had begun."""


class NoAnswer(Exception):
    """An answer did not start within its deadline (here, and for aiohttp's calls in engine.send)."""


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: CIMultiDictProxy[str]


class _Connection(asyncio.Protocol):
    """One connection to the engine, one call at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        self._answer: asyncio.Future[Answer] | None = None
        self._head: asyncio.Future[None] | None = None
        self._began = False
        self._until_eof = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def send(self, request: bytes) -> tuple[asyncio.Future[None], asyncio.Future[Answer]]:
        """Write `request`; the futures of its answer's head (done too when the call fails) and of
        the whole answer."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._head, self._answer = loop.create_future(), loop.create_future()
        self._began, self._until_eof, self.reusable = False, False, False
        self.transport.write(request)
        return self._head, self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self._until_eof:  # an answer without a length ends with its connection
            self.on_message_complete()
        self._fail(exc or ConnectionResetError("the engine closed the connection"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"the engine's answer is not HTTP: {exc}"))
            self.close()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self._began = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        # e.g. dockerd's HTTP/1.0 "Client sent an HTTP request to an HTTPS server." on a TLS port
        self._until_eof = not any(name.lower() in ("content-length", "transfer-encoding")
                                  for name, _ in self._headers)
        self._headed()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        answer, self._answer = self._answer, None  # an idle connection keeps no answer alive
        if answer is not None and not answer.done():
            answer.set_result(Answer(self.parser.get_status_code(), b"".join(self._body),
                                     CIMultiDictProxy(CIMultiDict(self._headers))))
        self._headers, self._body = [], []

    def _headed(self) -> None:
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self._headed()
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            if self._began and not isinstance(exc, BodyLost):
                exc = BodyLost(str(exc) or type(exc).__name__)
            answer.set_exception(exc)


class Calls:
    """Short calls to the engine at `addr` (`host:port` or `[v6]:port`; TLS with `tls`), over the
    connections kept idle."""

    def __init__(self, addr: str, tls: ssl.SSLContext | None, connect_timeout: float) -> None:
        host, _, port = addr.rpartition(":")
        self.host, self.port, self.tls = host.strip("[]"), int(port), tls
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._host_header = f"Host: {addr}\r\n".encode()  # a v6 address keeps its brackets here

    async def call(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
                   timeout: float | None = None, head: float | None = None) -> Answer:
        """Send one request (`target`: path and query) and read its answer: the whole of it within
        `timeout` seconds, its head (status and headers) within `head` (None: no deadline). Raises
        OSError (ConnectionError, ssl.SSLError; BodyLost once the answer had begun), NoAnswer when
        the head deadline passed, or TimeoutError."""
        lines = [f"{method} {target} HTTP/1.1\r\n".encode(), self._host_header]
        lines += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n".encode())
        lines.append(b"\r\n")
        if body:
            lines.append(body)
        conn, answering = None, None
        async with asyncio.timeout(timeout):
            try:
                async with asyncio.timeout(head) as started:
                    conn = await self._connection()
                    headed, answering = conn.send(b"".join(lines))
                    await headed
                answer = await answering
            except BaseException as exc:
                if answering is not None:
                    answering.cancel()  # nobody waits for it any more
                if conn is not None:
                    conn.close()
                if isinstance(exc, TimeoutError) and started.expired():
                    raise NoAnswer(f"no answer within {head:g}s") from None
                raise
        if conn.reusable and not conn.closed and len(self._idle) < IDLE_KEPT:
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    def close(self) -> None:
        """Close the idle connections."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self.tls,
                                                   server_hostname=self.host if self.tls else None)
        return conn
