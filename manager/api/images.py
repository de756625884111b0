"""Image routes: aggregated list, pull on every node, tag/remove wherever the image is, build on one."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import AsyncIterator, Callable
from urllib.parse import unquote, urlencode

from aiohttp import web

from manager.api.call import Call, refresh_images
from manager.api.fanout import Tee, fan_out_stream, prune as prune_everywhere, send_each, successes
from manager.api.jsonio import encode, json_response, list_chunks, parse_filters, read_body, stream_json
from manager.api.models import BuildQuery, validate
from manager.api.proxy import CHUNK, forward_headers, hijack, proxy
from manager.cluster import images as cluster_images
from manager.cluster.engine import Engine
from manager.errors import ApiError, as_api_error, not_found
from scheduler import ContainerSpec
from scheduler.scheduler import NO_HEALTHY_NODE

log = logging.getLogger("shoal.api")

RULE_PREFIXES = ("constraint:", "affinity:")


def _line(obj: dict) -> bytes:
    return encode(obj) + b"\r\n"


IMAGE_FILTERS = ("before", "since", "dangling", "label", "reference", "node")
IMAGE_ROWS = 200  # `docker images` rows per write


async def images(call: Call) -> web.StreamResponse:
    """All nodes' images grouped by ID (tags unioned), newest first; dockerd's filters plus `node`."""
    query = call.request.query
    filters = parse_filters(query.get("filters"))
    if query.get("filter"):  # API < 1.28: a reference
        filters.setdefault("reference", []).append(query["filter"])
    unknown = sorted(set(filters) - set(IMAGE_FILTERS))
    if unknown:
        raise ApiError(400, f"Invalid filter '{unknown[0]}'")
    if any(v.lower() not in ("true", "false") for v in filters.get("dangling", [])):
        raise ApiError(400, "Invalid filter: 'type'='dangling'")
    nodes = filters.pop("node", None)
    window = _created_window(call, filters)
    merged: dict[str, dict] = {}
    for engine in call.cluster.validated():
        if nodes and not {engine.name, engine.id, engine.addr} & set(nodes):
            continue
        for image in engine.images:
            if not _image_kept(image, filters) or not window(image.get("Created", 0)):
                continue
            entry = merged.setdefault(image["Id"], dict(image, RepoTags=[], RepoDigests=[]))
            for key in ("RepoTags", "RepoDigests"):
                entry[key] += [t for t in image.get(key) or [] if t not in entry[key]]
    result = sorted(merged.values(), key=lambda i: i.get("Created", 0), reverse=True)
    return await stream_json(call.request, list_chunks(result, encode, IMAGE_ROWS))


def _created_window(call: Call, filters: dict[str, list[str]]) -> Callable[[float], bool]:
    """`before` / `since`: images created before / after the one named (an ID, a reference);
    400 in classic Swarm's words when no node has it."""
    oldest, newest = float("-inf"), float("inf")
    for key in ("before", "since"):
        for ref in filters.get(key, []):
            found = next((i for e in call.cluster.validated() for i in e.images
                          if cluster_images.image_matches(i, ref)), None)
            if found is None:
                raise ApiError(400, f"Invalid filter: 'type'='{key}': no such image found: '{ref}'")
            created = found.get("Created", 0)
            if key == "before":
                newest = min(newest, created)
            else:
                oldest = max(oldest, created)
    return lambda created: oldest < created < newest


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
    if references and not any(cluster_images.tag_matches_reference(t, r) for t in tags for r in references):
        return False
    return True


def _holders(call: Call) -> list[Engine]:
    """The validated engines that have the image, healthy ones first; 404 when none has it."""
    ref = unquote(call.args["image"])
    return _healthy_first(call.cluster.engines_with_image(ref), ref)


def _healthy_first(engines: list[Engine], ref: str) -> list[Engine]:
    if not engines:
        raise not_found("image", ref)
    return sorted(engines, key=lambda e: not e.healthy)


async def forward(call: Call) -> web.StreamResponse:
    """inspect, history: from the first (healthy) node that has the image."""
    return await proxy(call.request, _holders(call)[0], call.path, call.version)


async def push(call: Call) -> web.StreamResponse:
    """`docker push`: from a (healthy) node that has the image; the `tag` parameter is part of
    the name (without it, every tag of the repository is pushed)."""
    tag = call.request.query.get("tag")
    ref = unquote(call.args["image"]) + (f":{tag}" if tag else "")
    engines = call.cluster.engines_with_image(ref, cluster_images.image_named)
    return await proxy(call.request, _healthy_first(engines, ref)[0], call.path, call.version)


async def save(call: Call) -> web.StreamResponse:
    """`docker save a b ...` (`/images/get?names=`), docker-py's `/images/{name}/get`: the tar from one
    healthy node that has every image named."""
    names = [unquote(call.args["image"])] if call.args.get("image") else call.request.query.getall("names", [])
    for engine in call.cluster.healthy():
        if all(any(cluster_images.image_named(i, n) for i in engine.images) for n in names):
            return await proxy(call.request, engine, call.path, call.version)
    raise ApiError(404, f"Unable to find a healthy engine containing all images: [{' '.join(names)}]")


async def anywhere(call: Call) -> web.StreamResponse:
    """`docker search`, `docker manifest`-style registry lookups: any healthy node asks the registry."""
    return await proxy(call.request, call.cluster.any_engine(), call.path, call.version)


async def tag(call: Call) -> web.Response:
    """Tag on every node that has the image."""
    successes(await send_each(call, _holders(call), after=refresh_images))
    return web.Response(status=201)


async def remove(call: Call) -> web.Response:
    """`docker rmi` on every node that has the image."""
    items: list = []
    for body in successes(await send_each(call, _holders(call), after=refresh_images)):
        items += [i for i in body or [] if i not in items]
    return json_response(items)


async def build(call: Call) -> web.StreamResponse:
    """`docker build` on one node picked by the scheduler; `--build-arg constraint:k==v` and
    `affinity:` build args steer it (and are not passed to the build). A BuildKit build's session
    and build ID are remembered, so its `/session` and `/build/cancel` reach the same node."""
    query = dict(call.request.query)
    args = validate(BuildQuery, query, "invalid build parameters").buildargs or {}
    rules = [f"{k}={v}" for k, v in args.items() if k.startswith(RULE_PREFIXES)]
    query["buildargs"] = json.dumps({k: v for k, v in args.items() if not k.startswith(RULE_PREFIXES)})
    engine = call.cluster.best_engine(ContainerSpec.from_create_body({"Env": rules}), "build")
    keys = (query.get("session", ""), query.get("buildid", ""))
    call.cluster.builds.placed(engine, *keys)
    try:
        return await proxy(call.request, engine, call.path, call.version, query=urlencode(query),
                           after=refresh_images)
    finally:
        call.cluster.builds.finished(*keys)


async def session(call: Call) -> web.StreamResponse:
    """A BuildKit session (`DOCKER_BUILDKIT=1 docker build`): hijacked to the node its build runs on."""
    session_id = call.request.headers.get("X-Docker-Expose-Session-Uuid", "")
    if not session_id:
        raise ApiError(400, "X-Docker-Expose-Session-Uuid header is required for a BuildKit session")
    engine = await call.cluster.builds.engine_of(session_id)
    if engine is None:
        raise ApiError(404, f"no build uses BuildKit session {session_id}")
    log.info("buildkit session session=%s node=%s", session_id, engine.name)
    return await hijack(call.request, engine, call.path, call.version, await read_body(call))


async def cancel_build(call: Call) -> web.StreamResponse:
    """`POST /build/cancel?id=`: on the node that runs that build."""
    build_id = call.request.query.get("id", "")
    engine = await call.cluster.builds.engine_of(build_id) if build_id else None
    if engine is None:
        raise ApiError(404, f"no build in progress with ID {build_id!r}")
    log.info("build cancel build_id=%s node=%s", build_id, engine.name)
    return await proxy(call.request, engine, call.path, call.version)


async def prune(call: Call) -> web.Response:
    return json_response(await prune_everywhere(call, "ImagesDeleted", after=refresh_images))


async def prune_builds(call: Call) -> web.Response:
    """`docker builder prune`: every healthy node's build cache."""
    return json_response(await prune_everywhere(call, "CachesDeleted"))


async def pull(call: Call) -> web.StreamResponse:
    """`docker pull`: pull on every validated node at once, progress lines tagged per node;
    `docker import` (`fromSrc`) goes to `upload`."""
    query = call.request.query
    if query.get("fromSrc"):
        return await upload(call)
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
        started = False  # the first message says the engine accepted the pull
        async for message in cluster_images.pull(engine, raw_query, headers):
            if not started:
                started = True
                yield {"status": f"Pulling {ref}..."}
            if message.get("status"):
                layer = f" {message['id']}" if message.get("id") else ""
                yield {"status": f"Pulling {ref}... : {message['status']}{layer}"}
        yield {"status": f"Pulling {ref}... : downloaded"}

    return await _tagged(call, engines, stream)


async def upload(call: Call) -> web.StreamResponse:
    """`docker load` and `docker import -`: the client's body streamed to every healthy node at once
    (read once, never held whole), each node's progress tagged with its name. `docker import URL`
    has no body: every node fetches the URL itself."""
    engines = call.cluster.healthy()
    if not engines:
        raise ApiError(500, NO_HEALTHY_NODE)
    tee = Tee(call.request.content.iter_chunked(CHUNK), engines) if call.request.body_exists else None
    headers = forward_headers(call.request.headers)
    query = call.request.rel_url.raw_query_string

    def stream(engine: Engine) -> AsyncIterator[dict]:
        return cluster_images.messages(engine, call.path, query, headers, tee.body(engine) if tee else None)

    pump = asyncio.create_task(tee.pump()) if tee else None
    try:
        return await _tagged(call, engines, stream)
    finally:
        if pump:  # not awaited: the answer is complete, and the client may already be gone
            pump.cancel()


async def _tagged(call: Call, engines: list[Engine],
                  stream: Callable[[Engine], AsyncIterator[dict]]) -> web.StreamResponse:
    """Every engine's progress messages merged as they come, each tagged with its node (`id`); when
    some node failed, a final error object names it; when all did, the first error is the answer."""
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
    if resp is None:  # nothing done anywhere: answer like dockerd would
        raise as_api_error(failures[0][1])
    if failures:
        text = "; ".join(f"{e.name}: {as_api_error(x).message}" for e, x in failures)
        await resp.write(_line({"error": text, "errorDetail": {"code": 1, "message": text}}))
    await resp.write_eof()
    return resp
