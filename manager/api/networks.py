"""Network routes. A node-local network (bridge, macvlan, ...) lives on ONE node: made where the
scheduler or a `node/` prefix says, listed as `node/name`; a container that joins it is placed
there (see `manager.cluster.networks`). Cluster-wide networks are listed once by name."""
from __future__ import annotations

from aiohttp import web

from manager.api import local_objects as lo
from manager.api.call import Call, refresh_container, refresh_networks
from manager.api.fanout import fan_out, prune as prune_everywhere, send_each, successes
from manager.api.jsonio import encode, json_response, parse_filters, read_model
from manager.api.models import NetworkConnectBody, NetworkCreateBody
from manager.api.proxy import proxy
from manager.cluster.engine import Engine
from manager.cluster.networks import ClusterNetwork, cluster_networks
from manager.errors import ApiError
from scheduler import ContainerSpec

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "node", "scope", "type"}
NETWORK_TYPES = ("custom", "builtin")


def _kept(call: Call, network: ClusterNetwork, filters: dict[str, list[str]]) -> bool:
    body = network.body
    checks = {
        "driver": lambda vs: body.get("Driver") in vs,
        "id": lambda vs: lo.searched(vs, network.id),
        "label": lambda vs: lo.labels_match(vs, body.get("Labels")),
        "name": lambda vs: lo.searched(vs, network.name, network.ref),
        "node": lambda vs: any(lo.on_node(vs, e) for e in network.holders),
        "scope": lambda vs: body.get("Scope", "local") in vs,
        "type": lambda vs: ("builtin" if network.builtin else "custom") in vs,
        "dangling": lambda vs: any(_truth(v) != _in_use(call, network) for v in vs),
    }
    return all(checks[key](values) for key, values in filters.items() if values)


def _truth(value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"Invalid filter 'dangling={value}'")


def _in_use(call: Call, network: ClusterNetwork) -> bool:
    """Builtin networks count as used; others when some cached container is attached."""
    return network.builtin or any(
        net_id == network.id for e in network.holders for c in e.containers.values()
        for _, net_id in c.networks)


async def listing(call: Call) -> web.Response:
    """`docker network ls` from the cache: node-local networks as `node/name`, a cluster-wide
    one once; filters `type`, `name`, `id`, `label`, `driver`, `node`, `scope`, `dangling`."""
    filters = parse_filters(call.request.query.get("filters"))
    lo.check_filters(filters, LIST_FILTERS)
    for kind in filters.get("type", []):
        if kind not in NETWORK_TYPES:
            raise ApiError(400, f"invalid filter: 'type'='{kind}'")
    networks = cluster_networks(call.cluster.validated())
    return json_response([dict(n.body, Name=n.ref) for n in networks if _kept(call, n, filters)])


def _healthy_holders(network: ClusterNetwork, ref: str) -> list[Engine]:
    engines = [e for e in network.holders if e.healthy]
    if not engines:
        raise ApiError(500, f"network {ref} is on unhealthy node {network.holders[0].name}")
    return engines


async def inspect(call: Call) -> web.Response:
    """`docker network inspect`: a node-local network from its node; a cluster-wide one with
    the containers of every node."""
    ref = lo.path_name(call)
    network = call.cluster.find_network(ref)
    answers = successes(await send_each(call, _healthy_holders(network, ref), path=f"/networks/{network.id}"))
    merged = dict(answers[0])
    merged["Containers"] = {k: v for answer in answers for k, v in (answer.get("Containers") or {}).items()}
    return json_response(merged)


async def remove(call: Call) -> web.Response:
    """`docker network rm`: once, on a node that has it; then every holder re-lists its networks."""
    ref = lo.path_name(call)
    network = call.cluster.find_network(ref)
    holders = _healthy_holders(network, ref)
    successes(await send_each(call, holders[:1], path=f"/networks/{network.id}"))
    await fan_out(holders, lambda e: e.refresh_networks())
    return web.Response(status=204)


async def create(call: Call) -> web.Response:
    """`docker network create`: a node-local network on ONE node (the strategy's pick, as for a
    container that reserves nothing, or the node a `node/` prefix names)."""
    body = (await read_model(call, NetworkCreateBody)).raw
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "network name is required")
    engine, body["Name"] = lo.pinned(call.cluster, name)
    if body.get("CheckDuplicate") and engine is None:
        taken = [n for n in cluster_networks(call.cluster.validated()) if n.name == body["Name"]]
        if taken:
            raise ApiError(409, f"network with name {body['Name']} already exists")
    if engine is None:
        engine = call.cluster.best_engine(ContainerSpec.from_create_body({}), "network")
    created = successes(await send_each(call, [engine], body=encode(body), after=refresh_networks))[0]
    return json_response(created, 201)


async def attach(call: Call) -> web.StreamResponse:
    """`docker network connect|disconnect`: on the node of the container named in the body,
    which must reach the network."""
    body = await read_model(call, NetworkConnectBody)
    engine, container = call.cluster.find_container(body.Container)
    ref = lo.path_name(call)
    network = call.cluster.find_network(ref)
    if engine not in network.holders:
        where = ", ".join(e.name for e in network.holders)
        raise ApiError(400, f"container {body.Container} is on {engine.name}, network {ref} is on {where}")
    return await proxy(call.request, engine, f"/networks/{network.id}/{call.args['action']}", call.version,
                       body=encode(dict(body.raw, Container=container.id)),
                       after=refresh_container(container.id))


async def prune(call: Call) -> web.Response:
    """`docker network prune` on every healthy node; results merged."""
    return json_response(await prune_everywhere(call, "NetworksDeleted", after=refresh_networks))
