"""The HTTP listener under the API: limits on what a client may send, and a deadline for headers.

aiohttp answers a request line over MAX_REQUEST_LINE, a header over MAX_HEADER or more than
MAX_HEADERS headers with a plain-text 400; here they get dockerd's JSON error shape and the
statuses HTTP has for them (414, 431). A client that has not sent a complete request head within
HEADER_TIMEOUT of connecting, or of starting its next request, is answered 408 and cut off (so a
slow sender cannot hold connections open); an idle keep-alive connection closes after KEEPALIVE.
`TlsSite` serves it over TLS (manager.api.tlslayer: half-closes pass, as hijacked streams need).
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from manager.api.jsonio import encode
from manager.api.tlslayer import TlsLayer

log = logging.getLogger("shoal.api")

MAX_REQUEST_LINE = 64 * 1024  # must differ from MAX_HEADER: the limit tells which one was hit
MAX_HEADER = 32 * 1024
MAX_HEADERS = 128
HEADER_TIMEOUT = 10.0
KEEPALIVE = 120.0


def _error_body(message: str) -> bytes:
    return encode({"message": message}) + b"\n"


class ApiProtocol(web.RequestHandler):
    """aiohttp's connection handler with JSON answers to malformed requests and a header deadline."""

    _header_timer: asyncio.TimerHandle | None = None
    _armed_at_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and not self._request_in_progress and not self._messages:
            self._arm()  # the first bytes of a new request
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:
            self._disarm()  # a whole request head arrived

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._armed_at_count = self._request_count
        self._header_timer = self._loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = self.transport
        if (transport is None or transport.is_closing() or self._request_in_progress or self._messages
                or self._request_count != self._armed_at_count):
            return  # a request got through meanwhile: not a slow sender
        peer = transport.get_extra_info("peername") or ("unknown", "")
        log.info("request head too slow remote=%s:%s timeout=%ss", *peer[:2], HEADER_TIMEOUT)
        body = _error_body(f"request headers not received within {HEADER_TIMEOUT:g}s")
        transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        transport.close()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request aiohttp could not parse or handle: dockerd's JSON error, the right status."""
        if isinstance(exc, LineTooLong):
            url = exc.args[1] == MAX_REQUEST_LINE
            status = 414 if url else 431
            message = (f"request URI too long: the limit is {MAX_REQUEST_LINE} bytes" if url
                       else f"request header too large: the limit is {MAX_HEADER} bytes per header")
        elif isinstance(exc, BadHttpMessage) and "Too many headers" in exc.message:
            status, message = 431, f"too many request headers: the limit is {MAX_HEADERS}"
        elif isinstance(exc, BadHttpMessage):
            message = f"bad HTTP request: {exc.message}"
        else:
            message = HTTPStatus(status).phrase
        log.info("bad request status=%d remote=%s error=%r", status, request.remote, message)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        resp = web.Response(status=status, body=_error_body(message), content_type="application/json")
        resp.force_close()
        return resp


class ApiServer(web.Server):
    """Makes ApiProtocol connection handlers."""

    def __call__(self) -> ApiProtocol:
        return ApiProtocol(self, loop=self._loop, max_line_size=MAX_REQUEST_LINE, max_field_size=MAX_HEADER,
                           max_headers=MAX_HEADERS, keepalive_timeout=KEEPALIVE, access_log=None)


class ApiRunner(web.AppRunner):
    """An AppRunner whose connections are ApiProtocol handlers."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(app, handler_cancellation=True, access_log=None)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return ApiServer(made.request_handler, request_factory=made.request_factory,
                         handler_cancellation=True)


class TlsSite(web.BaseSite):
    """A TCP listener of the runner's server behind TLS (`context`: the server side)."""

    __slots__ = ("_host", "_port", "_context")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(runner)
        self._host, self._port, self._context = host, port, context

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        self._server = await asyncio.get_running_loop().create_server(
            lambda: TlsLayer(self._context, server, server_side=True, handshake_timeout=HEADER_TIMEOUT),
            self._host, self._port, reuse_address=True)
