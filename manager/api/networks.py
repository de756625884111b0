"""Network routes. A node-local network (bridge, macvlan, ...) lives on ONE node: made where the
scheduler or a `node/` prefix says, listed as `node/name`; a container that joins it is placed
there (see `manager.cluster.networks`). An overlay is ONE cluster-wide network made through the
engines' own multi-host networking (see `manager.cluster.overlay`), listed once by name and
joinable from every node of its overlay domain."""
from __future__ import annotations

import asyncio

from aiohttp import web

from manager.api import local_objects as lo
from manager.api.call import Call, refresh_container, refresh_networks
from manager.api.fanout import fan_out, prune as prune_everywhere, send_each, successes
from manager.api.jsonio import encode, json_response, parse_filters, read_model
from manager.api.models import NetworkConnectBody, NetworkCreateBody
from manager.api.proxy import proxy
from manager.cluster.engine import Engine
from manager.cluster.networks import ClusterNetwork
from manager.cluster.overlay import SWARM, Domain, OverlayView
from manager.errors import ApiError
from scheduler import ContainerSpec

KNOWN_SCOPE_DRIVERS = (None, "", "bridge", "overlay")  # a plugin's scope is the plugin's own
RM_SETTLE = 5.0  # seconds a removed overlay may linger on its members
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
    return json_response([dict(n.body, Name=n.ref) for n in call.cluster.networks() if _kept(call, n, filters)])


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
    """`docker network rm`: once, on a node that has it (a swarm-mode manager for a swarm overlay)."""
    ref = lo.path_name(call)
    network = call.cluster.find_network(ref)
    holders = _healthy_holders(network, ref)
    view = call.cluster.overlay()
    domain = None if network.local else view.domain_of(network.holders[0])
    remover = (domain and view.creator(domain, holders)) or holders[0]  # a swarm manager if it can
    successes(await send_each(call, [remover], path=f"/networks/{network.id}"))
    remover.forget_network(network.id)
    await _until_gone(network, [e for e in holders if e is not remover])
    return web.Response(status=204)


async def _until_gone(network: ClusterNetwork, holders: list[Engine]) -> None:
    """Wait (a few seconds at most) until no holder lists a removed network any more: swarm-mode
    engines let go of an overlay a moment after its manager removed it, and `docker network ls`
    right after `rm` (or `docker-compose down`) must not show it."""
    deadline = asyncio.get_running_loop().time() + RM_SETTLE
    while holders:
        await fan_out(holders, lambda e: e.refresh_networks())
        holders = [e for e in holders if any(n["Id"] == network.id for n in e.networks)]
        if not holders or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    for engine in holders:  # still listed: not shown until the engine's own event says so
        engine.forget_network(network.id)


def _overlay_creator(call: Call, view: OverlayView, body: dict) -> Engine:
    """The engine to make an overlay on (its new list is what placement reads; the other members
    catch up from their own network events); `Attachable` in swarm mode, so that plain containers
    can join it."""
    healthy = call.cluster.healthy()
    domain = view.largest(healthy)
    creator = view.creator(domain, healthy) if domain else None
    if creator is None:
        why = ("no healthy node is in a swarm-mode cluster or has a cluster-store" if domain is None else
               f"no healthy node of the {domain.describe()} can create networks (a swarm-mode manager)")
        raise ApiError(400, f"cannot create overlay network {body['Name']}: the cluster has no multi-host "
                            f"networking ({why}); see `shoal lab up --overlay` and the README")
    if domain.kind == SWARM:
        body["Attachable"] = True
    return creator


async def create(call: Call) -> web.Response:
    """`docker network create`: an overlay (`-d overlay`, or no driver at all when every healthy
    node is in one overlay domain: docker-compose's default network) once, cluster-wide; any
    other driver's network on ONE node (the strategy's pick, as for a container that reserves
    nothing, or the node a `node/` prefix names)."""
    body = (await read_model(call, NetworkCreateBody)).raw
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "network name is required")
    engine, body["Name"] = lo.pinned(call.cluster, name)
    if engine is not None and body.get("Driver") == "overlay":
        raise ApiError(400, f"an overlay network spans the cluster, no node can be named for it: create it "
                            f"as {body['Name']}, without {engine.name}/")
    if body.get("CheckDuplicate") and engine is None:
        if call.cluster.has_network_named(body["Name"]):
            raise ApiError(409, f"network with name {body['Name']} already exists")
    view = call.cluster.overlay()
    if engine is not None:
        target = engine
    elif (body.get("Driver") or view.default_driver(call.cluster.healthy())) == "overlay":
        body["Driver"] = "overlay"
        target = _overlay_creator(call, view, body)
    else:
        target = call.cluster.best_engine(ContainerSpec.from_create_body({}), "network")
    if body.get("Driver") not in KNOWN_SCOPE_DRIVERS:
        created = successes(await send_each(call, [target], body=encode(body), after=refresh_networks))[0]
        return json_response(created, 201)
    with target.making_network(body["Name"]):  # its list entry is known without asking
        created = successes(await send_each(call, [target], body=encode(body)))[0]
    target.remember_network(_entry(body, created["Id"], view.domain_of(target)))
    return json_response(created, 201)


def _entry(body: dict, network_id: str, domain: Domain | None) -> dict:
    """The list entry the engine will have for a network it just made from `body`."""
    overlay = body.get("Driver") == "overlay" and domain is not None
    scope = ("swarm" if domain.kind == SWARM else "global") if overlay else "local"
    return {"Name": body["Name"], "Id": network_id, "Scope": scope, "Driver": body.get("Driver") or "bridge",
            "Attachable": bool(body.get("Attachable")), "Ingress": False, "Internal": bool(body.get("Internal")),
            "Labels": body.get("Labels") or {}, "Options": body.get("Options") or {}, "Containers": {}}


async def attach(call: Call) -> web.StreamResponse:
    """`docker network connect|disconnect`: on the node of the container named in the body,
    which must reach the network."""
    body = await read_model(call, NetworkConnectBody)
    engine, container = call.cluster.find_container(body.Container)
    ref = lo.path_name(call)
    network = call.cluster.find_network(ref)
    if network.local and engine not in network.holders:
        raise ApiError(400, f"container {body.Container} is on {engine.name}, network {ref} is on "
                            f"{network.holders[0].name}")
    view = call.cluster.overlay()
    domain = None if network.local else view.domain_of(network.holders[0])
    if domain is not None and view.domain_of(engine) != domain:
        raise ApiError(400, f"container {body.Container} is on {engine.name}, which is not in the "
                            f"{domain.describe()} of network {ref}")
    # by name for a cluster-wide network: a swarm worker knows an attachable overlay's name before
    # it knows its ID (a created container is "not connected to the network <ID>")
    target = network.id if network.local else network.name
    return await proxy(call.request, engine, f"/networks/{target}/{call.args['action']}", call.version,
                       body=encode(dict(body.raw, Container=container.id)),
                       after=refresh_container(container.id))


async def prune(call: Call) -> web.Response:
    """`docker network prune` on every healthy node; results merged."""
    return json_response(await prune_everywhere(call, "NetworksDeleted", after=refresh_networks))
