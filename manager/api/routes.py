"""The one routing table: which handler answers each Docker API path, with or without `/vX.Y`."""
from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Awaitable, Callable

from aiohttp import web

from manager.api import containers as ctr
from manager.api import images as img
from manager.api import networks as net
from manager.api import nodes
from manager.api import replica
from manager.api import system as sysh
from manager.api import volumes as vol
from manager.api.call import Call, Handler
from manager.api.dashboard import handlers as dash
from manager.api.jsonio import MAX_BODY, error_response
from manager.cluster.cluster import Cluster
from manager.cluster.leader import Election, Solo
from manager.cluster.metrics import api_request
from manager.errors import ApiError
from scheduler import NoFit, SchedulerError
from shoal.version import API_VERSION

log = logging.getLogger("shoal.api")

REF = r"(?P<ref>[^/]+(?:/[^/]+)?)"  # also `node/name`
IMAGE = r"(?P<image>.+)"
NAME = r"(?P<name>[^/]+(?:/[^/]+)?)"  # also `node/name`

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"/", dash.root),  # a browser is sent to the dashboard; no Docker API path is `/`
    ("GET|HEAD", r"/dashboard", dash.bare),
    ("GET|HEAD", r"/dashboard/(?P<asset>app\.js|style\.css)?", dash.page),
    ("GET", r"/dashboard/stream", dash.stream),
    ("GET|HEAD", r"/_ping", sysh.ping),
    ("GET", r"/version", sysh.version),
    ("GET", r"/info", sysh.info),
    ("GET", r"/metrics", sysh.metrics),
    ("GET", r"/events", sysh.events),
    ("POST", r"/auth", sysh.auth),
    ("GET", r"/system/df", sysh.disk_usage),
    ("GET", r"/containers/(?:json|ps)", ctr.ps),  # `ps`: the legacy name
    ("POST", r"/containers/create", ctr.create),
    ("POST", r"/containers/prune", ctr.prune),
    ("GET", rf"/containers/{REF}/json", ctr.inspect),
    ("POST", rf"/containers/{REF}/(?P<action>start|stop|kill|restart|pause|unpause|wait)", ctr.act),
    ("POST", rf"/containers/{REF}/update", ctr.update),
    ("POST", rf"/containers/{REF}/rename", ctr.rename),
    ("DELETE", rf"/containers/{REF}", ctr.remove),
    ("POST", rf"/containers/{REF}/attach", ctr.attach),
    ("GET", rf"/containers/{REF}/attach/ws", ctr.attach),  # a websocket, through the hijack
    ("GET", rf"/containers/{REF}/(?:logs|top|stats|changes|export)", ctr.forward),
    ("POST", rf"/containers/{REF}/(?:resize|copy)", ctr.forward),  # `copy`: legacy `docker cp`
    ("GET|HEAD|PUT", rf"/containers/{REF}/archive", ctr.forward),
    ("POST", rf"/containers/{REF}/exec", ctr.exec_create),
    ("POST", r"/exec/(?P<exec>[^/]+)/start", ctr.exec_start),
    ("POST", r"/exec/(?P<exec>[^/]+)/resize", ctr.exec_forward),
    ("GET", r"/exec/(?P<exec>[^/]+)/json", ctr.exec_forward),
    ("POST", r"/commit", ctr.commit),
    ("GET", r"/images/json", img.images),
    ("GET", r"/images/search", img.anywhere),
    ("GET", r"/images/get", img.save),
    ("GET", r"/distribution/(?P<image>.+)/json", img.anywhere),
    ("POST", r"/images/create", img.pull),  # also `docker import`
    ("POST", r"/images/load", img.upload),
    ("POST", r"/images/prune", img.prune),
    ("POST", r"/build", img.build),
    ("POST", r"/build/prune", img.prune_builds),
    ("POST", r"/build/cancel", img.cancel_build),
    ("POST", r"/session", img.session),  # BuildKit, hijacked to its build's node
    ("GET", rf"/images/{IMAGE}/get", img.save),
    ("GET", rf"/images/{IMAGE}/(?:json|history)", img.forward),
    ("POST", rf"/images/{IMAGE}/push", img.push),
    ("POST", rf"/images/{IMAGE}/tag", img.tag),
    ("DELETE", rf"/images/{IMAGE}", img.remove),
    ("GET", r"/networks", net.listing),
    ("POST", r"/networks/create", net.create),
    ("POST", r"/networks/prune", net.prune),
    ("POST", rf"/networks/{NAME}/(?P<action>connect|disconnect)", net.attach),
    ("GET", rf"/networks/{NAME}", net.inspect),
    ("DELETE", rf"/networks/{NAME}", net.remove),
    ("GET", r"/nodes", nodes.listing),
    ("GET", r"/nodes/(?P<node>[^/]+)", nodes.inspect),
    ("POST", r"/nodes/(?P<node>[^/]+)/update", nodes.update),
    ("GET", r"/volumes", vol.listing),
    ("POST", r"/volumes/create", vol.create),
    ("POST", r"/volumes/prune", vol.prune),
    ("GET", rf"/volumes/{NAME}", vol.inspect),
    ("DELETE", rf"/volumes/{NAME}", vol.remove),
    ("GET", r"/plugins/(?P<plugin>.+)/json", sysh.no_plugin),  # what `docker inspect NAME` tries last
]


def route_template(pattern: str) -> str:
    """`/containers/(?P<ref>...)/json` -> `/containers/{ref}/json`: a route as metrics label it."""
    while (start := pattern.find("(?P<")) >= 0:
        depth = 0
        for end in range(start, len(pattern)):  # the group's own closing parenthesis
            depth += {"(": 1, ")": -1}.get(pattern[end], 0)
            if depth == 0:
                break
        pattern = pattern[:start] + "{" + pattern[start + 4:pattern.index(">", start)] + "}" + pattern[end + 1:]
    return pattern.replace("(?:", "(").replace("}?", "}").replace("\\", "")


def first_segment(pattern: str) -> str:
    """A route's first path segment, which must be literal (`/containers/...` -> `containers`)."""
    segment = pattern[1:].split("/", 1)[0]
    if not re.fullmatch(r"[\w.-]*", segment):
        raise ValueError(f"route {pattern}: its first path segment must be literal")
    return segment


# The routes compiled, by first path segment, in table order: a path is tried on its segment's only.
BY_SEGMENT: dict[str, list[tuple[frozenset[str], re.Pattern, Handler, str]]] = {}
for _methods, _pattern, _handler in ROUTES:
    BY_SEGMENT.setdefault(first_segment(_pattern), []).append(
        (frozenset(_methods.split("|")), re.compile(_pattern + "$"), _handler, route_template(_pattern)))
VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")
# Docker API resources Shoal does not serve, and why (the 501 says it); other unmatched paths under
# a Docker resource are "not implemented yet", anything else is a 404.
SWARM_MODE = ("swarm-mode objects (swarm, services, tasks, secrets, configs) are not part of "
              "classic Swarm: Shoal schedules plain containers (docker run, docker-compose)")
NOT_SERVED = [(re.compile(pattern), reason) for pattern, reason in (
    (r"/(?:swarm|services|tasks|secrets|configs)(?:/.*)?", SWARM_MODE),
    (r"/nodes(?:/.*)?", "nodes are the engines: one leaves the cluster by leaving discovery (ls, inspect "
                        "and update --availability/--label-add/--label-rm are served)"),
    (r"/plugins(?:/.*)?", "plugins are installed and managed on each node's engine, not through Shoal"),
    (r"/grpc", "BuildKit's gRPC endpoint (buildx) is not proxied: use the docker CLI's own builder"),
    (r"/containers/.+/checkpoints(?:/[^/]+)?", "checkpoints (experimental, CRIU) are not supported by Shoal"),
    (r"/images/viz", "Not supported in clustering mode."),
)]
DOCKER_RESOURCES = {"containers", "images", "networks", "volumes", "exec", "build", "system", "session",
                    "distribution", "auth", "commit"}


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str], str]:
    """The handler for a (version-less) path, its arguments and its route template, or an
    ApiError saying why there is none."""
    allowed = False
    for methods, pattern, handler, template in BY_SEGMENT.get(path[1:].split("/", 1)[0], ()):
        match = pattern.match(path)
        if match:
            if method in methods:
                return handler, match.groupdict(), template
            allowed = True
    for pattern, reason in NOT_SERVED:
        if pattern.fullmatch(path):
            raise ApiError(501, f"Shoal does not serve {method} {path}: {reason}")
    if allowed or path.strip("/").split("/")[0] in DOCKER_RESOURCES:
        raise ApiError(501, f"Shoal does not implement {method} {path} yet")
    raise ApiError(404, "page not found")


def split_version(raw_path: str) -> tuple[str | None, str]:
    """`/v1.41/info` -> ("1.41", "/info"); `/info` -> (None, "/info")."""
    match = VERSION_PREFIX.match(raw_path)
    return (match[1], match[2]) if match else (None, raw_path)


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, PUT, OPTIONS, HEAD",
}


ROUTE_KEY = web.RequestKey("route", str)
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}


@web.middleware
async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """API request latency by method, route template and status (`aborted`: the client left)."""
    began, status = time.perf_counter(), "aborted"
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    finally:
        method = request.method if request.method in METHODS else "other"
        api_request(method, request.get(ROUTE_KEY, "unmatched"), status).observe(time.perf_counter() - began)


def build_app(cluster: Cluster, leadership: Election | Solo | None = None, cors: bool = False,
              experimental: bool = False, only: frozenset[str] | None = None) -> web.Application:
    """The aiohttp application: every path goes through `dispatch`; with `cors`, classic Swarm's
    `--api-enable-cors` headers on every answer and OPTIONS (preflight) answered for any path;
    `experimental` is what info, version and the `Docker-Experimental` header report. A replica
    answers `replica.LOCAL` paths itself and forwards every other one to the primary. With `only`,
    the paths served (the others are a 404), for `--metrics-addr`."""
    leadership = leadership or Solo()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        version, path = split_version(request.rel_url.raw_path)
        if cors and request.method == "OPTIONS":
            return web.Response(status=200)
        try:
            if only is not None and path not in only:
                raise ApiError(404, "page not found")
            if not leadership.is_primary and path not in replica.LOCAL:
                request[ROUTE_KEY] = "forwarded to the primary"
                return await replica.forward(Call(request, cluster, path, version, {}, leadership))
            handler, args, request[ROUTE_KEY] = resolve(request.method, path)
            call = Call(request, cluster, path, version, args, leadership, experimental)
            return await handler(call)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except NoFit as exc:
            return error_response(500, exc.message)
        except SchedulerError as exc:
            return error_response(400, exc.message)
        except (ConnectionResetError, web.HTTPException):
            raise
        except Exception as exc:  # a bug: never a traceback to the client, never a dead manager
            request_id = secrets.token_hex(6)
            log.error("internal error request_id=%s method=%s path=%s error=%r", request_id,
                      request.method, path, exc, exc_info=exc)
            return error_response(500, f"internal error in Shoal (request ID {request_id}, a bug: please "
                                       f"report it): {type(exc).__name__}: {exc}")

    async def api_headers(request: web.Request, response: web.StreamResponse) -> None:
        if response.status != 101:
            response.headers.setdefault("Api-Version", API_VERSION)
            response.headers.setdefault("Ostype", "linux")
            response.headers.setdefault("Docker-Experimental", str(experimental).lower())
            if cors:
                response.headers.update(CORS_HEADERS)

    app = web.Application(client_max_size=MAX_BODY, middlewares=[measure])
    app.on_response_prepare.append(api_headers)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
