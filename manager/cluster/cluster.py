"""The cluster: engines by address, lookups across them, and serialized placement."""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import re
import secrets
import time
from typing import Any, Callable, Iterable, TypeVar

import aiohttp

from discovery.etcd_store import Fence, StoreError
from manager import heap
from manager.cluster.builds import BuildSessions
from manager.cluster.changes import CHANGES, PerEngine
from manager.cluster.containers import NAMES_SEEN, OWNERS, Container
from manager.cluster.engine import ENGINE_STATES, HEALTHY, PENDING, Engine
from manager.cluster.events import EventBus
from manager.cluster.images import image_matches, pull_on
from manager.cluster.metrics import ClusterCollector
from manager.cluster.names import plain_name, split_node_ref
from manager.cluster.networks import ClusterNetwork, cluster_networks, find_network, network_refs, place_networks
from manager.cluster.options import EngineOptions
from manager.cluster.overlay import Domain, OverlayView, overlay_view, shared_networks
from manager.cluster.placements import PlacementLog
from manager.cluster.nodes import NodeSettings, node_id
from manager.cluster.snapshot import node_of
from manager.cluster.state import ClusterState, MemoryState
from manager.errors import ApiError, engine_error, name_conflict, not_found
from scheduler import ContainerInfo, ContainerSpec, NoFit, Node, Scheduler, SchedulerError, parse_expr
from scheduler.node import SWARM_ID_LABEL
from scheduler.scheduler import NO_HEALTHY_NODE, NO_NODES

log = logging.getLogger("shoal.cluster")

IMAGE_ID = re.compile(r"[0-9a-f]{64}")
EXEC_MEMORY = 10000  # exec IDs whose engine is remembered (older ones are found by asking around)


class NoOtherNode(ApiError):
    """Every engine that could take a container was left out (a create failed on each)."""


class CreateFailed(ApiError):
    """The engine chosen for a container refused or failed to create it."""

    def __init__(self, engine: Engine, error: ApiError) -> None:
        super().__init__(error.status, error.message)
        self.engine = engine


def _tried(failures: list[CreateFailed]) -> ApiError:
    """The last engine's error, naming the nodes the create failed on before it."""
    last = failures[-1]
    before = ", ".join(f.engine.name for f in failures[:-1])
    return ApiError(last.status, f"{last.message} (the create also failed on {before})" if before else last.message)


@functools.lru_cache(maxsize=65536)
def natural_key(text: str) -> tuple:
    """`node2` before `node10`."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


T = TypeVar("T")
# What a view of the engines' caches depends on: which engines are validated, and their caches.
CACHED = ("name", "state", "id", "generation")
# What the overlay domains depend on: which engines are validated, and their memberships.
DOMAINS = ("name", "state", "id", "membership")
# What the cluster's networks depend on: the domains, and the engines' networks.
NETWORKS = (*DOMAINS, "networks")


class Cluster:
    """All engines, and the operations that need more than one of them."""

    def __init__(self, scheduler: Scheduler, options: EngineOptions, create_retry: int = 0,
                 state: ClusterState | None = None) -> None:
        self.scheduler = scheduler
        self.options = options
        self.create_retry = create_retry  # `--cluster-opt swarm.createretry`
        self.engines: dict[str, Engine] = {}
        self.events = EventBus()
        self.placements = PlacementLog(scheduler.strategy_name)
        self.metrics = ClusterCollector(self.engines, self.nodes, scheduler, ENGINE_STATES)
        self.state = state or MemoryState()
        self.state.listen(self._state_changed)
        self.watchers: list[Callable[[Engine, dict], None]] = []  # engine events, after the cache
        self.members_known = asyncio.Event()  # discovery has given the membership at least once
        self.builds = BuildSessions()
        self.session: aiohttp.ClientSession | None = None
        self._pending: dict[str, list[ContainerInfo]] = {}
        self._pending_names: set[str] = set()
        self._placement = asyncio.Lock()
        self._exec_owner: dict[str, str] = {}  # exec ID -> engine address, oldest first
        self._id_owners: dict[str, Engine] = {}  # Docker engine ID -> the engine that has it
        self._members = 0  # counts the membership changes
        self._views: dict[str, tuple[tuple, Any]] = {}
        self._snapshot_list: PerEngine[Node] = PerEngine()  # what _snapshots() built last

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            # idle connections outlive the longest refresh interval: a refresh reuses its connection
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=64, force_close=False,
                                           ssl=self.options.tls or True,
                                           keepalive_timeout=self.options.refresh_max + 30),
            auto_decompress=False)

    async def close(self) -> None:
        await asyncio.gather(*(e.stop() for e in self.engines.values()))
        self.engines.clear()
        self.events.close()
        if self.session:
            await self.session.close()

    # ---- membership --------------------------------------------------------------------------
    async def set_members(self, addrs: Iterable[str]) -> None:
        """Follow discovery: new addresses become Pending engines, vanished ones are dropped."""
        wanted = set(addrs)
        removed = [self.engines.pop(a) for a in list(self.engines) if a not in wanted]
        if removed:  # a removed engine (its whole cache) is not kept alive as an ID's owner
            self._members += 1
            self._id_owners = {i: e for i, e in self._id_owners.items() if self.engines.get(e.addr) is e}
        for engine in removed:
            log.info("engine removed addr=%s node=%s", engine.addr, engine.name)
            await engine.stop()
        for addr in sorted(wanted - set(self.engines)):
            log.info("engine added addr=%s", addr)
            engine = Engine(addr, self.session, self.options, self._engine_event, self._duplicate_of)
            self.engines[addr] = engine
            self._members += 1
            engine.start()
        self.members_known.set()

    def _engine_event(self, engine: Engine, event: dict) -> None:
        """Every engine event: node settings applied on connect, then subscribers, then watchers."""
        if event.get("Action") == "engine_connect" and event.get("Type") == "swarm":
            settings = self.node_settings(engine)
            engine.set_node_settings(settings.availability, settings.labels)
        self.events.publish(engine, event)
        for watcher in self.watchers:
            watcher(engine, event)

    def node_settings(self, engine: Engine) -> NodeSettings:
        """What `docker node update` set on this engine's node."""
        return NodeSettings.from_state(self.state.get("nodes", node_id(engine)))

    async def save_node_settings(self, engine: Engine, settings: NodeSettings, fence: Fence | None) -> None:
        """Keep new node settings (they apply once stored); 503 when the store refuses or is away."""
        try:
            await self.state.save("nodes", node_id(engine), settings.as_state(), fence)
        except StoreError as exc:
            raise ApiError(503, f"the node update was not saved: {exc}") from None

    def _state_changed(self, kind: str, key: str, value: dict | None) -> None:
        if kind != "nodes":
            return
        settings = NodeSettings.from_state(value)
        for engine in self.validated():
            if node_id(engine) == key:
                engine.set_node_settings(settings.availability, settings.labels)

    def engine_by_id(self, engine_id: str) -> Engine | None:
        """The engine whose `ID|addr` is `engine_id`, if it is still a member."""
        return next((e for e in self.engines.values() if e.id == engine_id), None)

    def _duplicate_of(self, engine: Engine) -> str | None:
        """Why `engine` is refused: another engine of the cluster got its Docker ID first."""
        docker_id = engine.id.split("|")[0]
        owner = self._id_owners.get(docker_id)
        if owner is not None and owner is not engine and self.engines.get(owner.addr) is owner \
                and owner.id.split("|")[0] == docker_id:
            return (f"ID duplicated. {docker_id} shared by this node {engine.addr} "
                    f"and another node {owner.addr}")
        self._id_owners[docker_id] = engine
        return None

    def view(self, what: str, build: Callable[[], T], *watched: str) -> T:
        """`build()` (a value of the whole cluster), kept until the membership changes or an engine
        writes one of the `watched` attributes (manager.cluster.changes.WATCHED). A shared value:
        never modify it."""
        key = (id(self.engines), len(self.engines), self._members, CHANGES.key(*watched))
        hit = self._views.get(what)
        if hit is None or hit[0] != key:
            hit = self._views[what] = (key, build())
        return hit[1]

    def listed_engines(self) -> list[Engine]:
        """Every engine, in natural order of name (unnamed ones by address)."""
        return self.view("listed", lambda: sorted(
            self.engines.values(), key=lambda e: natural_key(e.name or "~" + e.addr)), "name")

    def validated(self) -> list[Engine]:
        """Engines that have been validated (Healthy or Unhealthy)."""
        return self.view("validated", lambda: [e for e in self.listed_engines() if e.state != PENDING and e.id],
                         "name", "state", "id")

    def _validated_by_id(self) -> dict[str, Engine]:
        return self.view("by id", lambda: {e.id: e for e in self.validated()}, "name", "state", "id")

    def healthy(self) -> list[Engine]:
        return self.view("healthy", lambda: [e for e in self.listed_engines() if e.state == HEALTHY],
                         "name", "state")

    def engine_by_name(self, ref: str) -> Engine | None:
        """A validated engine by name, ID or address."""
        return next((e for e in self.validated() if ref in (e.name, e.id, e.addr)), None)

    def split_node(self, ref: str) -> tuple[Engine | None, str]:
        """`node1/net` -> (node1's engine, "net"); anything else -> (None, ref)."""
        node, sep, rest = ref.partition("/")
        engine = self.engine_by_name(node) if sep else None
        return (engine, rest) if engine and rest else (None, ref)

    # ---- lookups -----------------------------------------------------------------------------
    def networks(self) -> list[ClusterNetwork]:
        """Every network of the validated engines, a cluster-wide one once (a shared list: never
        modify it)."""
        return self.view("networks", lambda: cluster_networks(self.validated()), *NETWORKS)

    def has_network_named(self, name: str) -> bool:
        """Whether a network of the cluster has this plain name (CheckDuplicate). The engines' lists
        are read first: the cluster's networks come from them, and are rebuilt after every change."""
        return (any(n["Name"] == name for e in self.validated() for n in e.networks)
                and any(n.name == name for n in self.networks()))

    def find_network(self, ref: str) -> ClusterNetwork:
        """A network by ID, `node/name`, unique name or unique ID prefix (404 / 400 otherwise)."""
        return find_network(self.networks(), ref)

    def containers(self) -> Iterable[tuple[Engine, Container]]:
        for engine in self.validated():
            for container in engine.containers.values():
                yield engine, container

    def newest_first(self, running_only: bool = False) -> list[tuple[Engine, Container]]:
        """Every validated engine's containers (or the running ones on healthy engines), newest first
        (`docker ps` order); kept until an engine's cache changes (a shared list: never modify it)."""
        def build() -> list[tuple[Engine, Container]]:
            rows = [(e, c) for e in self.validated() for c in e.containers.values()]
            rows.sort(key=lambda ec: ec[1].created, reverse=True)
            # One tuple per container, kept: frozen now (on this `ps`), or every young collection
            # until the next freeze walks them (20-60 ms at 150,000), on whatever call runs then.
            heap.collect_round(full=False)
            return rows

        def running() -> list[tuple[Engine, Container]]:
            return [ec for ec in self.newest_first() if ec[1].state.running and ec[0].healthy]
        return self.view("running first" if running_only else "newest first", running if running_only else build,
                         *CACHED)

    def find_container(self, ref: str, healthy_only: bool = True) -> tuple[Engine, Container]:
        """Resolve an ID, short ID, Swarm ID, name, `node/name` or unique prefix (classic order)."""
        found = self._lookup(ref)
        if found is None:
            raise not_found("container", ref)
        engine, container = found
        if healthy_only and not engine.healthy:
            raise ApiError(500, f"Container {ref} running on unhealthy node {engine.name}")
        return found

    def _lookup(self, ref: str) -> tuple[Engine, Container] | None:
        owner = OWNERS.get(ref)  # a full ID (what create answered): its engine, if it is ours
        if isinstance(owner, Engine) and self._validated_by_id().get(owner.id) is owner:
            container = owner.containers.get(ref)
            if container is not None:
                return owner, container
        engines = self.validated()
        for engine in engines:  # full ID, then short ID or Swarm ID
            if ref in engine.containers:
                return engine, engine.containers.get(ref)
        for engine in engines:
            found = engine.containers.by_ref(ref)
            if found is not None:
                return engine, found
        node, name = split_node_ref(ref)  # `web`, `/web`, `node1/web`, `<ID>/web`
        by_name = [(e, c) for e in engines if node in ("", e.name, e.id)
                   for c in (e.containers.by_name(name),) if c is not None]
        if len(by_name) == 1:
            return by_name[0]
        if by_name or not ref:
            return None
        by_prefix = [(e, c) for e in engines for c in e.containers.values()
                     if c.id.startswith(ref) or c.swarm_id.startswith(ref)]
        return by_prefix[0] if len(by_prefix) == 1 else None

    def name_taken(self, name: str, replacing: str | None = None) -> bool:
        """Is `name` used anywhere (a container being moved, with Swarm ID `replacing`, excepted)?"""
        name = plain_name(name)
        if name in self._pending_names:
            return True
        if name not in NAMES_SEEN:  # in no cache: no need to ask each engine's
            return False
        for engine in self.validated():
            found = engine.containers.by_name(name)
            if found is not None and (replacing is None or found.swarm_id != replacing):
                return True
        return False

    def remember_exec(self, exec_id: str, engine: Engine) -> None:
        """Where an exec instance lives (the last EXEC_MEMORY of them are kept)."""
        self._exec_owner[exec_id] = engine.addr
        if len(self._exec_owner) > EXEC_MEMORY:
            del self._exec_owner[next(iter(self._exec_owner))]

    def exec_engine(self, exec_id: str) -> Engine | None:
        return self.engines.get(self._exec_owner.get(exec_id, ""))

    def any_engine(self) -> Engine:
        """A healthy engine, for calls any of them can answer (login, search); spread at random."""
        engines = self.healthy()
        if not engines:
            raise ApiError(500, NO_HEALTHY_NODE if self.engines else NO_NODES)
        return random.choice(engines)

    def engines_with_image(self, ref: str, match: Callable[[dict, str], bool] = image_matches) -> list[Engine]:
        """Validated engines holding an image that `match`es `ref` (by default: an ID, ID prefix or
        reference)."""
        return [e for e in self.validated() if any(match(i, ref) for i in e.images)]

    def overlay(self) -> OverlayView:
        """The engines' overlay domains (recomputed after a membership changed)."""
        return self.view("overlay", lambda: overlay_view(self.validated()), *DOMAINS)

    def overlay_networks(self) -> dict[Domain, frozenset[str]]:
        """The cluster-wide networks of each overlay domain that has some, by name."""
        return self.view("overlay networks", lambda: shared_networks(self.overlay(), self.validated()), *NETWORKS)

    # ---- placement ---------------------------------------------------------------------------
    def node(self, engine: Engine, view: OverlayView | None = None,
             networks: dict[Domain, frozenset[str]] | None = None) -> Node:
        """The engine's scheduler snapshot, with the cluster-wide networks of its overlay domain
        (`view`, `networks`: the cluster's, when the caller has them)."""
        domain = (view or self.overlay()).domain_of(engine)
        if domain is None:
            return node_of(engine)
        return node_of(engine, domain.describe(), (networks or self.overlay_networks()).get(domain, frozenset()))

    def keep_up(self) -> None:
        """Bring the scheduler snapshots, and the node keys the scheduler keeps for the specs placed
        lately, up to date (called every second: a few changed engines each time). The snapshots are
        taken again for the engines written to even while the `nodes` view holds: past the last
        8,192 writes (`updated_at` alone, at 5,000 engines, in about a minute) a build cannot tell
        who wrote and takes all of them again (33 ms at 5,000), on the create after a quiet spell."""
        self._update_snapshots()
        self.scheduler.keep_up(self.nodes())

    def nodes(self) -> list[Node]:
        """Scheduler snapshots of all validated engines, pending placements included (a shared
        list: never modify it)."""
        snapshots, index = self.view("nodes", self._snapshots, *CACHED, "networks", "membership")
        result = None
        for addr, placeholders in self._pending.items():
            engine, i = self.engines.get(addr), index.get(addr)
            if not placeholders or engine is None or i is None:
                continue
            # a placement whose container is already in the cache (its create event came first)
            # must not count twice
            pending = tuple(p for p in placeholders if engine.containers.by_ref(p.labels[SWARM_ID_LABEL]) is None)
            if pending:
                result = result or list(snapshots)
                result[i] = dataclasses.replace(result[i], containers=result[i].containers + pending)
        return result or snapshots

    def _snapshots(self) -> tuple[list[Node], dict[str, int]]:
        """Every validated engine's snapshot, and the place of each engine's in that list; only the
        engines that wrote since the last build are taken again (a create changes one of them)."""
        self._update_snapshots()
        return list(self._snapshot_list.values), self._snapshot_list.index

    def _update_snapshots(self) -> None:
        view, networks = self.overlay(), self.overlay_networks()
        self._snapshot_list.update(self.validated(), (view, networks), lambda e: self.node(e, view, networks))

    def best_engine(self, spec: ContainerSpec, kind: str = "container", avoid: Iterable[str] = ()) -> Engine:
        """The engine the scheduler ranks first for `spec` (a container, or what `kind` says: a
        build, a network), leaving out the engine IDs in `avoid` (engines a create has just failed
        on); NoFit when none can take it. Every decision goes to the placement log."""
        began = time.perf_counter()
        by_id = self._validated_by_id()
        avoid = set(avoid)
        nodes = self.nodes()
        try:
            chosen = self.scheduler.choose(spec, nodes, avoid)
            if chosen is None and spec.has_soft_rules:  # soft rules are wishes: drop them
                chosen = self.scheduler.choose(spec.hard_only(), nodes, avoid)
        except NoFit as exc:
            self.placements.no_fit(kind, spec, exc, time.perf_counter() - began)
            raise
        if chosen is None:
            raise NoOtherNode(500, "no other node can take the container")
        engine = by_id[chosen.id]
        self.placements.placed(kind, spec, engine.name, time.perf_counter() - began)
        return engine

    async def create_container(self, body: dict, name: str | None, auth: str | None,
                               replacing: str | None = None) -> tuple[Engine, dict]:
        """Schedule and create a container; returns its engine and the engine's 201 body.

        `replacing`: the Swarm ID of a container being moved (rescheduled); its old copy does not
        hold the name.

        The container goes where the networks it joins are (a `node/name` reference is rewritten
        to the name that node knows). A create the chosen engine fails (it is unreachable, or
        answers 5xx) is tried on the next best engine, up to `create_retry` times.
        """
        labels = body.setdefault("Labels", None) or {}
        labels.setdefault(SWARM_ID_LABEL, secrets.token_hex(32))
        body["Labels"] = labels
        # the cluster's networks only when the body names some (rebuilt after any engine's list changed)
        body, networks = place_networks(self.networks() if network_refs(body) else (), body)
        spec = dataclasses.replace(ContainerSpec.from_create_body(body, name), networks=networks)
        spec = self._by_image_id(spec)
        failed: list[CreateFailed] = []
        while True:
            try:
                return await self._create_near_image(spec, name, auth, [f.engine.id for f in failed], replacing)
            except CreateFailed as exc:
                failed.append(exc)
                if exc.status < 500 or len(failed) > self.create_retry:
                    raise _tried(failed) from None
                log.warning("create failed, trying the next best node node=%s error=%r retry=%d/%d",
                            exc.engine.name, exc.message, len(failed), self.create_retry)
            except NoOtherNode:
                raise _tried(failed) from None

    def _by_image_id(self, spec: ContainerSpec) -> ContainerSpec:
        """An image given as 64 hex digits is an ID: the container goes where that image is; when
        no node has it, refuse at once with the engine's own words (it cannot be pulled)."""
        if not IMAGE_ID.fullmatch(spec.image):
            return spec
        if not self.engines_with_image(spec.image):
            raise ApiError(400, f"invalid repository name ({spec.image}), cannot specify 64-byte "
                                "hexadecimal strings")
        near_image = parse_expr(f"image==sha256:{spec.image}", "affinity")
        return dataclasses.replace(spec, affinities=spec.affinities + (near_image,))

    async def _create_near_image(self, spec: ContainerSpec, name: str | None, auth: str | None,
                                 failed: list[str], replacing: str | None) -> tuple[Engine, dict]:
        """Place and create; when the chosen node has no copy of the image and cannot pull it (an
        image built or imported on some nodes only), placement is retried once among the nodes that
        have it."""
        try:
            return await self._place_and_create(spec, name, auth, failed, replacing)
        except CreateFailed as exc:
            holders = self.engines_with_image(spec.image) if spec.image else []
            if exc.status != 404 or not any(e.healthy for e in holders):
                raise
            try:
                near_image = parse_expr(f"image=={spec.image}")
            except SchedulerError:
                raise exc from None
            log.info("retrying placement where the image is image=%s", spec.image)
            spec = dataclasses.replace(spec, affinities=spec.affinities + (near_image,))
            return await self._place_and_create(spec, name, auth, failed, replacing)

    async def _place_and_create(self, spec: ContainerSpec, name: str | None, auth: str | None,
                                failed: list[str], replacing: str | None) -> tuple[Engine, dict]:
        swarm_id = spec.labels[SWARM_ID_LABEL]
        began = time.perf_counter()
        async with self._placement:
            if name and self.name_taken(name, replacing):
                raise name_conflict(name)
            engine = self.best_engine(spec, avoid=failed)
            if engine.listed_only:  # soon after a start: what its containers reserve must count
                await engine.inspect_listed()
                engine = self.best_engine(spec, avoid=failed)
            placeholder = spec.as_container("pending:" + swarm_id)
            self._pending.setdefault(engine.addr, []).append(placeholder)
            if name:
                self._pending_names.add(name)
        try:
            try:
                created = await self._create_on(engine, spec.create_body(), name, auth)
            except ApiError as exc:
                raise CreateFailed(engine, exc) from None
            await engine.refresh_after(created["Id"], "create", 201)
        finally:
            self._pending[engine.addr].remove(placeholder)
            self._pending_names.discard(name or "")
        log.info("container created container=%s name=%s node=%s image=%s took_ms=%.1f", created["Id"][:12],
                 name, engine.name, spec.image, (time.perf_counter() - began) * 1000)
        return engine, created

    async def _create_on(self, engine: Engine, body: dict, name: str | None,
                         auth: str | None) -> dict:
        params = {"name": name} if name else None
        status, reply = await engine.call("POST", "/containers/create", params=params, body=body)
        if status == 404 and body.get("Image"):
            log.info("image missing, pulling node=%s image=%s", engine.name, body["Image"])
            await pull_on(engine, body["Image"], auth)
            status, reply = await engine.call("POST", "/containers/create", params=params, body=body)
        if status != 201:
            raise engine_error(status, reply)
        return reply
