"""Every route the docker CLI 28 and docker-py 7 can send at API 1.41 reaches a handler, or answers 501
saying what Shoal does not serve and why; none is a 404 or a bare "not implemented yet"."""
from __future__ import annotations

import re
from pathlib import Path

import docker
import pytest

from manager.api.routes import resolve
from manager.errors import ApiError

# (method, path template): `{0}` `{1}` are the object references docker-py formats in
DOCKER_PY = [
    ("GET", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("GET", "/events"), ("POST", "/auth"),
    ("GET", "/system/df"), ("POST", "/commit"), ("POST", "/build"), ("POST", "/build/prune"),
    ("GET", "/containers/json"), ("POST", "/containers/create"), ("POST", "/containers/prune"),
    ("GET", "/containers/{0}/json"), ("DELETE", "/containers/{0}"), ("POST", "/containers/{0}/attach"),
    ("GET", "/containers/{0}/attach/ws"), ("GET", "/containers/{0}/changes"), ("GET", "/containers/{0}/export"),
    ("GET", "/containers/{0}/logs"), ("GET", "/containers/{0}/stats"), ("GET", "/containers/{0}/top"),
    ("POST", "/containers/{0}/kill"), ("POST", "/containers/{0}/rename"), ("POST", "/containers/{0}/resize"),
    ("POST", "/containers/{0}/restart"), ("POST", "/containers/{0}/start"), ("POST", "/containers/{0}/stop"),
    ("POST", "/containers/{0}/wait"), ("POST", "/containers/{0}/pause"), ("POST", "/containers/{0}/unpause"),
    ("POST", "/containers/{0}/update"), ("POST", "/containers/{0}/exec"), ("GET", "/containers/{0}/archive"),
    ("PUT", "/containers/{0}/archive"), ("HEAD", "/containers/{0}/archive"),
    ("POST", "/exec/{0}/start"), ("POST", "/exec/{0}/resize"), ("GET", "/exec/{0}/json"),
    ("GET", "/images/json"), ("POST", "/images/create"), ("POST", "/images/load"), ("POST", "/images/prune"),
    ("GET", "/images/search"), ("DELETE", "/images/{0}"), ("GET", "/images/{0}/get"),
    ("GET", "/images/{0}/history"), ("GET", "/images/{0}/json"), ("POST", "/images/{0}/push"),
    ("POST", "/images/{0}/tag"), ("GET", "/distribution/{0}/json"),
    ("GET", "/networks"), ("POST", "/networks/create"), ("POST", "/networks/prune"), ("GET", "/networks/{0}"),
    ("DELETE", "/networks/{0}"), ("POST", "/networks/{0}/connect"), ("POST", "/networks/{0}/disconnect"),
    ("GET", "/volumes"), ("POST", "/volumes/create"), ("POST", "/volumes/prune"), ("GET", "/volumes/{0}"),
    ("DELETE", "/volumes/{0}"),
    ("GET", "/plugins"), ("POST", "/plugins/create"), ("GET", "/plugins/privileges"), ("POST", "/plugins/pull"),
    ("DELETE", "/plugins/{0}"), ("POST", "/plugins/{0}/disable"), ("POST", "/plugins/{0}/enable"),
    ("GET", "/plugins/{0}/json"), ("POST", "/plugins/{0}/pull"), ("POST", "/plugins/{0}/set"),
    ("POST", "/plugins/{0}/upgrade"), ("POST", "/plugins/{0}/push"),
    ("GET", "/swarm"), ("POST", "/swarm/init"), ("POST", "/swarm/join"), ("POST", "/swarm/leave"),
    ("POST", "/swarm/unlock"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/update"),
    ("GET", "/nodes"), ("GET", "/nodes/{0}"), ("DELETE", "/nodes/{0}"), ("POST", "/nodes/{0}/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{0}"), ("DELETE", "/services/{0}"),
    ("GET", "/services/{0}/logs"), ("POST", "/services/{0}/update"), ("GET", "/tasks"), ("GET", "/tasks/{0}"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{0}"), ("DELETE", "/secrets/{0}"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{0}"), ("DELETE", "/configs/{0}"),
]
# What the docker CLI 28 sends beyond docker-py (at API 1.41)
CLI_ONLY = [
    ("HEAD", "/_ping"), ("GET", "/images/get"), ("POST", "/session"), ("POST", "/build/cancel"),
    ("POST", "/grpc"), ("GET", "/containers/{0}/checkpoints"), ("POST", "/containers/{0}/checkpoints"),
    ("DELETE", "/containers/{0}/checkpoints/{1}"), ("GET", "/tasks/{0}/logs"), ("POST", "/secrets/{0}/update"),
    ("POST", "/configs/{0}/update"), ("POST", "/containers/{0}/copy"), ("GET", "/containers/ps"),
]
NOT_SERVED = {  # resources Shoal answers 501 for, on purpose
    "swarm", "nodes", "services", "tasks", "secrets", "configs", "plugins", "grpc", "checkpoints",
}
NODE_ROUTES = {("GET", "/nodes"), ("GET", "/nodes/{0}"), ("POST", "/nodes/{0}/update")}  # docker node ls/inspect/update
NOT_FOUND = {("GET", "/plugins/{0}/json")}  # served as "no such plugin", for `docker inspect NAME`
SAMPLES = {"containers": "node1/web", "images": "10.213.0.1:5000/busybox:latest",
           "distribution": "10.213.0.1:5000/busybox:latest"}


def concrete(template: str) -> str:
    resource = template.strip("/").split("/")[0]
    return template.replace("{0}", SAMPLES.get(resource, "x1")).replace("{1}", "cp1")


@pytest.mark.parametrize("method, template", DOCKER_PY + CLI_ONLY)
def test_each_route_is_served_or_explained(method, template):
    path = concrete(template)
    try:
        handler, _, _ = resolve(method, path)
    except ApiError as err:
        assert err.status == 501, err.message
        assert err.message.startswith(f"Shoal does not serve {method} {path}: "), err.message
        assert any(word in template for word in NOT_SERVED), f"{method} {template} should be served"
    else:
        if (method, template) in NODE_ROUTES | NOT_FOUND:
            return
        assert not any(word in template.split("/") or word in template for word in NOT_SERVED), \
            f"{method} {template} reached {handler.__name__}, expected a 501"


def test_the_list_covers_every_path_docker_py_formats():
    source = Path(docker.__file__).parent / "api"
    paths = {m.split("?")[0] for f in source.glob("*.py")
             for m in re.findall(r"""_url\(\s*['"]([^'"]+)['"]""", f.read_text())}
    assert len(paths) > 80
    assert paths - {template for _, template in DOCKER_PY} == set()
