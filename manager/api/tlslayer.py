"""TLS over a TCP connection with half-closes, for the listener and for hijacked streams to engines.

asyncio's own TLS (and uvloop's) ends the whole connection when the peer half-closes, and cannot
half-close itself. Docker's hijacked streams depend on half-closes: the docker CLI sends a TCP FIN
under its TLS session when stdin ends (at once for `docker run` without `-i`) and still reads the
output; dockerd, being Go, does the same. This layer runs the stdlib's TLS (`ssl.SSLObject` over
memory BIOs) on a plain TCP transport and passes a FIN through both ways, as Go's TLS does.

Towards the application it is an ordinary `asyncio.Transport`; aiohttp's connection handler and
`asyncio.StreamReader` run on it unchanged.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Callable

log = logging.getLogger("shoal.tls")

READ_CHUNK = 256 * 1024
PLAIN_HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
HTTP_METHOD_START = (b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC")


class TlsLayer(asyncio.Protocol):
    """The protocol on the TCP transport: TLS records in, the application's bytes out (and back).

    `handshake` resolves when the session is up (or fails with the TLS error); only then is the
    application protocol made and given a `TlsTransport`.
    """

    def __init__(self, context: ssl.SSLContext, app_factory: Callable[[], asyncio.BaseProtocol], *,
                 server_side: bool, server_hostname: str | None = None, handshake_timeout: float = 10.0) -> None:
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                    server_hostname=server_hostname)
        self.context = context
        self._server_side = server_side
        self._app_factory = app_factory
        self._handshake_timeout = handshake_timeout
        self.app: Any = None
        self.raw: asyncio.Transport | None = None
        self.transport: TlsTransport | None = None
        self.handshake: asyncio.Future = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._seen_data = False
        self._eof_passed = False

    # ---- from the TCP transport ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(self._handshake_timeout, self._too_slow)
        self._shake()

    def data_received(self, data: bytes) -> None:
        if not self._seen_data:
            self._seen_data = True
            if self._server_side and data.startswith(HTTP_METHOD_START):
                self._fail(ssl.SSLError("plain HTTP on a TLS port"), answer=PLAIN_HTTP_ANSWER)
                return
        self._incoming.write(data)
        if self.transport is None:
            self._shake()
        else:
            self._read()

    def eof_received(self) -> bool:
        """The peer's TCP half-close: after the handshake it is the application's EOF."""
        if self.transport is None:
            self._fail(ConnectionResetError("connection closed during the TLS handshake"))
            return False
        self._pass_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("connection lost in the TLS handshake"))
        if self.app is not None:
            self.app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.app is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.app is not None:
            self.app.resume_writing()

    # ---- TLS -------------------------------------------------------------------------------------
    def _shake(self) -> None:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.flush()
            return
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._fail(exc)
            return
        self.flush()
        if self._timer is not None:
            self._timer.cancel()
        self.transport = TlsTransport(self)
        self.app = self._app_factory()
        self.app.connection_made(self.transport)
        self.handshake.set_result(None)
        if self._incoming.pending:
            self._read()

    def _read(self) -> None:
        chunks, closed = [], False
        try:
            while chunk := self.tls.read(READ_CHUNK):
                chunks.append(chunk)
            closed = True  # a read of b"": the peer's close_notify
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            log.info("tls error remote=%s error=%r", self._peer(), str(exc))
            self.raw.abort()
            return
        self.flush()  # reading may have produced records to send (TLS 1.3 session tickets, key updates)
        if chunks:
            self.app.data_received(b"".join(chunks))
        if closed:
            self._pass_eof()

    def _pass_eof(self) -> None:
        if not self._eof_passed:
            self._eof_passed = True
            if not self.app.eof_received():
                self.transport.close()

    def flush(self) -> None:
        """Send what TLS has to send."""
        data = self._outgoing.read()
        if data and not self.raw.is_closing():
            self.raw.write(data)

    def _too_slow(self) -> None:
        self._fail(TimeoutError(f"no TLS handshake within {self._handshake_timeout:g}s"))

    def _fail(self, exc: BaseException, answer: bytes = b"") -> None:
        log.info("tls handshake failed remote=%s error=%r", self._peer(), str(exc) or type(exc).__name__)
        if not self.handshake.done():
            self.handshake.set_exception(exc)
            self.handshake.exception()  # retrieved: a failed handshake is logged once, here
        self.flush()  # the TLS alert, so the peer learns why
        if answer:
            self.raw.write(answer)
        self.raw.close()

    def _peer(self) -> str:
        peer = self.raw.get_extra_info("peername") if self.raw else None
        return f"{peer[0]}:{peer[1]}" if peer else "unknown"


class TlsTransport(asyncio.Transport):
    """What the application writes to and reads from: plain bytes, with `write_eof` a TCP half-close."""

    def __init__(self, layer: TlsLayer) -> None:
        super().__init__()
        self._layer = layer
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        try:
            self._layer.tls.write(data)
        except ssl.SSLError as exc:
            log.info("tls write failed error=%r", str(exc))
            self.abort()
            return
        self._layer.flush()

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """A TCP half-close under the TLS session, as Go's TLS (dockerd, the docker CLI) does."""
        self._layer.flush()
        if not self._layer.raw.is_closing():
            self._layer.raw.write_eof()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._layer.tls.unwrap()  # close_notify
        except (ssl.SSLError, ValueError):
            pass
        self._layer.flush()
        self._layer.raw.close()

    def abort(self) -> None:
        self._closing = True
        self._layer.raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._layer.raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._layer.tls
        if name == "sslcontext":
            return self._layer.context
        if name == "peercert":
            return self._layer.tls.getpeercert()
        return self._layer.raw.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._layer.raw.pause_reading()

    def resume_reading(self) -> None:
        self._layer.raw.resume_reading()

    def is_reading(self) -> bool:
        return self._layer.raw.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._layer.app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._layer.app

    def get_write_buffer_size(self) -> int:
        return self._layer.raw.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._layer.raw.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._layer.raw.set_write_buffer_limits(high, low)


async def open_tls_connection(host: str, port: int, context: ssl.SSLContext,
                              timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like `asyncio.open_connection(..., ssl=context)`, with half-closes (`writer.write_eof()`)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2 ** 16)
    protocol = asyncio.StreamReaderProtocol(reader)
    _, layer = await asyncio.wait_for(loop.create_connection(
        lambda: TlsLayer(context, lambda: protocol, server_side=False, server_hostname=host,
                         handshake_timeout=timeout), host, port), timeout)
    try:
        await layer.handshake
    except BaseException:
        layer.raw.close()
        raise
    return reader, asyncio.StreamWriter(layer.transport, protocol, reader, loop)
