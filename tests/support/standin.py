"""A local HTTP server standing in for an engine in unit tests (on a free loopback port)."""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

from aiohttp import web

from lab.procs import free_port


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields its `host:port`."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()
