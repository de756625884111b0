"""The one proxy (stream a request to an engine, or to the primary manager, and its answer back)
and the one hijack."""
from __future__ import annotations

import asyncio
import re

from aiohttp import web
from multidict import CIMultiDict

from manager.api.call import After
from manager.api.tlslayer import open_tls_connection
from manager.cluster.engine import CONNECTION_ERRORS, CONNECT_TIMEOUT, HEAD_TIMEOUT, EngineDown, Upstream

# Answers that may rightly stay silent for long (dockerd sends no headers before the first byte).
SILENT = re.compile(r"/containers/[^/]+/(wait|attach|logs|stats)|/exec/[^/]+/start|/images/(.+/)?get")
STOP_ACTION = re.compile(r"/containers/[^/]+/(stop|restart)")


def head_timeout(path: str, query: dict) -> float | None:
    """How long the engine may take to start answering `path` (None: as long as it likes)."""
    if SILENT.fullmatch(path):
        return None
    if STOP_ACTION.fullmatch(path):  # the engine waits `t` seconds for the container first
        t = query.get("t", "")
        return HEAD_TIMEOUT + (int(t) if t.isdecimal() and len(t) < 7 else 10)
    return HEAD_TIMEOUT


HOP_BY_HOP = {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
              "proxy-authenticate", "proxy-authorization", "host", "content-length"}
CHUNK = 64 * 1024
HIGH_WATER = 256 * 1024


def is_upgrade(request: web.Request) -> bool:
    """Does the client ask to hijack the connection (attach, exec start)?"""
    return "upgrade" in request.headers.get("Connection", "").lower() and bool(request.headers.get("Upgrade"))


def forward_headers(headers) -> CIMultiDict:
    """Request or response headers minus hop-by-hop ones."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


async def proxy(request: web.Request, engine: Upstream, path: str, version: str | None, *,
                body: bytes | None = None, query: str | None = None,
                after: After | None = None, whole: bool = False) -> web.StreamResponse:
    """Send the client's request to `engine` at `path` and stream the answer back as it comes.

    Streams: headers go out as soon as the engine sends its own (`/wait`, `/events`, `logs -f`
    depend on it). `after(engine, status)` (a cache refresh) runs once the engine has finished, and
    before the client gets an answer that is not a stream.

    `whole`: the answer is short and comes whole (start, stop, rm: `engine` is an Engine): sent
    over the engine's kept-alive short-call connection. A connection of its own was a new TCP
    connection for nearly every such call at 5,000 engines (none idle to that engine).
    """
    if query is None:
        query = request.rel_url.raw_query_string
    if whole:
        if body is None and request.body_exists:  # small (a start's old HostConfig): the engine judges it
            body = await request.read()
        status, payload, headers = await engine.call_raw(
            request.method, path, query=query, body=body, headers=forward_headers(request.headers),
            client_version=version, head=head_timeout(path, request.query))
        if after is not None:
            await after(engine, status)
        return web.Response(status=status, body=payload, headers=forward_headers(headers))
    data = body
    if data is None and request.body_exists:
        data = request.content.iter_chunked(CHUNK)
    upstream = await engine.open(request.method, path, query=query,
                                 data=data, headers=forward_headers(request.headers),
                                 head=head_timeout(path, request.query), client_version=version)
    async with upstream:
        complete = upstream.content_length is not None or upstream.status in (204, 304)
        if after is not None and complete:
            # A whole answer: refresh the cache before the client sees it, so its next call
            # (`docker inspect` right after `docker network connect`) reads the new state.
            payload = await upstream.read()
            await after(engine, upstream.status)
            return web.Response(status=upstream.status, reason=upstream.reason, body=payload,
                                headers=forward_headers(upstream.headers))
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                  headers=forward_headers(upstream.headers))
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        await resp.prepare(request)
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
    if after is not None:
        await after(engine, upstream.status)
    return resp


class _Grabber:
    """Takes the bytes aiohttp had buffered after the upgrade request and sends them upstream."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.writer.write(data)
        return False, b""

    def feed_eof(self) -> None:
        pass


class _ClientSide(asyncio.Protocol):
    """The client's socket after the takeover: stdin to the engine, half-close aware."""

    def __init__(self, transport: asyncio.Transport, writer: asyncio.StreamWriter) -> None:
        self.transport = transport
        self.writer = writer
        self.can_write = asyncio.Event()
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > HIGH_WATER:
            self.transport.pause_reading()
            asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError:
            return
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        # No more stdin: pass the half-close on, keep our side open for the output.
        if not self.writer.is_closing() and self.writer.can_write_eof():
            self.writer.write_eof()
        return True

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.can_write.set()
        self.writer.close()


async def hijack(request: web.Request, engine: Upstream, path: str, version: str | None,
                 body: bytes) -> web.StreamResponse:
    """Attach / exec start (`body`, already read): upgrade both connections to raw byte pipes and
    relay both ways."""
    tls = engine.options.tls
    try:
        if tls is None:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(engine.ip, engine.port),
                                                    CONNECT_TIMEOUT)
        else:
            reader, writer = await open_tls_connection(engine.ip, engine.port, tls, CONNECT_TIMEOUT)
    except CONNECTION_ERRORS as exc:
        raise engine.unreachable(exc) from exc
    try:
        query = request.rel_url.raw_query_string
        lines = [f"{request.method} {engine.versioned(path, version)}{'?' + query if query else ''}"
                 " HTTP/1.1", f"Host: {engine.addr}"]
        lines += [f"{k}: {v}" for k, v in forward_headers(request.headers).items()]
        protocol = request.headers.get("Upgrade") or "tcp"  # tcp (attach, exec), h2c (BuildKit), websocket
        lines += ["Connection: Upgrade", f"Upgrade: {protocol}", f"Content-Length: {len(body)}", "", ""]
        writer.write("\r\n".join(lines).encode() + body)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            status, reason, headers = _parse_head(head)
            length = int(headers.get("Content-Length", "0") or 0) if status != 101 else 0
            payload = await asyncio.wait_for(reader.readexactly(length), HEAD_TIMEOUT) if length else b""
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            raise EngineDown(500, f"{engine.label} did not answer the {request.method} "
                                  f"{path} upgrade: {exc!r}") from None
        if status != 101:
            return web.Response(status=status, reason=reason, body=payload,
                                headers={"Content-Type": headers.get("Content-Type", "text/plain")})
        return await _relay(request, reader, writer, reason, headers)
    finally:
        writer.close()


async def _relay(request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 reason: str, headers: CIMultiDict) -> web.StreamResponse:
    """Answer the client with the engine's 101 (its headers: a websocket's Sec-WebSocket-Accept)
    and relay the bytes both ways."""
    transport = request.transport
    request.protocol.set_parser(_Grabber(writer))
    client = _ClientSide(transport, writer)
    transport.set_protocol(client)
    protocol = headers.get("Upgrade") or "tcp"
    answer = forward_headers(headers)
    if protocol == "tcp":
        answer.setdefault("Content-Type", "application/vnd.docker.raw-stream")
    answer.update({"Connection": "Upgrade", "Upgrade": protocol})
    resp = web.StreamResponse(status=101, reason=reason or "UPGRADED", headers=answer)
    await resp.prepare(request)
    transport.resume_reading()
    try:
        while data := await reader.read(CHUNK):
            await client.can_write.wait()
            if transport.is_closing():
                break
            transport.write(data)
        if not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()
    except ConnectionError:
        pass
    finally:
        transport.close()
        request.protocol.force_close()
    return resp


def _parse_head(head: bytes) -> tuple[int, str, CIMultiDict]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = status_line.split(" ", 2)
    headers = CIMultiDict()
    for line in header_lines:
        if ":" in line:
            key, _, value = line.partition(":")
            headers.add(key.strip(), value.strip())
    return int(status), (reason or [""])[0], headers
