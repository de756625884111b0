"""Volume routes, as classic Swarm places volumes: a volume is made on every healthy node (so a
container placed anywhere finds it), on one with `node/name`, or on the nodes a
`com.docker.swarm.whitelists` label admits; lists show node-local ones as `node/name`."""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from aiohttp import web

from manager.api import local_objects as lo
from manager.api.call import Call
from manager.api.fanout import prune as prune_everywhere, send_each, successes
from manager.api.jsonio import encode, json_response, parse_filters, read_model
from manager.api.models import VolumeCreateBody
from manager.cluster.engine import Engine
from manager.errors import ApiError
from scheduler.whitelist import WHITELIST_LABEL, whitelist_rules, whitelisted

LIST_FILTERS = {"dangling", "driver", "label", "name", "node"}
ENGINE_FILTERS = ("dangling", "driver", "label")  # applied by each engine itself


async def listing(call: Call) -> web.Response:
    """`docker volume ls`: every healthy node's; filters `name`, `node` (here), `label`,
    `driver`, `dangling` (by each engine)."""
    filters = parse_filters(call.request.query.get("filters"))
    lo.check_filters(filters, LIST_FILTERS)
    engines = [e for e in call.cluster.healthy() if not filters.get("node") or lo.on_node(filters["node"], e)]
    query = urlencode({"filters": json.dumps({k: filters[k] for k in ENGINE_FILTERS if k in filters})})
    results = successes(await send_each(call, engines, method="GET", path="/volumes", query=query))
    volumes = [lo.qualified(engine, v) for engine, body in zip(engines, results)
               for v in (body or {}).get("Volumes") or []]
    names = filters.get("name")
    if names:
        volumes = [v for v in volumes if lo.searched(names, v["Name"], v["Name"].rpartition("/")[2])]
    return json_response({"Volumes": volumes, "Warnings": None})


async def _holders(call: Call) -> tuple[list[tuple[Engine, dict]], str]:
    """(engine, inspect answer) of every node that has the volume named in the path; its plain name."""
    engine, name = lo.pinned(call.cluster, lo.path_name(call))
    results = await send_each(call, [engine] if engine else call.cluster.healthy(), method="GET",
                              path=f"/volumes/{name}")
    found = [(e, r) for e, r in results if not isinstance(r, Exception)]
    if not found:
        raise ApiError(404, f"get {lo.path_name(call)}: no such volume")
    return found, name


async def inspect(call: Call) -> web.Response:
    """`docker volume inspect`: by `node/name` or by a name one node has (or a cluster-wide
    driver's volume, which every node sees the same)."""
    found, name = await _holders(call)
    shared = [body for _, body in found if body.get("Scope") == "global"]
    if len(found) > 1 and not shared:
        nodes = ", ".join(e.name for e, _ in found)
        raise ApiError(404, f"get {name}: volume {name} is on {len(found)} nodes ({nodes}); "
                            f"name one as node/{name}")
    return json_response(shared[0] if shared else found[0][1])


async def remove(call: Call) -> web.Response:
    """`docker volume rm`: from every node that has it (or from the one `node/name` names)."""
    found, name = await _holders(call)
    successes(await send_each(call, [e for e, _ in found], path=f"/volumes/{name}"))
    return web.Response(status=204)


def _targets(call: Call, labels: dict) -> list[Engine]:
    """Every healthy node, or those the whitelist label admits."""
    engines = call.cluster.healthy()
    rules = whitelist_rules(labels)
    if not rules:
        return engines
    admitted = {n.id for n in whitelisted(rules, [n for n in call.cluster.nodes() if n.healthy])}
    engines = [e for e in engines if e.id in admitted]
    if not engines:
        raise ApiError(400, f"no healthy node satisfies {WHITELIST_LABEL}={labels[WHITELIST_LABEL]}")
    return engines


async def create(call: Call) -> web.Response:
    """`docker volume create`: on every healthy node, the whitelisted ones, or the `node/` one;
    the same name everywhere (one random name when none is given); the first node's answer."""
    body = (await read_model(call, VolumeCreateBody)).raw
    engine, name = lo.pinned(call.cluster, body.get("Name") or "")
    body["Name"] = name or secrets.token_hex(32)
    targets = [engine] if engine else _targets(call, body.get("Labels") or {})
    if not targets:
        raise ApiError(500, "No healthy node available in the cluster")
    return json_response(successes(await send_each(call, targets, body=encode(body)))[0], 201)


async def prune(call: Call) -> web.Response:
    """`docker volume prune` on every healthy node; results merged."""
    return json_response(await prune_everywhere(call, "VolumesDeleted"))
