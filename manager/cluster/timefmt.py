"""Docker's time and size renderings (go-units), read back from engine list rows and written where the
manager answers from its cache."""
from __future__ import annotations

import re
from datetime import datetime, timezone

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_time(value: str | None) -> float | None:
    """RFC 3339 with nanoseconds (dockerd's format) to unix seconds; None for zero/empty."""
    m = _RFC3339.match(value or "")
    if not m or value.startswith("0001-01-01"):
        return None
    zone = m[3] if m[3] and m[3] != "Z" else "+00:00"
    return datetime.fromisoformat(m[1] + zone).timestamp() + float(m[2] or 0)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: `Less than a second`, `About a minute`, `3 hours`, ..."""
    s = int(seconds)
    m, h = s // 60, round(seconds / 3600)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // (24 * 7)} weeks"
    if h < 24 * 365 * 2:
        return f"{h // (24 * 30)} months"
    return f"{h // (24 * 365)} years"


def next_change(seconds: float) -> float:
    """The next age (seconds) at which `human_duration` of a growing age may read differently."""
    if seconds < 60:
        return int(seconds) + 1
    if seconds < 3600:
        return (int(seconds) // 60 + 1) * 60
    return (round(seconds / 3600) + 0.5) * 3600


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
          "month": 30 * 86400, "year": 365 * 86400}
_DURATION = re.compile(r"(\d+|About an?|Less than a) (second|minute|hour|day|week|month|year)s?")


def parse_duration(text: str) -> float:
    """The age a `human_duration` text stands for (its lower end); 0 when there is none."""
    m = _DURATION.search(text)
    if not m:
        return 0.0
    count = int(m[1]) if m[1].isdigit() else 0 if m[1].startswith("Less") else 1
    return count * _UNITS[m[2]]


def bytes_size(n: float) -> str:
    """go-units BytesSize: `0 B`, `20 MiB`, `24.72 GiB`."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g} {units[i]}"


def rfc3339(ts: float) -> str:
    """Unix seconds to `2026-11-27T18:36:35Z`."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
