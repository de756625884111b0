"""`shoal manage`'s checked configuration (a leaf: what the flags say, nothing loaded to serve it)."""
from __future__ import annotations

from dataclasses import dataclass

from manager.cluster.options import EngineOptions
from scheduler import Scheduler
from shoal.flags import UsageError
from shoal.tls import TlsConfig


@dataclass
class ManageConfig:
    """What `shoal manage` runs with, from its checked flags."""

    hosts: list[str]
    discovery: str
    discovery_opts: dict[str, str]
    heartbeat: float
    scheduler: Scheduler
    engine: EngineOptions
    cors: bool
    advertise: str | None
    create_retry: int = 0
    experimental: bool = False
    tls: TlsConfig | None = None
    replication: bool = False
    replication_ttl: float = 20.0
    data_dir: str = ""
    metrics_addr: str | None = None  # a plain HTTP listener for GET /metrics only


def listen_target(host: str) -> tuple[str, str | int]:
    """`tcp://h:p`, `h:p`, `:p` or `unix:///path` -> ("tcp", (h, p)) / ("unix", path)."""
    if host.startswith("unix://"):
        return "unix", host[len("unix://"):]
    rest = host.removeprefix("tcp://")
    hostname, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"invalid listen address {host!r}: expected tcp://host:port or unix:///path")
    return "tcp", (hostname or "0.0.0.0", int(port))
