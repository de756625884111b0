"""The routing table: every path shape the docker CLI sends reaches the right handler."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from manager.api import containers as ctr
from manager.api import images as img
from manager.api import system as sysh
from manager.api.dashboard import handlers as dash
from manager.api.routes import first_segment, resolve, route_template, split_version
from manager.errors import ApiError


@pytest.mark.parametrize("raw, version, path", [
    ("/v1.41/containers/json", "1.41", "/containers/json"),
    ("/_ping", None, "/_ping"),
    ("/v1.24/info", "1.24", "/info"),
    ("/version", None, "/version"),
])
def test_version_prefix_is_optional(raw, version, path):
    assert split_version(raw) == (version, path)


@pytest.mark.parametrize("method, path, handler, args", [
    ("HEAD", "/_ping", sysh.ping, {}),
    ("GET", "/containers/json", ctr.ps, {}),
    ("GET", "/containers/web/json", ctr.inspect, {"ref": "web"}),
    ("GET", "/containers/node1/web/json", ctr.inspect, {"ref": "node1/web"}),
    ("DELETE", "/containers/node1/web", ctr.remove, {"ref": "node1/web"}),
    ("POST", "/containers/abc123/kill", ctr.act, {"ref": "abc123", "action": "kill"}),
    ("POST", "/containers/abc123/wait", ctr.act, {"ref": "abc123", "action": "wait"}),
    ("POST", "/containers/abc123/update", ctr.update, {"ref": "abc123"}),
    ("GET", "/containers/abc123/logs", ctr.forward, {"ref": "abc123"}),
    ("HEAD", "/containers/abc123/archive", ctr.forward, {"ref": "abc123"}),
    ("POST", "/exec/e1/start", ctr.exec_start, {"exec": "e1"}),
    ("GET", "/images/127.0.0.1:5000/busybox/json", img.forward, {"image": "127.0.0.1:5000/busybox"}),
    ("POST", "/images/127.0.0.1:5000/busybox/push", img.push, {"image": "127.0.0.1:5000/busybox"}),
    ("GET", "/images/127.0.0.1:5000/busybox:v1/get", img.save, {"image": "127.0.0.1:5000/busybox:v1"}),
    ("GET", "/images/get", img.save, {}),
    ("DELETE", "/images/127.0.0.1:5000/busybox:v1", img.remove, {"image": "127.0.0.1:5000/busybox:v1"}),
    ("POST", "/images/busybox/tag", img.tag, {"image": "busybox"}),
    ("POST", "/images/create", img.pull, {}),
    ("GET", "/metrics", sysh.metrics, {}),
    ("GET", "/", dash.root, {}),
    ("GET", "/dashboard/", dash.page, {}),
    ("GET", "/dashboard/app.js", dash.page, {"asset": "app.js"}),
    ("GET", "/dashboard/stream", dash.stream, {}),
])
def test_paths_reach_their_handler(method, path, handler, args):
    found, groups, _ = resolve(method, path)
    assert found is handler
    assert {k: v for k, v in groups.items() if v is not None} == args


async def test_a_plugin_is_never_found_so_docker_inspect_can_say_no_such_object():
    handler, args, _ = resolve("GET", "/plugins/vieux/sshfs:latest/json")
    with pytest.raises(ApiError) as err:
        await handler(SimpleNamespace(args=args))
    assert (err.value.status, err.value.message) == (404, 'plugin "vieux/sshfs:latest" not found')


@pytest.mark.parametrize("method, path, status, message", [
    ("GET", "/swarm", 501, "Shoal does not serve GET /swarm: swarm-mode objects (swarm, services, "
                           "tasks, secrets, configs) are not part of classic Swarm: Shoal schedules plain "
                           "containers (docker run, docker-compose)"),
    ("GET", "/plugins", 501, "Shoal does not serve GET /plugins: plugins are installed and managed on each "
                             "node's engine, not through Shoal"),
    ("GET", "/images/viz", 501, "Shoal does not serve GET /images/viz: Not supported in clustering mode."),
    ("POST", "/containers/create/extra", 501, "Shoal does not implement POST /containers/create/extra yet"),
    ("PUT", "/containers/json", 501, "Shoal does not implement PUT /containers/json yet"),
    ("GET", "/nonsense", 404, "page not found"),
    ("GET", "/dashboard/../info", 404, "page not found"),
    ("POST", "/dashboard/stream", 501, "Shoal does not implement POST /dashboard/stream yet"),
])
def test_unknown_paths_get_a_clear_error(method, path, status, message):
    with pytest.raises(ApiError) as err:
        resolve(method, path)
    assert (err.value.status, err.value.message) == (status, message)


@pytest.mark.parametrize("pattern, template", [
    (r"/containers/(?P<ref>[^/]+(?:/[^/]+)?)/json", "/containers/{ref}/json"),
    (r"/containers/(?P<ref>[^/]+(?:/[^/]+)?)/(?P<action>start|stop)", "/containers/{ref}/{action}"),
    (r"/containers/(?P<ref>[^/]+)/(?:logs|top)", "/containers/{ref}/(logs|top)"),
    (r"/dashboard/(?P<asset>app\.js|style\.css)?", "/dashboard/{asset}"),
    (r"/_ping", "/_ping"),
])
def test_route_templates_label_metrics_without_the_values(pattern, template):
    assert route_template(pattern) == template


async def served(cors: bool):
    """A test client for the app over a cluster with no engines."""
    from aiohttp.test_utils import TestClient, TestServer

    from manager.api.routes import build_app
    from manager.cluster.cluster import Cluster
    from manager.cluster.options import EngineOptions
    from scheduler import Scheduler

    return TestClient(TestServer(build_app(Cluster(Scheduler(), EngineOptions()), cors=cors)))


async def test_cors_headers_and_preflight_only_when_asked():
    async with await served(cors=True) as client:
        preflight = await client.options("/v1.41/containers/json")
        ping = await client.get("/_ping")
        assert preflight.status == 200 and ping.status == 200
        for resp in (preflight, ping):
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "DELETE" in resp.headers["Access-Control-Allow-Methods"]
    async with await served(cors=False) as client:
        ping = await client.get("/_ping")
        preflight = await client.options("/containers/json")
        assert ping.status == 200 and "Access-Control-Allow-Origin" not in ping.headers
        assert preflight.status == 501


def test_routes_are_found_by_their_literal_first_segment():
    assert first_segment(r"/containers/(?P<ref>[^/]+)/json") == "containers" and first_segment(r"/") == ""
    with pytest.raises(ValueError):
        first_segment(r"/(?:containers|images)/json")  # could not be found by its segment
