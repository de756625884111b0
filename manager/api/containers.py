"""Container and exec routes: thin handlers over the cluster, the proxy and the hijack."""
from __future__ import annotations

from urllib.parse import unquote, urlencode

from aiohttp import web

from manager.api import render
from manager.api.call import Call, forget_container, refresh_all, refresh_container, refresh_images
from manager.api.fanout import fan_out, prune as prune_everywhere
from manager.api.jsonio import encode, json_object, json_response, read_body, read_model, stream_json
from manager.api.models import CommitBody, CreateBody, ExecCreateBody, ExecStartBody, UpdateBody, validate
from manager.api.proxy import hijack, is_upgrade, proxy
from manager.cluster.containers import Container
from manager.cluster.engine import Engine
from manager.cluster.names import check_name
from manager.errors import ApiError, engine_error, name_conflict, not_found
from scheduler.spec import engine_cpu_shares


def _target(call: Call, healthy_only: bool = True) -> tuple[Engine, Container, str]:
    """(engine, cached container, path with the reference replaced by the full ID)."""
    ref = call.args["ref"]
    engine, container = call.cluster.find_container(unquote(ref), healthy_only)
    path = call.path.replace(f"/containers/{ref}", f"/containers/{container.id}", 1)
    return engine, container, path


async def ps(call: Call) -> web.StreamResponse:
    """`docker ps` from the cache, written as it is encoded."""
    return await stream_json(call.request, render.list_containers(call.cluster, call.request.query))


async def create(call: Call) -> web.Response:
    """Schedule the container onto a node and create it there."""
    name = call.request.query.get("name") or None
    if name:
        name = check_name(name)
    body = await read_model(call, CreateBody)
    _, created = await call.cluster.create_container(body.raw, name, call.request.headers.get("X-Registry-Auth"))
    return json_response(created, 201)


async def inspect(call: Call) -> web.Response:
    """Inspect from the event-fed cache, plus `Node`; ports shown at the node's address.
    A container known from a listing only is inspected on its engine first."""
    engine, container, _ = _target(call, healthy_only=False)
    if container.inspected is None and engine.healthy:
        container = await engine.refresh_container(container.id)
        if container is None:
            raise not_found("container", call.args["ref"])
    body = render.inspect_json(engine, container)
    if body is None:
        raise ApiError(500, f"Container {call.args['ref']} running on unhealthy node {engine.name} "
                            "has not been inspected yet")
    return web.Response(body=body, content_type="application/json")


async def act(call: Call) -> web.StreamResponse:
    """start/stop/kill/restart/pause/unpause/wait: proxied, then the cache refreshed."""
    engine, container, path = _target(call)
    action = call.args["action"]
    return await proxy(call.request, engine, path, call.version, after=refresh_container(container.id, action),
                       whole=action != "wait")


async def update(call: Call) -> web.StreamResponse:
    """`docker update`: the resources validated, proxied, then the cache refreshed."""
    body = await read_model(call, UpdateBody)
    engine, container, path = _target(call)
    return await proxy(call.request, engine, path, call.version, body=encode(engine_cpu_shares(body.raw)),
                       after=refresh_container(container.id), whole=True)


async def rename(call: Call) -> web.StreamResponse:
    """Rename with cluster-wide name uniqueness."""
    new = check_name(call.request.query.get("name", ""))
    engine, container, path = _target(call)
    if call.cluster.name_taken(new):
        raise name_conflict(new)
    return await proxy(call.request, engine, path, call.version, after=refresh_container(container.id), whole=True)


async def remove(call: Call) -> web.StreamResponse:
    engine, container, path = _target(call)
    return await proxy(call.request, engine, path, call.version, after=forget_container(container.id), whole=True)


async def attach(call: Call) -> web.StreamResponse:
    engine, _, path = _target(call)
    if is_upgrade(call.request):
        return await hijack(call.request, engine, path, call.version, b"")
    return await proxy(call.request, engine, path, call.version)


async def forward(call: Call) -> web.StreamResponse:
    """logs, top, stats, changes, export, resize, archive: straight to the owning engine."""
    engine, _, path = _target(call)
    return await proxy(call.request, engine, path, call.version)


async def prune(call: Call) -> web.Response:
    """`docker container prune` on every healthy node; results merged."""
    return json_response(await prune_everywhere(call, "ContainersDeleted", after=refresh_all))


async def commit(call: Call) -> web.StreamResponse:
    """`docker commit`: on the container's node (the new image is there); `container=` takes every
    kind of reference, and reaches the engine as the full ID."""
    raw = await read_body(call)
    if raw.strip() not in (b"", b"null"):  # the docker CLI sends `null` for "no config changes"
        validate(CommitBody, json_object(raw, "invalid JSON in request body"), "invalid request body")
    engine, container = call.cluster.find_container(call.request.query.get("container", ""))
    query = urlencode([(k, container.id if k == "container" else v) for k, v in call.request.query.items()])
    return await proxy(call.request, engine, call.path, call.version, body=raw, query=query,
                       after=refresh_images)


# ---- exec ----------------------------------------------------------------------------------------
async def exec_create(call: Call) -> web.Response:
    request = await read_model(call, ExecCreateBody)
    engine, container, path = _target(call)
    status, body = await engine.call("POST", path, body=request.raw)
    if status != 201:
        raise engine_error(status, body)
    call.cluster.remember_exec(body["Id"], engine)
    return json_response(body, 201)


async def _exec_engine(call: Call) -> Engine:
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


async def exec_start(call: Call) -> web.StreamResponse:
    body = encode((await read_model(call, ExecStartBody)).raw)
    engine = await _exec_engine(call)
    if is_upgrade(call.request):
        return await hijack(call.request, engine, call.path, call.version, body)
    return await proxy(call.request, engine, call.path, call.version, body=body)


async def exec_forward(call: Call) -> web.StreamResponse:
    engine = await _exec_engine(call)
    return await proxy(call.request, engine, call.path, call.version)
