"""The engine connection options `shoal manage` flags set (a leaf: no aiohttp, so that a flag
error is reported without loading the manager)."""
from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    """Timing knobs and the TLS client context (None: plain TCP) from `shoal manage` flags."""

    refresh_min: float = 30.0
    refresh_max: float = 60.0
    failure_retry: int = 3
    tls: ssl.SSLContext | None = None
    pull_stall: float = 60.0
