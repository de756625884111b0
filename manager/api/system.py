"""System routes: ping, version, info and the merged event stream."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from manager.api import render
from manager.api.call import Call
from manager.api.fanout import send_each, successes
from manager.api.jsonio import encode, json_response, parse_filters, parts_response, read_model
from manager.api.models import AuthBody
from manager.api.proxy import proxy
from manager.cluster.engine import Engine
from manager.cluster.metrics import CONTENT_TYPE, exposition
from manager.errors import ApiError


async def ping(call: Call) -> web.Response:
    """`/_ping` (GET and HEAD): the CLI negotiates its API version from our headers."""
    return web.Response(text="OK", headers={"Cache-Control": "no-cache, no-store, must-revalidate",
                                            "Pragma": "no-cache"})


async def version(call: Call) -> web.Response:
    return json_response(render.version(call.experimental))


async def info(call: Call) -> web.StreamResponse:
    return await parts_response(call.request, render.info(call.cluster, render.role_rows(call.leadership),
                                                          call.experimental))


async def no_plugin(call: Call) -> web.Response:
    """`GET /plugins/{name}/json`: no plugin is managed through Shoal, so none is found. A 404 in the
    engine's words (not the 501 of the other plugin routes): `docker inspect NAME` asks for a
    plugin after a container, image, network and volume, and only a not-found lets it answer
    `No such object: NAME`."""
    raise ApiError(404, f'plugin "{call.args["plugin"]}" not found')


async def auth(call: Call) -> web.StreamResponse:
    """`docker login`: any healthy node checks the credentials with the registry."""
    body = await read_model(call, AuthBody)
    return await proxy(call.request, call.cluster.any_engine(), call.path, call.version, body=encode(body.raw))


async def disk_usage(call: Call) -> web.Response:
    """`docker system df`: every healthy node's usage, sizes summed; node-local objects named
    `node/name` (images, containers, local volumes), so `-v` says where each one is."""
    engines = call.cluster.healthy()
    total: dict = {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}
    for engine, body in zip(engines, successes(await send_each(call, engines))):
        _add_usage(total, engine, body or {})
    return json_response(total)


def _add_usage(total: dict, engine: Engine, usage: dict) -> None:
    total["LayersSize"] += usage.get("LayersSize") or 0
    if "BuilderSize" in usage:  # API < 1.42
        total["BuilderSize"] = total.get("BuilderSize", 0) + (usage["BuilderSize"] or 0)
    for image in usage.get("Images") or []:
        tags = image.get("RepoTags") or []
        total["Images"].append({**image, "RepoTags": [t if t == "<none>:<none>" else f"{engine.name}/{t}"
                                                      for t in tags]})
    for container in usage.get("Containers") or []:
        names = container.get("Names") or []
        total["Containers"].append({**container, "Names": [f"/{engine.name}{n}" for n in names]})
    for volume in usage.get("Volumes") or []:
        if volume.get("Scope", "local") == "local":
            total["Volumes"].append({**volume, "Name": f"{engine.name}/{volume['Name']}"})
        elif all(v["Name"] != volume["Name"] for v in total["Volumes"]):  # a global one, listed once
            total["Volumes"].append(volume)
    total["BuildCache"] += usage.get("BuildCache") or []


async def metrics(call: Call) -> web.Response:
    """`GET /metrics`: Prometheus text format (not a Docker API path; dockerd serves its own
    metrics on a separate address)."""
    return web.Response(body=await exposition(call.cluster.metrics), headers={"Content-Type": CONTENT_TYPE})


EVENT_FILTERS = {
    "type": lambda e: [e.get("Type", "")],
    "event": lambda e: [(e.get("Action") or e.get("status") or "").split(":")[0]],
    "container": lambda e: [e.get("Actor", {}).get("ID", ""),
                            e.get("Actor", {}).get("Attributes", {}).get("name", "")]
    if e.get("Type") == "container" else [],
    "image": lambda e: [e.get("Actor", {}).get("Attributes", {}).get("image", ""), e.get("from", "")],
    "label": lambda e: [f"{k}={v}" for k, v in e.get("Actor", {}).get("Attributes", {}).items()]
    + list(e.get("Actor", {}).get("Attributes", {})),
    "node": lambda e: [e.get("node", {}).get("Name", ""), e.get("node", {}).get("Id", "")],
}


def _event_matches(event: dict, filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if wanted and not set(wanted) & set(EVENT_FILTERS[key](event)):
            return False
    return True


def _unix(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ApiError(400, f"invalid value for {name}: {value}") from None


async def events(call: Call) -> web.StreamResponse:
    """`GET /events`: every engine's events, tagged with their node; `since`, `until`, filters."""
    query = call.request.query
    filters = parse_filters(query.get("filters"))
    unknown = set(filters) - set(EVENT_FILTERS)
    if unknown:
        raise ApiError(400, f"invalid filter '{sorted(unknown)[0]}'")
    since, until = _unix(query.get("since"), "since"), _unix(query.get("until"), "until")
    queue = call.cluster.events.subscribe(since)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(call.request)
    try:
        while True:
            timeout = None if until is None else max(0.0, until - time.time())
            try:  # once `until` has passed, what is already queued (replayed) still goes out
                event = queue.get_nowait() if timeout == 0 else await asyncio.wait_for(queue.get(), timeout)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            if event is None:
                break
            if until is not None and event.get("time", 0) > until:
                break
            if _event_matches(event, filters):
                await resp.write(encode(event) + b"\n")
    finally:
        call.cluster.events.unsubscribe(queue)
    await resp.write_eof()
    return resp
