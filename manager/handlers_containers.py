"""Container and exec routes: thin handlers over the cluster, the proxy and the hijack."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from manager import broadcast, views
from manager.engine import Engine
from manager.errors import ApiError, json_object, json_response, name_conflict
from manager.fanout import fan_out
from manager.proxy import hijack, proxy

if TYPE_CHECKING:
    from manager.routes import Call

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object; 400 when it is not one."""
    raw = await request.read()
    return json_object(raw, "invalid JSON in request body") if raw.strip() else {}


def _target(call: "Call", healthy_only: bool = True) -> tuple[Engine, dict, str]:
    """(engine, cached container, path with the reference replaced by the full ID)."""
    ref = call.args["ref"]
    engine, container = call.cluster.find_container(unquote(ref), healthy_only)
    path = call.path.replace(f"/containers/{ref}", f"/containers/{container['Id']}", 1)
    return engine, container, path


def _is_upgrade(request: web.Request) -> bool:
    return "upgrade" in request.headers.get("Connection", "").lower() and bool(
        request.headers.get("Upgrade"))


async def ps(call: "Call") -> web.Response:
    return web.Response(body=views.list_containers(call.cluster, call.request.query),
                        content_type="application/json")


def _valid_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ApiError(400, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def refresher(engine: Engine, cid: str) -> Callable[[int], Awaitable[None]]:
    """An `after` callback for the proxy: re-inspect the container into the cache."""
    async def refresh(status: int) -> None:
        await engine.refresh_container(cid)
    return refresh


async def create(call: "Call") -> web.Response:
    """Schedule the container onto a node and create it there."""
    name = call.request.query.get("name") or None
    if name:
        _valid_name(name)
    body = await read_json(call.request)
    _, created = await call.cluster.create_container(
        body, name and name.lstrip("/"), call.request.headers.get("X-Registry-Auth"))
    return json_response(created, 201)


def node_json(engine: Engine) -> dict:
    """Classic Swarm's `Node` object in inspect output."""
    return {"ID": engine.id, "IP": views.engine_ip(engine), "Addr": engine.addr,
            "Name": engine.name, "Cpus": engine.cpus, "Memory": engine.memory,
            "Labels": dict(engine.labels)}


async def inspect(call: "Call") -> web.Response:
    """Inspect from the event-fed cache, plus `Node`; ports shown at the node's address."""
    engine, container, _ = _target(call, healthy_only=False)
    raw = engine.rendered.get(container["Id"])
    if raw is None:
        body = json.loads(json.dumps(container))
        for bindings in ((body.get("NetworkSettings") or {}).get("Ports") or {}).values():
            for b in bindings or []:
                if b.get("HostIp") in views.UNSPECIFIED_IPS:
                    b["HostIp"] = views.engine_ip(engine)
        body["Node"] = node_json(engine)
        raw = engine.rendered[container["Id"]] = json.dumps(body).encode() + b"\n"
    return web.Response(body=raw, content_type="application/json")


async def act(call: "Call") -> web.StreamResponse:
    """start/stop/kill/restart/pause/unpause/update/wait: proxied, then the cache refreshed."""
    engine, container, path = _target(call)
    return await proxy(call.request, engine, path, call.version,
                       after=refresher(engine, container["Id"]))


async def rename(call: "Call") -> web.StreamResponse:
    """Rename with cluster-wide name uniqueness."""
    new = _valid_name(call.request.query.get("name", ""))
    engine, container, path = _target(call)
    if call.cluster.name_taken(new):
        raise name_conflict(new)
    return await proxy(call.request, engine, path, call.version,
                       after=refresher(engine, container["Id"]))


async def remove(call: "Call") -> web.StreamResponse:
    engine, container, path = _target(call)

    async def forget(status: int) -> None:
        if status < 300:
            engine.forget_container(container["Id"])

    return await proxy(call.request, engine, path, call.version, after=forget)


async def attach(call: "Call") -> web.StreamResponse:
    engine, _, path = _target(call)
    if _is_upgrade(call.request):
        return await hijack(call.request, engine, path, call.version)
    return await proxy(call.request, engine, path, call.version)


async def forward(call: "Call") -> web.StreamResponse:
    """logs, top, stats, changes, export, resize, archive: straight to the owning engine."""
    engine, _, path = _target(call)
    return await proxy(call.request, engine, path, call.version)


async def prune(call: "Call") -> web.Response:
    """`docker container prune` on every healthy node; results merged."""
    return json_response(await broadcast.prune(call, "ContainersDeleted", after=Engine.refresh_all))


# ---- exec ----------------------------------------------------------------------------------------
async def exec_create(call: "Call") -> web.Response:
    engine, container, path = _target(call)
    status, body = await engine.call("POST", path, body=await read_json(call.request))
    if status != 201:
        raise ApiError(status, body.get("message", str(body)) if isinstance(body, dict) else body)
    call.cluster.remember_exec(body["Id"], engine)
    return json_response(body, 201)


async def _exec_engine(call: "Call") -> Engine:
    """The engine that owns an exec instance (asked around if the manager restarted since)."""
    exec_id = call.args["exec"]
    engine = call.cluster.exec_engine(exec_id)
    if engine is None:
        async def probe(e: Engine) -> bool:
            status, _ = await e.call("GET", f"/exec/{exec_id}/json")
            return status == 200

        owners = [e for e, ok in await fan_out(call.cluster.healthy(), probe) if ok is True]
        if not owners:
            raise ApiError(404, f"No such exec instance: {exec_id}")
        engine = owners[0]
        call.cluster.remember_exec(exec_id, engine)
    return engine


async def exec_start(call: "Call") -> web.StreamResponse:
    engine = await _exec_engine(call)
    if _is_upgrade(call.request):
        return await hijack(call.request, engine, call.path, call.version)
    return await proxy(call.request, engine, call.path, call.version)


async def exec_forward(call: "Call") -> web.StreamResponse:
    engine = await _exec_engine(call)
    return await proxy(call.request, engine, call.path, call.version)
