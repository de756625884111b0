"""One Docker engine of the cluster: connection, health state machine and event-fed cache."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Protocol, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from manager.cluster.calls import BodyLost, Calls, NoAnswer
from manager.cluster.changes import CHANGES, WATCHED
from manager.cluster.containers import Container, ContainerCache, from_inspect, from_list_row
from manager.cluster.gates import DETAILS, LISTINGS
from manager.cluster.metrics import ENGINE_CALL_ERRORS, ENGINE_REFRESHES, EVENT_STREAM_RECONNECTS
from manager.cluster.options import EngineOptions
from manager.errors import ApiError, engine_error
from shoal.version import API_VERSION

log = logging.getLogger("shoal.engine")

PENDING, HEALTHY, UNHEALTHY, DISCONNECTED = "Pending", "Healthy", "Unhealthy", "Disconnected"
ENGINE_STATES = (PENDING, HEALTHY, UNHEALTHY, DISCONNECTED)
# A refused or cut connection (a chunked body cut short is a payload error, not a connection one).
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                     OSError)
# Container actions that change nothing the cache holds.
QUIET_ACTIONS = ("exec_create", "exec_start", "exec_die", "exec_detach", "top", "resize", "attach",
                 "detach", "copy", "archive-path", "extract-to-dir", "export", "commit")
CONNECT_TIMEOUT = 5.0
# Until an engine's answer starts (its headers; counted from the end of a streamed upload). Not for
# what may rightly stay silent (wait, logs -f, attach, stats, exec start, events, save) nor pulls,
# whose deadline is --engine-pull-stall-timeout without progress.
HEAD_TIMEOUT = 120.0
CALL_TIMEOUT = 60.0  # a short call's whole answer
PATH_SAFE = "/:@!$&'()*+,;=%"  # left as they are in a short call's path (as aiohttp/yarl do)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
# Engines and manager share one TLS config (classic Swarm's rule): a mixed fleet is refused per node.
TLS_FLEET = "a cluster's engines all use TLS, with certificates from the manager's CA, or none does"
PLAIN_TO_TLS = "Client sent an HTTP request to an HTTPS server"  # dockerd's answer to plain HTTP
# With the events stream open since the last listing the cache has missed nothing (a stream that
# is lost is re-listed at once): the periodic listing is a safety net (e.g. events dockerd dropped
# for a slow reader), made every FULL_REFRESH_EVERY-th refresh; the others read `/info` alone.
FULL_REFRESH_EVERY = 10
# How long after an event named a network the cache does not hold (made outside Shoal, or an overlay
# a swarm worker starts to list) the engine's networks are listed: the networks of a burst come in
# one listing, and one removed by then costs none (swarm-mode engines list slowly).
NETWORK_SETTLE = 0.05
# The container actions whose event a re-inspect by Shoal after its own call covers (dockerd sends the
# event before it answers the call), and how long such a cover waits for its event.
COVERED_ACTIONS = ("create", "start")
COVER_FOR = 10.0
T = TypeVar("T")


@dataclass(frozen=True)
class Membership:
    """What an engine's `/info` says about its multi-host networking: a swarm-mode cluster
    (`Swarm.LocalNodeState` active; managers know the cluster ID, workers only their managers'
    node IDs) and/or a legacy KV cluster store (`ClusterStore`, dockerd <= 20.10)."""

    swarm_active: bool = False
    swarm_manager: bool = False  # ControlAvailable: can create swarm-scope networks
    node_id: str = ""
    cluster_id: str = ""  # managers only
    manager_ids: tuple[str, ...] = ()  # node IDs of the managers it knows
    manager_addrs: tuple[str, ...] = ()  # their `ip:2377`
    cluster_store: str = ""


def membership_of(info: dict) -> Membership:
    """The multi-host networking facts of one `/info` answer."""
    swarm = info.get("Swarm") or {}
    remotes = swarm.get("RemoteManagers") or []
    return Membership(
        swarm_active=swarm.get("LocalNodeState") == "active",
        swarm_manager=bool(swarm.get("ControlAvailable")),
        node_id=swarm.get("NodeID") or "",
        cluster_id=(swarm.get("Cluster") or {}).get("ID") or "",
        manager_ids=tuple(sorted(r.get("NodeID", "") for r in remotes)),
        manager_addrs=tuple(sorted(r.get("Addr", "") for r in remotes)),
        cluster_store=info.get("ClusterStore") or "")


class EngineDown(ApiError):
    """The engine could not be reached."""


class Addressed:
    """Something at `addr` ("host:port")."""

    addr: str

    @property
    def ip(self) -> str:
        """The host part of the address."""
        return self.addr.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.addr.rsplit(":", 1)[1])


class Upstream(Protocol):
    """What the proxy and the hijack send a request to: an engine, or the primary manager."""

    addr: str
    name: str
    options: EngineOptions  # its `tls` is the client context towards it

    @property
    def ip(self) -> str: ...

    @property
    def port(self) -> int: ...

    def versioned(self, path: str, client_version: str | None = None) -> str: ...

    async def open(self, method: str, path: str, *, query: str = "", params: Any = None,
                   data: Any = None, headers: Any = None, timeout: aiohttp.ClientTimeout = ...,
                   head: float | None = ..., client_version: str | None = None) -> aiohttp.ClientResponse: ...

    def unreachable(self, exc: BaseException) -> ApiError: ...


class Engine(Addressed):
    """A Docker engine: validated, then kept current from one listing plus its /events stream.

    `notify(engine, event)` receives every engine event (already applied to the cache) and the
    manager's own `engine_connect` / `engine_reconnect` / `engine_disconnect` events.
    A listing fills the cache with records built from the list rows; containers that are new or
    changed are inspected afterwards (manager.cluster.gates), those with a reschedule policy before Healthy.
    `generation` changes with every change of what the cache holds or of the engine's health;
    `derived` keeps values computed from it (snapshots, `docker info` rows) until then. Writes to
    what the cluster-wide views read (manager.cluster.changes.WATCHED) are counted in CHANGES.
    """

    def __setattr__(self, attribute: str, value: Any) -> None:
        super().__setattr__(attribute, value)
        if attribute in WATCHED:
            CHANGES.wrote(attribute, self)

    def __init__(self, addr: str, session: aiohttp.ClientSession, options: EngineOptions,
                 notify: Callable[["Engine", dict], None],
                 is_duplicate: Callable[["Engine"], str | None]) -> None:
        self.addr = addr
        self.url = f"{'https' if options.tls else 'http'}://{addr}"
        self.session = session
        self.options = options
        self.notify = notify
        self.is_duplicate = is_duplicate
        self.id = ""
        self.name = ""
        self.labels: dict[str, str] = {}
        self.node_labels: dict[str, str] = {}  # set with `docker node update --label-add`
        self.availability = "active"  # set with `docker node update --availability`
        self.cpus = 0
        self.memory = 0
        self.version = ""
        self.arch = ""
        self.api_version = API_VERSION
        self.state = PENDING
        self.error = ""
        self.failures = 0
        self.updated_at = time.time()
        self.containers = ContainerCache(self)
        self.images: list[dict] = []
        self.networks: list[dict] = []  # `GET /networks` of this engine
        self.membership = Membership()
        self._network_epoch = 0  # counts the networks made or removed through Shoal
        self._expected_networks: set[str] = set()  # names being made through Shoal right now
        self._unknown_networks: dict[str, float] = {}  # network ID -> when an event first named it
        self._listing_networks: asyncio.Task | None = None
        self.generation = 0
        self._derived: dict[str, tuple[tuple, Any]] = {}
        # (container ID, action) -> (when, the re-inspect, whether the event started it): see refresh_after
        self._covers: dict[tuple[str, str], tuple[float, asyncio.Task, bool]] = {}
        self._tasks: list[asyncio.Task] = []
        self._wake = Wake()
        self._to_inspect: dict[str, None] = {}  # container IDs known from a listing only
        self._inspecting: asyncio.Task | None = None
        self._live = False  # the events stream has been open since the last listing
        self._first_listing_done: Callable[[], None] = lambda: None  # see _run
        self._calls: Calls | None = None  # made at the first short call

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Validate in the background, then follow events and refresh periodically."""
        self._tasks.append(asyncio.create_task(self._run(), name=f"engine {self.addr}"))

    async def stop(self) -> None:
        """Stop all background work; the engine becomes Disconnected."""
        tasks = self._tasks + [task for _, task, _ in self._covers.values()] + [
            t for t in (self._inspecting, self._listing_networks) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._first_listing_done()
        if self._calls is not None:
            self._calls.close()
        self.containers.release()
        was = self.state
        self.state = DISCONNECTED
        if was != DISCONNECTED:
            self._emit("engine_disconnect")

    @property
    def label(self) -> str:
        """The engine in messages and metrics: its name, or its address until it has one."""
        return self.name or self.addr

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY

    @property
    def all_labels(self) -> dict[str, str]:
        """Engine labels with the node labels set through `docker node update` on top."""
        return {**self.labels, **self.node_labels}

    def set_node_settings(self, availability: str, labels: dict[str, str]) -> None:
        """Apply `docker node update` settings (the scheduler sees them at once)."""
        if (availability, labels) != (self.availability, self.node_labels):
            self.availability, self.node_labels = availability, dict(labels)
            self._changed()

    @property
    def health(self) -> int:
        """Classic Swarm's health indicator: 100 minus the share of allowed failures used."""
        if self.state != HEALTHY:
            return 0
        return max(0, 100 - self.failures * 100 // self.options.failure_retry)

    # ---- calls to the engine -----------------------------------------------------------------
    def versioned(self, path: str, client_version: str | None = None) -> str:
        """`/containers/json` -> `/v1.41/containers/json` at a version both sides speak."""
        version = self.api_version
        if client_version and _version_tuple(client_version) < _version_tuple(version):
            version = client_version
        return f"/v{version}{path}"

    async def open(self, method: str, path: str, *, query: str = "", params: Any = None,
                   data: Any = None, headers: Any = None,
                   timeout: aiohttp.ClientTimeout = STREAM_TIMEOUT, head: float | None = HEAD_TIMEOUT,
                   client_version: str | None = None) -> aiohttp.ClientResponse:
        """Send a request and return the open response (caller releases it).

        The answer must start within `head` seconds (None: no deadline), counted from the end of the
        upload when `data` is streamed. Connection failures and deadlines count against the
        engine's health and raise EngineDown.
        """
        url = self.url + self.versioned(path, client_version) + (f"?{query}" if query else "")
        try:
            resp = await send(self.session, method, url, head=head, params=params, data=data, headers=headers,
                              timeout=timeout)
        except NoAnswer as exc:
            raise self.unanswered(exc, method, path, head) from None
        except CONNECTION_ERRORS as exc:
            raise self.unreachable(exc) from exc
        self.record_success()
        return resp

    def unanswered(self, exc: NoAnswer, method: str, path: str, head: float | None) -> EngineDown:
        """An answer that did not start in time: counted against the engine's health, and the error."""
        self.record_failure(exc)
        return EngineDown(500, f"{self.label} did not answer {method} {path} within {head:g}s")

    def unreachable(self, exc: BaseException) -> EngineDown:
        """A failed connection: counted against the engine's health, and the error to answer."""
        self.record_failure(exc)
        text = (f"Cannot connect to the Docker daemon at tcp://{self.addr} ({self.name or 'unknown'}): "
                f"{exc or type(exc).__name__}")
        if self.options.tls and isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
            text += f" ({TLS_FLEET})"
        return EngineDown(500, text)

    async def call(self, method: str, path: str, *, params: Any = None, body: Any = None,
                   headers: dict | None = None) -> tuple[int, Any]:
        """A short JSON call: (status, decoded body or text)."""
        status, raw, answer_headers = await self.call_raw(method, path, params=params, body=body, headers=headers)
        return status, _decoded(raw, answer_headers)

    async def call_raw(self, method: str, path: str, *, params: Any = None, query: str = "", body: Any = None,
                       headers: dict | None = None, client_version: str | None = None,
                       head: float | None = None) -> tuple[int, bytes, Mapping[str, str]]:
        """A short call: (status, the answer's bytes, its headers), over manager.cluster.calls.
        `body`: JSON bytes as they are, or a value to encode; `query` or `params`: the query.
        The whole answer must come within CALL_TIMEOUT, or with `head` its start within `head`
        seconds (then no deadline on the whole: a prune, an image removal).
        Connection failures and deadlines count against the engine's health and raise EngineDown."""
        hdrs = dict(headers or {})
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        query = query or (urlencode(params) if params else "")
        target = quote(self.versioned(path, client_version), safe=PATH_SAFE) + (f"?{query}" if query else "")
        if self._calls is None:
            self._calls = Calls(self.addr, self.options.tls, CONNECT_TIMEOUT)
        try:
            answer = await self._calls.call(method, target, hdrs, data, None if head else CALL_TIMEOUT, head)
        except NoAnswer as exc:
            raise self.unanswered(exc, method, path, head) from None
        except BodyLost as exc:
            self.record_failure(exc)
            raise EngineDown(500, f"Lost the connection to {self.label}: {exc}") from exc
        except CONNECTION_ERRORS as exc:
            raise self.unreachable(exc) from exc
        self.record_success()
        return answer

    async def get_json(self, path: str, params: Any = None) -> Any:
        """GET that must succeed; anything but 200 raises ApiError with the engine's message."""
        status, body = await self.call("GET", path, params=params)
        if status != 200:
            raise engine_error(status, body)
        return body

    # ---- health ------------------------------------------------------------------------------
    def record_failure(self, exc: BaseException) -> None:
        """A connection error: after --engine-failure-retry of them a Healthy engine turns Unhealthy."""
        self.failures += 1
        ENGINE_CALL_ERRORS.labels(self.label).inc()
        self.error = str(exc) or type(exc).__name__
        self._changed()  # the health indicator the scheduler weighs has dropped
        if self.state == HEALTHY and self.failures >= self.options.failure_retry:
            self.state = UNHEALTHY
            self.updated_at = time.time()
            log.warning("engine unhealthy addr=%s node=%s error=%r", self.addr, self.name, self.error)
            self._emit("engine_disconnect")

    def record_success(self) -> None:
        """Any answer resets the failure count; an Unhealthy engine is Healthy again."""
        if self.failures == 0 and self.state != UNHEALTHY:
            return
        self.failures = 0
        self._changed()
        if self.state == UNHEALTHY:
            self.state = HEALTHY
            self.error = ""
            self.updated_at = time.time()
            log.info("engine healthy again addr=%s node=%s", self.addr, self.name)
            self._emit("engine_reconnect")
            self._wake.set()

    # ---- the cache ---------------------------------------------------------------------------
    def derived(self, what: str, build: Callable[["Engine"], T], *also: object) -> T:
        """`build(self)`, kept until the cache or the health changes (or any of `also` does)."""
        key = (self.generation, *also)
        hit = self._derived.get(what)
        if hit is None or hit[0] != key:
            hit = self._derived[what] = (key, build(self))
        return hit[1]

    def _changed(self) -> None:
        self.generation += 1

    def _store(self, cid: str, record: Container | None) -> None:
        """Put one container's record in the cache (None: drop it)."""
        if self.containers.store(cid, record):
            self._changed()

    def record_of(self, body: dict, raw: bytes | None = None) -> Container:
        """The cache record of one of this engine's containers from its inspect document
        (`raw`: the document as the engine sent it)."""
        return from_inspect(body, self.name, self.ip, self.containers.interner, raw)

    async def refresh_container(self, cid: str) -> Container | None:
        """Re-inspect one container into the cache (None if it is gone)."""
        status, raw, _ = await self.call_raw("GET", f"/containers/{cid}/json")
        if status == 404:
            self.forget_container(cid)
            return None
        if status == 200:
            record = self.record_of(orjson.loads(raw), raw)
            self._store(record.id, record)
            self._to_inspect.pop(record.id, None)
            return record
        return self.containers.get(cid)

    async def refresh_after(self, cid: str, action: str, status: int) -> Container | None:
        """Re-inspect a container after Shoal's own `action` call on it was answered `status`. After a
        create or a start that did something (2xx but 304), that one inspect also stands for the
        inspect the action's event asks for: the event, when it comes later, waits for this one
        instead, and when it came first, its inspect (sent after the event, so after the action)
        is taken. A `docker run` at 5,000 engines inspected its container four times, two by events."""
        if action in COVERED_ACTIONS and 200 <= status < 300:
            now = asyncio.get_running_loop().time()
            kept = self._covers.pop((cid, action), None)
            if kept is None:  # the event is still to come
                task = self._covering_inspect(cid, action, now, by_event=False)
                await asyncio.wait([task])  # unlike an await, a cancelled call does not cancel it
                return task.result()
            if kept[2] and now - kept[0] < COVER_FOR and await _succeeded(kept[1]):
                return kept[1].result()
        return await self.refresh_container(cid)

    async def _refresh_for_event(self, cid: str, action: str) -> None:
        """An event's re-inspect, unless Shoal's own after this action stands for it (refresh_after):
        then it waits for that one, so that what the event is passed on to reads the cache after it.
        Any event of the container ends its covers: the one covered would have come before it."""
        kept = [self._covers.pop((cid, a), None) for a in COVERED_ACTIONS]
        now = asyncio.get_running_loop().time()
        if action not in COVERED_ACTIONS:
            await self.refresh_container(cid)
            return
        cover = kept[COVERED_ACTIONS.index(action)]
        if cover is not None and not cover[2] and now - cover[0] < COVER_FOR and await _succeeded(cover[1]):
            return
        await self._covering_inspect(cid, action, now, by_event=True)

    def _covering_inspect(self, cid: str, action: str, now: float, by_event: bool) -> asyncio.Task:
        """Start a re-inspect kept as the cover of (cid, action) (see refresh_after), and let go of
        the covers older than COVER_FOR."""
        while self._covers:
            oldest = next(iter(self._covers))
            if now - self._covers[oldest][0] < COVER_FOR:
                break
            del self._covers[oldest]
        task = asyncio.ensure_future(self.refresh_container(cid))
        self._covers[cid, action] = (now, task, by_event)
        return task

    def forget_container(self, cid: str) -> None:
        """Drop a container from the cache (it was removed); it is no longer waiting for an inspect."""
        self._store(cid, None)
        self._to_inspect.pop(cid, None)

    async def refresh_images(self) -> None:
        """Re-list the engine's images."""
        images = await self.get_json("/images/json", params={"all": "0"})
        if images != self.images:
            self.images = images
            self._changed()

    async def refresh_networks(self) -> None:
        """Re-list the engine's networks. When the routing mesh's `ingress` comes or goes (with a
        swarm join or leave), `/info` is read again too."""
        epoch = self._network_epoch
        networks = await self.get_json("/networks")
        if self._network_epoch != epoch:  # a create or removal went by meanwhile: this list may predate it
            networks = await self.get_json("/networks")
        if networks != self.networks:
            had_ingress = _has_ingress(self.networks)
            self.networks = networks
            self._changed()
            if _has_ingress(networks) != had_ingress:
                await self.refresh_info()

    @contextlib.contextmanager
    def making_network(self, name: str) -> Iterator[None]:
        """A network of this name is being made through Shoal meanwhile: its events (create, and
        update in swarm mode) need no re-listing (`remember_network` follows with its entry)."""
        self._expected_networks.add(name)
        try:
            yield
        finally:
            self._expected_networks.discard(name)

    def remember_network(self, network: dict) -> None:
        """A network just made on this engine, in the cache at once (a container can be placed on it
        right away, without re-listing); the engine's own entry replaces it at the next refresh
        (or is already there, when its create event came first)."""
        self._network_epoch += 1
        if any(n["Id"] == network["Id"] for n in self.networks):
            return
        self.networks = [*self.networks, network]
        self._changed()

    def forget_network(self, network_id: str) -> None:
        """Drop a removed network from the cache."""
        kept = [n for n in self.networks if n["Id"] != network_id]
        self._network_epoch += 1
        if len(kept) != len(self.networks):
            self.networks = kept
            self._changed()

    async def refresh_info(self) -> None:
        """Re-read `/info`: the engine's multi-host networking may have changed (swarm join/leave)."""
        self._set_membership(membership_of(await self.get_json("/info")))

    def _set_membership(self, membership: Membership) -> None:
        if membership != self.membership:
            log.info("engine multi-host networking addr=%s name=%s swarm=%s manager=%s cluster_store=%s",
                     self.addr, self.name, membership.swarm_active, membership.swarm_manager,
                     membership.cluster_store or "-")
            self.membership = membership
            self._changed()

    async def refresh_all(self) -> None:
        """List containers (inspecting new or changed ones), images and networks."""
        outcome = "error"
        try:
            async with LISTINGS.hold():
                await self._refresh_all()
            outcome = "ok"
        finally:
            ENGINE_REFRESHES.labels(self.label, outcome).inc()

    async def _refresh_all(self) -> None:
        """One listing: vanished containers dropped, new or changed ones cached from their list rows
        and queued for an inspect (reschedule-policy ones inspected now)."""
        listed = await self.get_json("/containers/json", params={"all": "1"})
        seen = {c["Id"]: c for c in listed}
        for cid in list(self.containers):
            if cid not in seen:
                self.forget_container(cid)
        now = time.time()
        urgent = []
        for cid, row in seen.items():
            cached = self.containers.get(cid)
            if cached is not None and cached.state.status == row.get("State") \
                    and cached.labels == (row.get("Labels") or {}):
                continue
            record = from_list_row(row, self.name, self.ip, self.containers.interner, now)
            self._store(cid, record)
            if record.reschedules_on_node_failure:
                urgent.append(cid)
            else:
                self._to_inspect[cid] = None
        await self._inspect_now(urgent)
        await self.refresh_images()
        await self.refresh_networks()
        self.updated_at = time.time()
        if self._to_inspect and (self._inspecting is None or self._inspecting.done()):
            self._inspecting = asyncio.create_task(self._inspect_listed(), name=f"inspect {self.addr}")

    @property
    def listed_only(self) -> int:
        """How many cached containers are known from a listing only (not inspected yet)."""
        return len(self._to_inspect)

    async def inspect_listed(self) -> None:
        """Inspect every container known from a listing only, now (before a placement here)."""
        await self._inspect_now(list(self._to_inspect))

    async def _inspect_now(self, cids: list[str]) -> None:
        sem = asyncio.Semaphore(8)

        async def inspect(cid: str) -> None:
            async with sem:
                await self.refresh_container(cid)

        await asyncio.gather(*(inspect(cid) for cid in cids))

    async def _inspect_listed(self) -> None:
        """Inspect the containers known from a listing only in the background, a few at a time
        across all engines."""
        while self._to_inspect:
            await LISTINGS.quiet()
            cid = next(iter(self._to_inspect))
            async with DETAILS:
                if cid not in self._to_inspect:
                    continue
                try:
                    await self.refresh_container(cid)
                except (ApiError, ValueError) as exc:  # the engine went away: the next listing goes on
                    log.info("inspect failed addr=%s id=%s error=%r", self.addr, cid[:12],
                             getattr(exc, "message", str(exc)))
                    return
                self._to_inspect.pop(cid, None)

    # ---- background work ---------------------------------------------------------------------
    async def _run(self) -> None:
        delay = 1.0
        while True:
            # From each try until the first listing, background inspects (of every engine) wait:
            # after a start, all engines list (and turn Healthy) first.
            self._first_listing_done = LISTINGS.expect()
            try:
                if await self._validate():
                    break
            except Exception as exc:  # a strange answer (or a bug) must not leave it stuck
                log.exception("validation error addr=%s", self.addr)
                self.error = f"validation failed: {exc!r}"
            self._first_listing_done()
            await asyncio.sleep(delay + random.random())
            delay = min(delay * 2, 30.0)
        self._tasks.append(asyncio.create_task(self._follow_events(), name=f"events {self.addr}"))
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name=f"refresh {self.addr}"))

    async def _validate(self) -> bool:
        """Read info and version; True when the engine is usable and not a duplicate."""
        try:
            info, api_version = await self._info_and_api_version()
        except (ApiError, ValueError) as exc:
            self.error = getattr(exc, "message", str(exc))
            if self.options.tls is None and PLAIN_TO_TLS in self.error:
                self.error = f"{self.addr} serves TLS: start the manager with --tls or --tlsverify ({TLS_FLEET})"
            self.updated_at = time.time()
            return False
        if not info.get("NCPU") or not info.get("MemTotal"):
            self.error = (f"cannot get resources for this engine, make sure {self.addr} is a "
                          "Docker Engine, not a Swarm manager")
            return False
        self.id = f"{info['ID']}|{self.addr}"
        self.name = info.get("Name", "")
        self.cpus = info["NCPU"]
        self.memory = info["MemTotal"]
        self.version = info.get("ServerVersion", "")
        self.arch = info.get("Architecture", "")
        self.api_version = min(api_version, API_VERSION, key=_version_tuple)
        self.labels = engine_labels(info)
        self._set_membership(membership_of(info))
        duplicate = self.is_duplicate(self)
        if duplicate:
            self.error = duplicate
            return False
        self.error = ""
        return True

    async def _info_and_api_version(self) -> tuple[dict, str]:
        """`/info`, and the newest API version the engine speaks: the `Api-Version` header dockerd
        sends with every answer (`/version` is asked only when it is missing)."""
        status, raw, headers = await self.call_raw("GET", "/info")
        info = _decoded(raw, headers)
        if status != 200:
            raise engine_error(status, info)
        if not isinstance(info, dict):
            raise ValueError(f"/info answered {str(info)[:80]!r}")
        api_version = headers.get("Api-Version")
        if not api_version:
            api_version = (await self.get_json("/version")).get("ApiVersion", API_VERSION)
        return info, api_version

    async def _follow_events(self) -> None:
        """Keep one /events stream open; after any gap, re-list so nothing is missed."""
        opened = False
        while True:
            try:
                resp = await self.open("GET", "/events", head=None)  # silent while nothing happens
                if opened:
                    EVENT_STREAM_RECONNECTS.labels(self.label).inc()
                opened = True
                async with resp:
                    try:
                        await self.refresh_all()
                    finally:
                        self._first_listing_done()
                    self._live = True
                    self._become_healthy()
                    async for line in resp.content:
                        if line.strip():
                            await self._apply(orjson.loads(line))
                log.info("events stream ended addr=%s node=%s", self.addr, self.name)
            except (ApiError, *CONNECTION_ERRORS, ValueError) as exc:
                if not isinstance(exc, EngineDown):
                    self.record_failure(exc)
                log.info("events stream lost addr=%s node=%s error=%r", self.addr, self.name, str(exc))
            except Exception:  # a bug must not end the engine's event loop for good
                log.exception("events loop error addr=%s node=%s", self.addr, self.name)
            self._live = False
            self._first_listing_done()  # the events stream did not open
            await self._probe_until_up()

    async def _probe_until_up(self) -> None:
        """Ping every second (counting failures) until the engine answers again."""
        while True:
            await asyncio.sleep(1.0)
            try:
                resp = await self.open("GET", "/_ping", timeout=aiohttp.ClientTimeout(total=3))
                resp.release()
                return
            except ApiError:
                continue

    def _become_healthy(self) -> None:
        if self.state in (PENDING, DISCONNECTED):
            self.state = HEALTHY
            self.failures = 0
            self.updated_at = time.time()
            self._changed()
            log.info("engine connected addr=%s node=%s engine_id=%s containers=%d",
                     self.addr, self.name, self.id, len(self.containers))
            self._emit("engine_connect")

    async def _refresh_loop(self) -> None:
        """Every --engine-refresh-min..max interval: `/info` (the health check, and multi-host
        networking); the full listing too when the events stream was not open all along since the
        last one, after the engine came back, and every FULL_REFRESH_EVERY-th round."""
        rounds = 0
        while True:
            backoff = max(0, self.failures - self.options.failure_retry)
            interval = self.options.refresh_min * (1 + min(backoff, 1000)) + random.uniform(
                0, self.options.refresh_max - self.options.refresh_min)
            woken = await self._wake.pause(interval)
            if self.state == PENDING:
                continue
            rounds += 1
            try:
                await self.refresh_info()
                if woken or not self._live or rounds % FULL_REFRESH_EVERY == 0:
                    await self.refresh_all()
                self.updated_at = time.time()
            except ApiError as exc:
                log.info("refresh failed addr=%s error=%r", self.addr, exc.message)
            except Exception:  # a bug must not end the refresh loop for good
                log.exception("refresh loop error addr=%s", self.addr)

    async def _apply(self, event: dict) -> None:
        """Update the cache from one engine event, then pass it on."""
        kind = event.get("Type")
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        cid = event.get("Actor", {}).get("ID") or event.get("id", "")
        if kind == "container" and cid:
            if action == "destroy":
                self.forget_container(cid)
            elif action not in QUIET_ACTIONS:
                await self._refresh_for_event(cid, action)
        elif kind == "image" or action == "commit":
            await self.refresh_images()
        elif kind == "network":
            await self._network_event(action, event.get("Actor") or {}, event.get("scope", "local"))
        self.notify(self, event)

    async def _network_event(self, action: str, actor: dict, scope: str) -> None:
        """A removed network leaves the cache; one not in it yet (made outside Shoal, or a swarm-scope
        network on a worker whose first container joins it) is listed NETWORK_SETTLE later, in one
        listing for a burst of them and in none if it is gone by then; a container that joins
        or leaves a network while it runs (`docker network connect` straight on the engine) is
        re-inspected. A swarm manager's local `destroy` of a swarm-scope network only says that its
        last local container left it: the network stays (its removal is a swarm-scope `remove`).
        A `disconnect` from a network the cache does not hold re-lists nothing: it comes late, after
        the network was removed, from a worker that still lists it for a moment."""
        network_id = actor.get("ID", "")
        if action in ("destroy", "remove"):
            if not (scope == "local" and self.membership.swarm_manager and any(
                    n["Id"] == network_id and n.get("Scope") == "swarm" for n in self.networks)):
                self._unknown_networks.pop(network_id, None)
                had_ingress = _has_ingress(self.networks)
                self.forget_network(network_id)
                if had_ingress and not _has_ingress(self.networks):  # the engine left its swarm
                    await self.refresh_info()
        elif action != "disconnect" and not any(n["Id"] == network_id for n in self.networks) and \
                (actor.get("Attributes") or {}).get("name") not in self._expected_networks:
            self._unknown_networks.setdefault(network_id, asyncio.get_running_loop().time())
            if self._listing_networks is None or self._listing_networks.done():
                self._listing_networks = asyncio.create_task(self._list_unknown_networks())
        container = self.containers.get((actor.get("Attributes") or {}).get("container", ""))
        if action in ("connect", "disconnect") and container and container.state.running:
            joined = any(net_id == actor.get("ID") for _, net_id in container.networks)
            if joined != (action == "connect"):
                await self.refresh_container(container.id)

    async def _list_unknown_networks(self) -> None:
        """List the networks when NETWORK_SETTLE has passed since an event named one that the cache
        still lacks then (and is not removed)."""
        loop = asyncio.get_running_loop()
        while self._unknown_networks:
            await asyncio.sleep(min(self._unknown_networks.values()) + NETWORK_SETTLE - loop.time())
            due = [i for i, seen in self._unknown_networks.items() if seen + NETWORK_SETTLE <= loop.time()]
            for network_id in due:
                del self._unknown_networks[network_id]
            if set(due) - {n["Id"] for n in self.networks}:
                try:
                    await self.refresh_networks()
                except (ApiError, ValueError) as exc:  # the refresh loop lists everything at once instead
                    log.info("network listing failed addr=%s error=%r", self.addr, str(exc))
                    self._wake.set()

    def _emit(self, action: str) -> None:
        now = time.time()
        self.notify(self, {"status": action, "Type": "swarm", "Action": action, "from": "swarm",
                           "Actor": {"ID": "", "Attributes": {}}, "scope": "local",
                           "time": int(now), "timeNano": int(now * 1e9)})


class Wake:
    """A loop's pause that others can cut short. `asyncio.wait_for(event.wait(), t)` made some 25
    objects a wait (a task, coroutines, contexts, futures, timers), each engine's living through its
    30-60 s pause: at 5,000 engines the heap's young collection every 10 s found 20,000-37,000 of them
    and held the loop 25-45 ms (manager.heap). This makes a handful."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the pause now, or make the next one return at once."""
        self._set = True
        if self._waiter is not None:
            _resolve(self._waiter)

    def is_set(self) -> bool:
        return self._set

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or until set; whether it was set (it is cleared)."""
        if not self._set:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(seconds, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        woken, self._set = self._set, False
        return woken


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def send(session: aiohttp.ClientSession, method: str, url: str, *, head: float | None,
               data: Any = None, **kwargs: Any) -> aiohttp.ClientResponse:
    """`session.request`, passing headers as given; the answer must start within `head` seconds
    (None: no deadline), counted from the end of the upload when `data` is streamed (NoAnswer)."""
    loop = asyncio.get_running_loop()
    streamed = data is not None and not isinstance(data, (bytes, bytearray, str))
    deadline = asyncio.timeout(None if streamed or head is None else head)
    if streamed and head is not None:
        data = _then(data, lambda: deadline.reschedule(loop.time() + head))
    try:
        async with deadline:
            return await session.request(method, url, data=data, **kwargs,
                                         skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"))
    except TimeoutError:
        if deadline.expired():
            raise NoAnswer(f"no answer within {head:g}s") from None
        raise


async def _then(chunks: Any, done: Callable[[], None]) -> Any:
    """The chunks of an upload, then `done()` once the last one is sent."""
    async for chunk in chunks:
        yield chunk
    done()


def _decoded(raw: bytes, headers: Mapping[str, str]) -> Any:
    """An answer's body: decoded JSON when it is JSON, else its text."""
    if raw and "json" in headers.get("Content-Type", ""):
        return orjson.loads(raw)
    return raw.decode(errors="replace")


async def _succeeded(task: asyncio.Task) -> bool:
    """Wait for `task` (without cancelling it if this waiter is cancelled); whether it returned."""
    await asyncio.wait([task])
    return not task.cancelled() and task.exception() is None


def _has_ingress(networks: list[dict]) -> bool:
    return any(n.get("Ingress") for n in networks)


def engine_labels(info: dict) -> dict[str, str]:
    """The node's labels: the daemon's `--label k=v` plus the four standard ones."""
    labels: dict[str, str] = {}
    for item in info.get("Labels") or []:
        key, _, value = item.partition("=")
        if key != "node":
            labels[key] = value
    labels.update(storagedriver=info.get("Driver", ""), kernelversion=info.get("KernelVersion", ""),
                  operatingsystem=info.get("OperatingSystem", ""), ostype=info.get("OSType", ""))
    return labels


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())
