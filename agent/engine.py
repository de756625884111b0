"""The local Docker engine's health as the agent sees it: does `GET /_ping` answer 200?"""
from __future__ import annotations

import logging
import ssl
from types import TracebackType

import aiohttp

log = logging.getLogger(__name__)


def engine_url(engine: str, tls: bool = False) -> tuple[str, str | None]:
    """(base URL, unix socket path or None) for `host:port`, `tcp://`, `http://`, `https://` or
    `unix://`; with `tls` a TCP engine is reached over https."""
    if engine.startswith("unix://"):
        return "http://localhost", engine[len("unix://"):]
    engine = engine.removeprefix("tcp://")
    if not engine.startswith(("http://", "https://")):
        engine = f"{'https' if tls else 'http'}://{engine}"
    return engine.rstrip("/"), None


class EngineProbe:
    """`alive()` pings the engine; state changes are logged once (use as `async with`)."""

    def __init__(self, engine: str, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.engine = engine
        self._base, self._socket = engine_url(engine, tls is not None)
        self._tls = tls
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._up: bool | None = None

    async def __aenter__(self) -> EngineProbe:
        connector = (aiohttp.UnixConnector(path=self._socket, force_close=True) if self._socket
                     else aiohttp.TCPConnector(force_close=True, ssl=self._tls or True))  # a new connection each
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def alive(self) -> bool:
        """True when the engine answered `/_ping` with 200 within the timeout."""
        assert self._session is not None, "EngineProbe used outside `async with`"
        reason = ""
        try:
            async with self._session.get(f"{self._base}/_ping") as resp:
                up = resp.status == 200
                reason = f"status={resp.status}"
        except (aiohttp.ClientError, TimeoutError) as err:
            up, reason = False, f"error={type(err).__name__}"
        if up != self._up:
            if up:
                log.info("agent: engine answering engine=%s", self.engine)
            else:
                log.warning("agent: engine not answering, registration not refreshed engine=%s %s",
                            self.engine, reason)
            self._up = up
        return up
