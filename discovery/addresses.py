"""Engine addresses: `host:port` checks and classic Swarm's range patterns (`10.0.0.[10:20]:2375`)."""
from __future__ import annotations

import re

_RANGE = re.compile(r"^(.*)\[(\d+):(\d+)\](.*)$")
_HOST = re.compile(r"[0-9A-Za-z._-]+|\[[0-9A-Fa-f:.]+\]")
MAX_RANGE = 65536


def is_host_port(addr: str) -> bool:
    """True for `host:port` / `[v6]:port` with a port in 1..65535."""
    host, sep, port = addr.rpartition(":")
    return bool(sep and _HOST.fullmatch(host) and port.isdigit() and 1 <= int(port) <= 65535)


def expand(pattern: str) -> list[str]:
    """All addresses a pattern stands for; one `[a:b]` range (both ends included) at most."""
    match = _RANGE.match(pattern)
    if not match:
        return [pattern]
    head, first, last, tail = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    if first > last or last - first >= MAX_RANGE:
        raise ValueError(f"invalid range [{first}:{last}] in {pattern!r}")
    return [f"{head}{i}{tail}" for i in range(first, last + 1)]


def parse_list(entries: list[str]) -> list[str]:
    """Expand and check every entry; raises ValueError naming the first bad one."""
    addrs: list[str] = []
    for entry in entries:
        for addr in expand(entry.strip()):
            if not is_host_port(addr):
                raise ValueError(f"invalid address {addr!r}: expected host:port with a port in 1..65535")
            addrs.append(addr)
    return addrs
