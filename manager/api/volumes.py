"""Volume routes (see `local_objects` for where volumes live)."""
from __future__ import annotations

from aiohttp import web

from manager.api import local_objects
from manager.api.call import Call
from manager.api.jsonio import json_response
from manager.api.models import VolumeCreateBody

VOLUMES = local_objects.Kind("volumes", "get {}: no such volume", "VolumesDeleted", VolumeCreateBody,
                             name_required=False)
inspect, remove, create, prune = VOLUMES.inspect, VOLUMES.remove, VOLUMES.create, VOLUMES.prune


async def listing(call: Call) -> web.Response:
    """`docker volume ls`: every healthy node's, node-local ones as `node/name`."""
    volumes = [local_objects.qualified(engine, v) for engine, body in await local_objects.listed(call)
               for v in (body or {}).get("Volumes") or []]
    return json_response({"Volumes": volumes, "Warnings": None})
