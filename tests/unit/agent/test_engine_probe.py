"""The agent's engine check: `GET /_ping` over TCP or a unix socket, 200 means alive."""
from pathlib import Path

import pytest
from aiohttp import web

from agent.engine import EngineProbe
from lab.procs import free_port


def ping_app(status: int) -> web.Application:
    async def ping(request: web.Request) -> web.Response:
        return web.Response(status=status, text="OK")

    app = web.Application()
    app.router.add_get("/_ping", ping)
    return app


@pytest.mark.parametrize("status, alive", [(200, True), (500, False), (404, False)])
async def test_tcp_engine(status: int, alive: bool) -> None:
    runner = web.AppRunner(ping_app(status))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        for engine in (f"127.0.0.1:{port}", f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{port}/"):
            async with EngineProbe(engine, timeout=2) as probe:
                assert await probe.alive() is alive
    finally:
        await runner.cleanup()


async def test_unix_socket_engine(tmp_path: Path) -> None:
    runner = web.AppRunner(ping_app(200))
    await runner.setup()
    await web.UnixSite(runner, str(tmp_path / "docker.sock")).start()
    try:
        async with EngineProbe(f"unix://{tmp_path}/docker.sock", timeout=2) as probe:
            assert await probe.alive()
    finally:
        await runner.cleanup()


async def test_nothing_listening_is_not_alive() -> None:
    async with EngineProbe(f"127.0.0.1:{free_port()}", timeout=2) as probe:
        assert not await probe.alive()


async def test_tls_engine(tmp_path: Path) -> None:
    """With the TLS flags' context the probe speaks https (to `host:port` as to `https://`), and a
    certificate the engine does not trust is not alive."""
    from lab.tls import make_tls
    from shoal.tls import TlsConfig

    certs = make_tls(str(tmp_path / "ok"))
    server = TlsConfig(certs.server_cert, certs.server_key, certs.ca, verify=True).server_context()
    runner = web.AppRunner(ping_app(200))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server).start()
    try:
        good = TlsConfig(certs.cert, certs.key, certs.ca, verify=True).client_context()
        for engine in (f"127.0.0.1:{port}", f"https://127.0.0.1:{port}"):
            async with EngineProbe(engine, timeout=2, tls=good) as probe:
                assert await probe.alive()
        other = make_tls(str(tmp_path / "other"))
        strange = TlsConfig(other.cert, other.key, certs.ca, verify=True).client_context()
        async with EngineProbe(f"127.0.0.1:{port}", timeout=2, tls=strange) as probe:
            assert not await probe.alive()
        async with EngineProbe(f"127.0.0.1:{port}", timeout=2) as probe:  # plain HTTP to a TLS port
            assert not await probe.alive()
    finally:
        await runner.cleanup()
