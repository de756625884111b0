"""Container names: the rules a new name must follow, and how names and `node/name` references are read."""
from __future__ import annotations

import re

from manager.errors import ApiError

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def plain_name(name: str) -> str:
    """`/web` (how engines store it) -> `web`."""
    return name.lstrip("/")


def check_name(name: str) -> str:
    """A name for a new container, as dockerd accepts it; 400 otherwise."""
    if not NAME_RE.match(name):
        raise ApiError(400, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return plain_name(name)


def split_node_ref(ref: str) -> tuple[str, str]:
    """`node1/web` -> ("node1", "web"); `web` and `/web` -> ("", "web")."""
    node, _, name = plain_name(ref).rpartition("/")
    return node, name
