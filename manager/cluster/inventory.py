"""The containers a node failure would move, kept in the cluster state (`inventory/<Swarm ID>`: the
node and container ID, whether it runs, and what re-creates it), so that a primary finds them even
when it never saw their engine: it left discovery while no primary acted, or was already dead
when this manager started. Only the primary writes; the records follow the engines' events.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Collection

from discovery.etcd_store import StoreError
from manager.cluster.cluster import Cluster
from manager.cluster.containers import Container
from manager.cluster.engine import QUIET_ACTIONS, Engine
from manager.cluster.leader import Leadership

log = logging.getLogger("shoal.inventory")
KIND = "inventory"


def create_config(container: Container, shared: Collection[str] = ()) -> tuple[dict, dict[str, dict]] | None:
    """(create body, {other network: endpoint config}) that re-creates `container` elsewhere, from
    the cache's `create_config()` (None while the container has only been listed, never inspected).
    On the `shared` networks (swarm or global scope) the address is not asked for again: the engine
    shows the one the cluster gave it there, which the dead node's endpoint still holds."""
    parts = container.create_config()
    if parts is None:
        return None
    short = container.id[:12]
    config = copy.deepcopy(parts["Config"])
    if config.get("Hostname") == short:
        config.pop("Hostname")  # the engine's default: the new container gets its own
    host = copy.deepcopy(parts["HostConfig"])
    networks = {name: {k: v for k, v in endpoint.items() if not (k == "IPAMConfig" and name in shared)}
                | {"Aliases": [a for a in endpoint.get("Aliases") or [] if a != short] or None}
                for name, endpoint in parts["NetworkingConfig"]["EndpointsConfig"].items()}
    mode = host.get("NetworkMode") or "default"
    first = mode if mode in networks else ("bridge" if mode == "default" and "bridge" in networks else None)
    body = dict(config, HostConfig=host)
    if first is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {first: networks.pop(first)}}
    if mode.startswith(("container:", "host", "none")):
        networks = {}
    return body, networks


def entry(engine: Engine, container: Container) -> dict | None:
    """The inventory record of one policy container (None while it is known from a listing only)."""
    parts = create_config(container, {n.get("Name") for n in engine.networks if n.get("Scope") != "local"})
    if parts is None or not container.swarm_id:
        return None
    body, networks = parts
    return {"swarm_id": container.swarm_id, "name": container.name, "config": body, "networks": networks,
            "running": container.state.running, "node": engine.id, "node_name": engine.name, "id": container.id,
            "created": container.created}


def entries(engine: Engine) -> dict[str, dict]:
    """Swarm ID -> record of every policy container the engine's cache holds."""
    found = (entry(engine, c) for c in engine.containers.reschedulable())
    return {e["swarm_id"]: e for e in found if e is not None}


class Inventory:
    """Keeps `inventory/` current from the healthy engines while this manager is primary."""

    def __init__(self, cluster: Cluster, leadership: Leadership) -> None:
        self.cluster = cluster
        self.leadership = leadership
        self._dirty: dict[str, None] = {}  # engine addresses to reconcile, in order
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        cluster.watchers.append(self._on_engine_event)
        leadership.listen(self._on_role)

    @property
    def records(self) -> dict[str, dict]:
        return self.cluster.state.items(KIND)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_role(self, primary: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if primary and not self._closed:
            self._task = asyncio.create_task(self._run(), name="inventory")
            self._mark(*self.cluster.engines)

    def _on_engine_event(self, engine: Engine, event: dict) -> None:
        kind, action = event.get("Type"), event.get("Action", "")
        if kind == "container" and action.split(":")[0] not in QUIET_ACTIONS or (
                kind == "swarm" and action in ("engine_connect", "engine_reconnect")):
            self._mark(engine.addr)

    def _mark(self, *addrs: str) -> None:
        self._dirty.update(dict.fromkeys(addrs))
        self._wake.set()

    async def _run(self) -> None:
        while self.leadership.is_primary:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty and self.leadership.is_primary:
                addr = next(iter(self._dirty))
                del self._dirty[addr]
                engine = self.cluster.engines.get(addr)
                if engine is not None and engine.healthy:
                    try:
                        await self.reconcile(engine)
                    except StoreError as exc:
                        log.warning("inventory not saved node=%s error=%s", engine.name, exc)
                        self._mark(addr)
                        await asyncio.sleep(1.0)
                    except Exception:  # a bug must not end the inventory for good
                        log.exception("inventory error node=%s", engine.name)

    async def reconcile(self, engine: Engine) -> None:
        """Make the records of this healthy engine match its cache: new and changed policy containers
        written, removed ones deleted. Of two copies with one Swarm ID on healthy engines (a move's
        new one, and the old one until it is removed) the newer is the record."""
        wanted, records = entries(engine), self.records
        for swarm_id, new in wanted.items():
            old = records.get(swarm_id)
            if old == new or (old is not None and old["node"] != engine.id and self._still_there(old)
                              and old["created"] >= new["created"]):
                continue
            await self._save(swarm_id, new)
        for swarm_id, old in records.items():
            if old["node"] == engine.id and swarm_id not in wanted:
                await self._save(swarm_id, None)

    def _still_there(self, record: dict) -> bool:
        other = self.cluster.engine_by_id(record["node"])
        return other is not None and other.healthy and record["id"] in other.containers

    async def _save(self, swarm_id: str, value: dict | None) -> None:
        if self.leadership.is_primary:
            await self.cluster.state.save(KIND, swarm_id, value, self.leadership.fence)
