"""Nodes as `docker node` sees them: a stable ID per engine, and the availability and labels set
with `docker node update`, kept in the cluster state (etcd or the state file)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

from manager.cluster.engine import Engine
from manager.errors import ApiError

AVAILABILITIES = ("active", "pause", "drain")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def node_id(engine: Engine) -> str:
    """25 lowercase letters and digits (a swarm-mode node ID's shape), stable for the engine's Docker ID."""
    number = int.from_bytes(hashlib.sha256(engine.id.split("|")[0].encode()).digest(), "big")
    digits = []
    for _ in range(25):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(digits)


@dataclass
class NodeSettings:
    """What `docker node update` changes on one node; `version` counts the updates."""

    availability: str = "active"
    labels: dict[str, str] = field(default_factory=dict)
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_state(cls, value: dict | None) -> NodeSettings:
        value = value or {}
        return cls(availability=value.get("availability", "active"), labels=dict(value.get("labels") or {}),
                   version=int(value.get("version", 1)), created_at=float(value.get("created_at", 0)),
                   updated_at=float(value.get("updated_at", 0)))

    def as_state(self) -> dict:
        return asdict(self)


def updated(settings: NodeSettings, spec: dict, version: str | None) -> NodeSettings:
    """The settings after a `POST /nodes/{id}/update` with body `spec` at `version`; 400 or 409 when
    the request cannot be applied."""
    if version is None or not version.isdigit():
        raise ApiError(400, "invalid node version: the update needs ?version=<Version.Index>")
    if int(version) != settings.version:
        raise ApiError(409, f"update out of sequence: node version is {settings.version}, not {version}")
    if not isinstance(spec, dict):
        raise ApiError(400, "invalid node spec: expected a JSON object")
    availability = spec.get("Availability") or "active"
    if availability not in AVAILABILITIES:
        raise ApiError(400, f"invalid availability {availability!r}: expected active, pause or drain")
    role = spec.get("Role") or "worker"
    if role != "worker":
        raise ApiError(400, "Shoal nodes are Docker engines and cannot be promoted: the role stays worker "
                            "(managers are `shoal manage --replication`)")
    labels = spec.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) and k
                                               for k, v in labels.items()):
        raise ApiError(400, "invalid node labels: expected an object of strings")
    now = time.time()
    return NodeSettings(availability=availability, labels=dict(labels), version=settings.version + 1,
                        created_at=settings.created_at or now, updated_at=now)
