"""Network and volume routes. One made through Shoal exists on every healthy node under the
same name (so a container lands anywhere and still finds it); `node/name` pins it to one node.
Lists show node-local ones as `node/name`, like classic Swarm."""
from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from manager import broadcast
from manager.engine import Engine
from manager.errors import ApiError, json_response
from manager.handlers_containers import read_json, refresher
from manager.proxy import proxy

if TYPE_CHECKING:
    from manager.routes import Call

DELETED_KEY = {"networks": "NetworksDeleted", "volumes": "VolumesDeleted"}


def _kind(call: "Call") -> str:
    return call.path.strip("/").split("/")[0]


def _not_found(kind: str, ref: str) -> ApiError:
    """dockerd's own wording for each kind."""
    return ApiError(404, f"network {ref} not found" if kind == "networks" else f"get {ref}: no such volume")


def _qualified(engine: Engine, item: dict) -> dict:
    is_local = item.get("Scope", "local") == "local"
    return dict(item, Name=f"{engine.name}/{item['Name']}") if is_local else item


async def listing(call: "Call") -> web.Response:
    """`docker network ls` / `docker volume ls`: every healthy node's, networks de-duplicated by ID."""
    engines = call.cluster.healthy()
    answers = broadcast.successes(await broadcast.send_each(call, engines))
    if _kind(call) == "networks":
        seen: dict[str, dict] = {}
        for engine, items in zip(engines, answers):
            for item in items or []:
                seen.setdefault(item["Id"], _qualified(engine, item))
        return json_response(list(seen.values()))
    volumes = [_qualified(e, v) for e, body in zip(engines, answers) for v in (body or {}).get("Volumes") or []]
    return json_response({"Volumes": volumes, "Warnings": None})


async def _holders(call: "Call") -> tuple[list[tuple[Engine, dict]], str]:
    """(engine, inspect answer) of every node that has the network/volume; its plain name."""
    kind, ref = _kind(call), call.args["name"]
    engine, name = broadcast.node_qualified(call.cluster, ref)
    results = await broadcast.send_each(call, [engine] if engine else call.cluster.healthy(),
                                        method="GET", path=f"/{kind}/{name}")
    found = [(e, r) for e, r in results if not isinstance(r, Exception)]
    if not found:
        raise _not_found(kind, ref)
    return found, name


async def inspect(call: "Call") -> web.Response:
    found, _ = await _holders(call)
    return json_response(found[0][1])


async def remove(call: "Call") -> web.Response:
    """Removed from every node that has it."""
    found, name = await _holders(call)
    broadcast.successes(await broadcast.send_each(call, [e for e, _ in found],
                                                  path=f"/{_kind(call)}/{name}"))
    return web.Response(status=204)


async def create(call: "Call") -> web.Response:
    """Created on every healthy node (or on the one a `node/` prefix names), same name everywhere."""
    kind, body = _kind(call), await read_json(call.request)
    engine, name = broadcast.node_qualified(call.cluster, body.get("Name") or "")
    if not name and kind == "networks":
        raise ApiError(400, "network name is required")
    body["Name"] = name or secrets.token_hex(32)  # one generated volume name for all nodes
    targets = [engine] if engine else call.cluster.healthy()
    if not targets:
        raise ApiError(500, "No healthy node available in the cluster")
    answers = broadcast.successes(await broadcast.send_each(call, targets, body=json.dumps(body).encode()))
    return json_response(answers[0], 201)


async def attach(call: "Call") -> web.StreamResponse:
    """`docker network connect|disconnect`: on the node of the container named in the body."""
    body = await read_json(call.request)
    engine, container = call.cluster.find_container(str(body.get("Container", "")))
    _, name = broadcast.node_qualified(call.cluster, call.args["name"])
    body["Container"] = container["Id"]
    return await proxy(call.request, engine, f"/networks/{name}/{call.args['action']}", call.version,
                       body=json.dumps(body).encode(), after=refresher(engine, container["Id"]))


async def prune(call: "Call") -> web.Response:
    return json_response(await broadcast.prune(call, DELETED_KEY[_kind(call)]))
