"""`docker node ls / inspect / update`: the engines as swarm-mode nodes (the subset of the node API
the docker CLI uses), with the availability and labels kept in the cluster state."""
from __future__ import annotations

from aiohttp import web

from manager.api.call import Call
from manager.api.jsonio import json_response, parse_filters, read_model
from manager.api.local_objects import labels_match
from manager.api.models import NodeSpecBody
from manager.cluster.timefmt import rfc3339
from manager.cluster.engine import Engine
from manager.cluster.nodes import node_id, updated
from manager.errors import ApiError

NODE_FILTERS = ("id", "name", "label", "node.label", "role", "membership")


def node_json(call: Call, engine: Engine) -> dict:
    """One node as `GET /nodes/{id}` describes it."""
    settings = call.cluster.node_settings(engine)
    created = settings.created_at or engine.updated_at
    return {
        "ID": node_id(engine),
        "Version": {"Index": settings.version},
        "CreatedAt": rfc3339(created),
        "UpdatedAt": rfc3339(settings.updated_at or created),
        "Spec": {"Labels": settings.labels, "Role": "worker", "Availability": settings.availability},
        "Description": {
            "Hostname": engine.name,
            "Platform": {"Architecture": engine.arch, "OS": engine.labels.get("ostype", "")},
            "Resources": {"NanoCPUs": int(engine.cpus * 1e9), "MemoryBytes": engine.memory},
            "Engine": {"EngineVersion": engine.version, "Labels": dict(engine.labels), "Plugins": []},
            "TLSInfo": {},
        },
        "Status": {"State": "ready" if engine.healthy else "down", "Message": engine.error,
                   "Addr": engine.ip},
    }


async def listing(call: Call) -> web.Response:
    """`GET /nodes` with the CLI's filters."""
    filters = parse_filters(call.request.query.get("filters"))
    unknown = set(filters) - set(NODE_FILTERS)
    if unknown:
        raise ApiError(400, f"invalid filter '{sorted(unknown)[0]}'")
    nodes = []
    for engine in call.cluster.validated():
        node = node_json(call, engine)
        if filters.get("id") and not any(node["ID"].startswith(v) for v in filters["id"]):
            continue
        if filters.get("name") and not any(v in engine.name for v in filters["name"]):
            continue
        if not labels_match(filters.get("label", []), engine.labels):
            continue
        if not labels_match(filters.get("node.label", []), node["Spec"]["Labels"]):
            continue
        if filters.get("role") and "worker" not in filters["role"]:
            continue
        if filters.get("membership") and "accepted" not in filters["membership"]:
            continue
        nodes.append(node)
    return json_response(nodes)


def _find(call: Call) -> Engine:
    """The node named by ID, unique ID prefix, or hostname; 404 otherwise."""
    ref = call.args["node"]
    engines = call.cluster.validated()
    for match in (lambda e: node_id(e) == ref, lambda e: e.name == ref, lambda e: node_id(e).startswith(ref)):
        found = [e for e in engines if match(e)]
        if len(found) == 1:
            return found[0]
        if found:
            raise ApiError(400, f"node {ref} is ambiguous ({len(found)} matches)")
    raise ApiError(404, f"node {ref} not found")


async def inspect(call: Call) -> web.Response:
    return json_response(node_json(call, _find(call)))


async def update(call: Call) -> web.Response:
    """`POST /nodes/{id}/update?version=N`: availability and labels, kept in the cluster state."""
    spec = (await read_model(call, NodeSpecBody)).raw
    engine = _find(call)
    settings = updated(call.cluster.node_settings(engine), spec, call.request.query.get("version"))
    if call.leadership.replicated and call.leadership.fence is None:
        raise ApiError(503, "this manager is no longer the primary; retry")
    await call.cluster.save_node_settings(engine, settings, call.leadership.fence)
    return web.Response(status=200)
