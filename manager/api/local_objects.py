"""Networks and volumes as each node's own objects. One made through Shoal exists on every healthy
node under the same name (so a container lands anywhere and still finds it); `node/name` pins it to
one node. Lists show node-local ones as `node/name`, like classic Swarm."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from manager.api.call import Call
from manager.api.fanout import prune as prune_everywhere, send_each, successes
from manager.api.jsonio import encode, json_response, read_model
from manager.api.models import Body
from manager.cluster.engine import Engine
from manager.errors import ApiError


def qualified(engine: Engine, item: dict) -> dict:
    """A node-local object named `node/name`; a cluster-wide one as it is."""
    is_local = item.get("Scope", "local") == "local"
    return dict(item, Name=f"{engine.name}/{item['Name']}") if is_local else item


async def listed(call: Call) -> list[tuple[Engine, object]]:
    """(engine, its list answer) of every healthy node."""
    engines = call.cluster.healthy()
    return list(zip(engines, successes(await send_each(call, engines))))


@dataclass(frozen=True)
class Kind:
    """The routes networks and volumes share; `missing` is dockerd's 404 text with `{}` for the name;
    `model` validates a create body."""

    path: str
    missing: str
    deleted_key: str
    model: type[Body]
    name_required: bool

    async def holders(self, call: Call) -> tuple[list[tuple[Engine, dict]], str]:
        """(engine, inspect answer) of every node that has the object named in the path; its plain name."""
        ref = call.args["name"]
        engine, name = call.cluster.split_node(ref)
        results = await send_each(call, [engine] if engine else call.cluster.healthy(),
                                  method="GET", path=f"/{self.path}/{name}")
        found = [(e, r) for e, r in results if not isinstance(r, Exception)]
        if not found:
            raise ApiError(404, self.missing.format(ref))
        return found, name

    async def inspect(self, call: Call) -> web.Response:
        found, _ = await self.holders(call)
        return json_response(found[0][1])

    async def remove(self, call: Call) -> web.Response:
        """Removed from every node that has it."""
        found, name = await self.holders(call)
        successes(await send_each(call, [e for e, _ in found], path=f"/{self.path}/{name}"))
        return web.Response(status=204)

    async def create(self, call: Call) -> web.Response:
        """Created on every healthy node (or on the one a `node/` prefix names), same name everywhere;
        the first node's answer."""
        body = (await read_model(call, self.model)).raw
        engine, name = call.cluster.split_node(body.get("Name") or "")
        if not name and self.name_required:
            raise ApiError(400, f"{self.path.rstrip('s')} name is required")
        body["Name"] = name or secrets.token_hex(32)  # one generated name for all nodes
        targets = [engine] if engine else call.cluster.healthy()
        if not targets:
            raise ApiError(500, "No healthy node available in the cluster")
        return json_response(successes(await send_each(call, targets, body=encode(body)))[0], 201)

    async def prune(self, call: Call) -> web.Response:
        """`docker network|volume prune` on every healthy node; results merged."""
        return json_response(await prune_everywhere(call, self.deleted_key))
