"""Image routes: aggregated list, pull on every node, tag/remove wherever the image is."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, AsyncIterator
from urllib.parse import unquote, urlencode

from aiohttp import web

from manager import broadcast, views
from manager.engine import Engine
from manager.errors import ApiError, json_object, json_response, not_found
from manager.broadcast import send_each, successes
from manager.fanout import fan_out_stream
from manager.proxy import proxy
from scheduler import ContainerSpec

if TYPE_CHECKING:
    from manager.routes import Call


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


async def images(call: "Call") -> web.Response:
    """All nodes' images grouped by ID (tags unioned), newest first; `node` filter too."""
    filters = views.parse_filters(call.request.query.get("filters"))
    nodes = filters.pop("node", None)
    merged: dict[str, dict] = {}
    for engine in call.cluster.validated():
        if nodes and not {engine.name, engine.id, engine.addr} & set(nodes):
            continue
        for image in engine.images:
            if not _image_kept(image, filters):
                continue
            entry = merged.setdefault(image["Id"], dict(image, RepoTags=[], RepoDigests=[]))
            for key in ("RepoTags", "RepoDigests"):
                entry[key] += [t for t in image.get(key) or [] if t not in entry[key]]
    result = sorted(merged.values(), key=lambda i: i.get("Created", 0), reverse=True)
    return json_response(result)


def _image_kept(image: dict, filters: dict[str, list[str]]) -> bool:
    tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
    labels = image.get("Labels") or {}
    for value in filters.get("dangling", []):
        if (value.lower() == "true") == bool(tags):
            return False
    for value in filters.get("label", []):
        key, _, wanted = value.partition("=")
        if key not in labels or (wanted and labels[key] != wanted):
            return False
    references = filters.get("reference", [])
    if references and not any(t == r or t.split(":")[0] == r for t in tags for r in references):
        return False
    return True


def _holders(call: "Call") -> tuple[str, list[Engine]]:
    ref = unquote(call.args["image"])
    engines = call.cluster.engines_with_image(ref)
    if not engines:
        raise not_found("image", ref)
    return ref, sorted(engines, key=lambda e: not e.healthy)


async def forward(call: "Call") -> web.StreamResponse:
    """inspect, history, save, push: from the first (healthy) node that has the image."""
    _, engines = _holders(call)
    return await proxy(call.request, engines[0], call.path, call.version)


async def tag(call: "Call") -> web.Response:
    """Tag on every node that has the image."""
    _, engines = _holders(call)
    successes(await send_each(call, engines, after=Engine.refresh_images))
    return web.Response(status=201)


async def remove(call: "Call") -> web.Response:
    """`docker rmi` on every node that has the image."""
    _, engines = _holders(call)
    items: list = []
    for body in successes(await send_each(call, engines, after=Engine.refresh_images)):
        items += [i for i in body or [] if i not in items]
    return json_response(items)


RULE_PREFIXES = ("constraint:", "affinity:")


async def build(call: "Call") -> web.StreamResponse:
    """`docker build` on one node picked by the scheduler; `--build-arg constraint:k==v` and
    `affinity:` build args steer it (and are not passed to the build)."""
    query = dict(call.request.query)
    args = json_object(query.get("buildargs") or "{}", "invalid buildargs")
    rules = [f"{k}={v}" for k, v in args.items() if k.startswith(RULE_PREFIXES)]
    query["buildargs"] = json.dumps({k: v for k, v in args.items() if not k.startswith(RULE_PREFIXES)})
    spec = ContainerSpec.from_create_body({"Env": rules})
    engine = call.cluster.best_engine(spec)

    async def refresh(status: int) -> None:
        await engine.refresh_images()

    return await proxy(call.request, engine, call.path, call.version, query=urlencode(query),
                       after=refresh)


async def prune(call: "Call") -> web.Response:
    return json_response(await broadcast.prune(call, "ImagesDeleted", after=Engine.refresh_images))


async def pull(call: "Call") -> web.StreamResponse:
    """`docker pull`: pull on every validated node at once, progress lines tagged per node."""
    query = call.request.query
    if query.get("fromSrc"):
        raise ApiError(501, "Shoal does not implement docker import yet")
    ref = query.get("fromImage", "")
    if not ref:
        raise ApiError(400, "fromImage is required")
    ref += f":{query['tag']}" if query.get("tag") and ":" not in ref.rsplit("/", 1)[-1] else ""
    engines = call.cluster.validated()
    if not engines:
        raise ApiError(500, "No nodes available in the cluster")
    headers = {k: v for k, v in call.request.headers.items() if k.lower() == "x-registry-auth"}
    raw_query = call.request.rel_url.raw_query_string

    async def stream(engine: Engine) -> AsyncIterator[dict]:
        resp = await engine.open("POST", "/images/create", query=raw_query, headers=headers)
        async with resp:
            if resp.status != 200:
                body = await resp.json(content_type=None)
                raise ApiError(resp.status, body.get("message", ""))
            yield {"status": f"Pulling {ref}..."}
            async for raw in resp.content:
                message = json.loads(raw) if raw.strip() else {}
                if message.get("error"):
                    raise ApiError(500, message["error"])
                if message.get("status"):
                    layer = f" {message['id']}" if message.get("id") else ""
                    yield {"status": f"Pulling {ref}... : {message['status']}{layer}"}
        await engine.refresh_images()
        yield {"status": f"Pulling {ref}... : downloaded"}

    resp: web.StreamResponse | None = None
    failures: list[tuple[Engine, Exception]] = []
    async for engine, item in fan_out_stream(engines, stream):
        if isinstance(item, Exception):
            failures.append((engine, item))
            continue
        if resp is None:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(call.request)
        await resp.write(_line({**item, "id": engine.name}))
    if resp is None:  # nothing pulled anywhere: answer like dockerd would
        first = failures[0][1]
        raise ApiError(getattr(first, "status", 500), getattr(first, "message", str(first)))
    if failures:
        text = "; ".join(f"{e.name}: {getattr(x, 'message', x)}" for e, x in failures)
        await resp.write(_line({"error": text, "errorDetail": {"code": 1, "message": text}}))
    await resp.write_eof()
    return resp
