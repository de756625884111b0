"""Network routes (see `local_objects` for where networks live)."""
from __future__ import annotations

from aiohttp import web

from manager.api import local_objects
from manager.api.call import Call, refresh_container
from manager.api.jsonio import encode, json_response, read_model
from manager.api.models import NetworkConnectBody, NetworkCreateBody
from manager.api.proxy import proxy

NETWORKS = local_objects.Kind("networks", "network {} not found", "NetworksDeleted", NetworkCreateBody,
                              name_required=True)
inspect, remove, create, prune = NETWORKS.inspect, NETWORKS.remove, NETWORKS.create, NETWORKS.prune


async def listing(call: Call) -> web.Response:
    """`docker network ls`: every healthy node's, de-duplicated by ID."""
    seen: dict[str, dict] = {}
    for engine, items in await local_objects.listed(call):
        for item in items or []:
            seen.setdefault(item["Id"], local_objects.qualified(engine, item))
    return json_response(list(seen.values()))


async def attach(call: Call) -> web.StreamResponse:
    """`docker network connect|disconnect`: on the node of the container named in the body."""
    body = await read_model(call, NetworkConnectBody)
    engine, container = call.cluster.find_container(body.Container)
    _, name = call.cluster.split_node(call.args["name"])
    return await proxy(call.request, engine, f"/networks/{name}/{call.args['action']}", call.version,
                       body=encode(dict(body.raw, Container=container["Id"])),
                       after=refresh_container(container["Id"]))
