"""What network and volume routes share: `node/name` pins, node-local names in lists, and the
filters of `ls` (dockerd's matching rules: `name` and `id` are searched as regular expressions,
`label` is `key` or `key=value`)."""
from __future__ import annotations

import re
from urllib.parse import unquote

from manager.api.call import Call
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.errors import ApiError, not_found


def path_name(call: Call) -> str:
    """The network or volume named in the path (`node/name` included), unescaped."""
    return unquote(call.args["name"])


def pinned(cluster: Cluster, ref: str) -> tuple[Engine | None, str]:
    """`node1/name` -> (node1's engine, "name"); a plain name -> (None, name). A prefix that
    names no node is an error: in a name given to Shoal, `x/` always means "on node x"."""
    node, sep, name = ref.partition("/")
    if not sep:
        return None, ref
    engine = cluster.engine_by_name(node)
    if engine is None or not name:
        raise not_found("node", node) if name else ApiError(400, f"invalid name {ref!r}")
    return engine, name


def qualified(engine: Engine, item: dict) -> dict:
    """A node-local object named `node/name`; a cluster-wide one as it is."""
    is_local = item.get("Scope", "local") == "local"
    return dict(item, Name=f"{engine.name}/{item['Name']}") if is_local else item


def check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    """dockerd's 400 for a filter key it does not know."""
    for key in filters:
        if key not in allowed:
            raise ApiError(400, f"Invalid filter '{key}'")


def searched(patterns: list[str], *texts: str) -> bool:
    """Does any pattern (a regular expression, or plain text when it is not one) occur in any text?"""
    for pattern in patterns:
        try:
            if any(re.search(pattern, t) for t in texts):
                return True
        except re.error:
            if any(pattern in t for t in texts):
                return True
    return False


def labels_match(wanted: list[str], labels: dict | None) -> bool:
    """Every `key` / `key=value` of `wanted` is among `labels`."""
    labels = labels or {}
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def on_node(nodes: list[str], engine: Engine) -> bool:
    """The `node` filter: the engine's name, ID or address is one of `nodes`."""
    return bool({engine.name, engine.id, engine.addr} & set(nodes))
