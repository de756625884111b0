"""Rescheduling (classic Swarm's watchdog, made durable): containers with the policy
`reschedule:on-node-failure` are re-created elsewhere when their engine fails or leaves, and the
ones on a drained node are moved.

Only the primary acts. Each move is a record in the cluster state (`reschedule/<Swarm ID>`: the
create configuration, the name, whether it ran, where it came from, attempts and the last error)
written before anything is done, so a new primary finishes what a dead one started: before
creating, it asks every healthy engine for a copy with that Swarm ID and adopts it instead
(extra copies are removed), so redoing is safe. What is on an engine that left discovery or died
while no primary acted is found in the inventory (inventory.py). A container that cannot be placed is retried with
backoff while its node is down; the reason is a `docker info` row of that node. When the failed
engine comes back, its old copies are removed (force, with anonymous volumes) and the record ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from typing import Collection

from discovery.backoff import Backoff
from discovery.etcd_store import StoreError
from manager.cluster.cluster import Cluster
from manager.cluster.engine import HEALTHY, PENDING, UNHEALTHY, Engine
from manager.cluster.inventory import Inventory, entries
from manager.cluster.leader import Leadership
from manager.cluster.metrics import RESCHEDULES
from manager.errors import ApiError, as_api_error
from scheduler import SchedulerError
from scheduler.node import SWARM_ID_LABEL

log = logging.getLogger("shoal.reschedule")
FAILURE, DRAIN = "node failure", "drain"
SETTLE_TIMEOUT = 15.0  # at takeover, how long to wait for engines not tried yet
RETRY_FIRST, RETRY_CAP = 1.0, 30.0


def pending_summary(records: dict[str, dict], from_nodes: Collection[str], named: bool = False) -> str:
    """`docker info` text for the moves still waiting off the nodes with these IDs ('' when none);
    `named`: each begins with its node's name."""
    waiting = [r for r in records.values() if r.get("from_node") in from_nodes and r.get("state") != "done"]
    parts = []
    for r in waiting:
        what = (f"{r['from_name']}: " if named else "") + (r["name"] or r["swarm_id"][:12])
        if r.get("error"):
            retry = max(0, round(r.get("next_try", 0) - time.time()))
            parts.append(f"{what}: attempt {r.get('attempts', 0)} failed, retry in {retry}s: {r['error']}")
        else:
            parts.append(f"{what}: moving ({r['reason']})")
    return "; ".join(parts)


def _short(message: str) -> str:
    """A (no-fit) error on one line: its header, conditions and summary, without the per-node lines."""
    lines = message.splitlines()
    summary = next((i for i, line in enumerate(lines) if line.startswith("0/")), 1)
    return " ".join(line.strip() for line in lines[:summary + 1] if line.strip())


class Rescheduler:
    """Moves policy containers off failed and drained engines (acting only while primary)."""

    def __init__(self, cluster: Cluster, leadership: Leadership) -> None:
        self.cluster = cluster
        self.leadership = leadership
        self._workers: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._nudged = 0.0  # when node settings last changed: waiting moves are tried again at once
        self._closed = False  # the manager is shutting down: its engines' disconnects are no failures
        self.inventory = Inventory(cluster, leadership)
        cluster.watchers.append(self._on_engine_event)
        cluster.state.listen(self._on_state)
        leadership.listen(self._on_role)

    @property
    def records(self) -> dict[str, dict]:
        return self.cluster.state.items("reschedule")

    def _record(self, swarm_id: str) -> dict | None:
        return self.cluster.state.get("reschedule", swarm_id)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks) + list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.inventory.close()

    # ---- triggers ----------------------------------------------------------------------------
    def _on_role(self, primary: bool) -> None:
        if primary and not self._closed:
            self._spawn(self._take_over())
        else:
            for task in list(self._workers.values()):
                task.cancel()
            self._workers.clear()

    def _on_engine_event(self, engine: Engine, event: dict) -> None:
        if event.get("Type") != "swarm" or self._closed or not self.leadership.is_primary:
            return
        action = event.get("Action")
        if action == "engine_disconnect":
            self._spawn(self._move_all(engine, FAILURE))
        elif action in ("engine_connect", "engine_reconnect"):
            self._spawn(self._engine_back(engine))

    def _on_state(self, kind: str, key: str, value: dict | None) -> None:
        if kind == "nodes":
            self._nudged = time.time()
        if kind == "nodes" and value and value.get("availability") == "drain" and self.leadership.is_primary \
                and not self._closed:
            for engine in self.cluster.healthy():
                if engine.availability == "drain":
                    self._spawn(self._move_all(engine, DRAIN))

    async def _take_over(self) -> None:
        """As a new primary, once discovery has spoken and the engines have been tried: resume every
        move on record (ending those whose node is back), move what is on failed and drained engines,
        then what the inventory has on engines that are gone or do not answer (see inventory.py)."""
        await self.cluster.members_known.wait()
        began = time.monotonic()
        while any(e.state == PENDING and not e.error for e in self.cluster.engines.values()) \
                and time.monotonic() - began < SETTLE_TIMEOUT:
            await asyncio.sleep(0.2)
        if not self.leadership.is_primary:
            return
        log.info("reschedule takeover records=%d", len(self.records))
        for swarm_id, record in self.records.items():
            engine = self.cluster.engine_by_id(record["from_node"])
            if record.get("state") != "done":
                self._start(swarm_id)
            elif engine is not None and engine.healthy:
                self._spawn(self._engine_back(engine))
        validated = {e.id: e for e in self.cluster.validated()}
        for engine in validated.values():
            if engine.state == UNHEALTHY:
                await self._move_all(engine, FAILURE)
            elif engine.state == HEALTHY and engine.availability == "drain":
                await self._move_all(engine, DRAIN)
        for swarm_id, found in self.inventory.records.items():
            engine = validated.get(found["node"])
            if self._record(swarm_id) is None and (engine is None or engine.state == UNHEALTHY):
                log.info("reschedule from the inventory swarm_id=%s name=%s node=%s", swarm_id[:12],
                         found["name"], found["node_name"])
                await self._begin(found, FAILURE)

    # ---- beginning a move --------------------------------------------------------------------
    async def _move_all(self, engine: Engine, reason: str) -> None:
        """A record and a worker for every policy container on `engine` not already moving."""
        found = entries(engine)
        for container in engine.containers.reschedulable():
            if container.swarm_id and container.swarm_id not in found:
                log.warning("reschedule impossible, never inspected swarm_id=%s name=%s node=%s",
                            container.swarm_id[:12], container.name, engine.name)
        for swarm_id, entry in found.items():
            if self._record(swarm_id) is None:
                await self._begin(entry, reason)

    async def _begin(self, entry: dict, reason: str) -> None:
        """Record a move of the container of this inventory `entry` (see inventory.py), then do it."""
        swarm_id = entry["swarm_id"]
        record = {"swarm_id": swarm_id, "name": entry["name"], "config": entry["config"],
                  "networks": entry["networks"], "running": entry["running"], "from_node": entry["node"],
                  "from_name": entry["node_name"], "old_id": entry["id"], "reason": reason, "state": "pending",
                  "attempts": 0, "error": "", "next_try": 0, "began": time.time()}
        log.info("reschedule begin swarm_id=%s name=%s from=%s reason=%r", swarm_id[:12], record["name"],
                 record["from_name"], reason)
        if await self._save(swarm_id, record):
            self._start(swarm_id)

    def _start(self, swarm_id: str) -> None:
        if swarm_id not in self._workers or self._workers[swarm_id].done():
            self._workers[swarm_id] = asyncio.create_task(self._work(swarm_id), name=f"reschedule {swarm_id[:12]}")

    async def _save(self, swarm_id: str, record: dict | None) -> bool:
        """Write a record while primary (fenced); False when it could not be written."""
        if not self.leadership.is_primary:
            return False
        try:
            await self.cluster.state.save("reschedule", swarm_id, record, self.leadership.fence)
            return True
        except StoreError as exc:
            log.warning("reschedule state not saved swarm_id=%s error=%s", swarm_id[:12], exc)
            return False

    # ---- doing a move ------------------------------------------------------------------------
    async def _work(self, swarm_id: str) -> None:
        backoff = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)
        while self.leadership.is_primary:
            record = self._record(swarm_id)
            if record is None or record.get("state") == "done":
                return
            wait = record.get("next_try", 0) - time.time()
            failed_at = record.get("next_try", 0) - record.get("delay", 0)
            if wait > 0 and self._nudged < failed_at:  # no node setting changed since it failed
                await asyncio.sleep(min(wait, 0.5))
                continue
            try:
                await self._move(record)
                return
            except (ApiError, SchedulerError, StoreError) as exc:
                message = _short(getattr(exc, "message", str(exc)))
                delay = backoff.next()
                record = dict(record, attempts=record.get("attempts", 0) + 1, error=message,
                              next_try=time.time() + delay, delay=delay)
                log.warning("reschedule failed swarm_id=%s name=%s attempt=%d retry_in=%.1fs error=%r",
                            swarm_id[:12], record["name"], record["attempts"], delay, message)
                RESCHEDULES.labels(record["reason"], "failed").inc()
                old = self.cluster.engine_by_id(record["from_node"])
                if old is not None:
                    self._publish(old, "reschedule_failed", record.get("old_id", ""), record, error=message)
                if not await self._save(swarm_id, record):
                    await asyncio.sleep(delay)

    async def _move(self, record: dict) -> None:
        swarm_id, name = record["swarm_id"], record["name"] or None
        old = self.cluster.engine_by_id(record["from_node"])
        if record["reason"] == FAILURE and old is not None and old.healthy and record["old_id"] in old.containers:
            await self._cancel(old, record)
            return
        copies = await self._copies(swarm_id, exclude=record["from_node"])
        if copies:  # made by us or by a primary before us: adopt it, never make another
            engine, cid = copies[0]
            for extra_engine, extra in copies[1:]:
                log.warning("reschedule removing duplicate swarm_id=%s node=%s id=%s", swarm_id[:12],
                            extra_engine.name, extra[:12])
                await self._remove(extra_engine, extra)
        else:
            if not self.leadership.is_primary:
                return
            engine, created = await self.cluster.create_container(copy.deepcopy(record["config"]), name, None,
                                                                  replacing=swarm_id)
            cid = created["Id"]
            for network, endpoint in (record.get("networks") or {}).items():
                status, reply = await engine.call("POST", f"/networks/{network}/connect",
                                                  body={"Container": cid, "EndpointConfig": endpoint})
                if status >= 300:
                    log.warning("reschedule network not reconnected network=%s node=%s error=%r", network,
                                engine.name, reply)
        if record["running"]:
            status, reply = await engine.call("POST", f"/containers/{cid}/start")
            if status not in (204, 304):
                raise as_api_error(ApiError(status, f"start on {engine.name}: {reply}"))
        await engine.refresh_container(cid)
        if record["reason"] == DRAIN and old is not None:
            await self._remove(old, record["old_id"], stop_first=True)
        elif old is not None and old.state != HEALTHY:
            old.forget_container(record["old_id"])  # listed once, where it runs now
        log.info("reschedule done swarm_id=%s name=%s from=%s to=%s took_ms=%.0f", swarm_id[:12], name,
                 record["from_name"], engine.name, (time.time() - record["began"]) * 1000)
        RESCHEDULES.labels(record["reason"], "done").inc()
        self._publish(engine, "reschedule", cid, record)
        if record["reason"] == DRAIN:
            await self._save(swarm_id, None)
        else:
            await self._save(swarm_id, dict(record, state="done", new_id=cid, new_node=engine.id, error=""))

    async def _copies(self, swarm_id: str, exclude: str) -> list[tuple[Engine, str]]:
        """(engine, container ID) of every copy with this Swarm ID on the healthy engines, running first."""
        query = {"all": "1", "filters": json.dumps({"label": [f"{SWARM_ID_LABEL}={swarm_id}"]})}
        found: list[tuple[bool, Engine, str]] = []
        for engine in self.cluster.healthy():
            if engine.id == exclude:
                continue
            listed = await engine.get_json("/containers/json", params=query)
            found += [(c.get("State") != "running", engine, c["Id"]) for c in listed]
        found.sort(key=lambda f: f[0])
        return [(engine, cid) for _, engine, cid in found]

    async def _remove(self, engine: Engine, cid: str, stop_first: bool = False) -> None:
        """Remove one copy (force, with anonymous volumes); a copy already gone is fine."""
        if stop_first:
            await engine.call("POST", f"/containers/{cid}/stop")  # the container's own stop timeout
        status, reply = await engine.call("DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})
        if status not in (204, 404):
            raise ApiError(status, f"remove {cid[:12]} on {engine.name}: {reply}")
        engine.forget_container(cid)

    # ---- the old engine is back --------------------------------------------------------------
    async def _engine_back(self, engine: Engine) -> None:
        """Remove the copies that now run elsewhere; end the moves that had not happened yet."""
        mine = {k: r for k, r in self.records.items() if r.get("from_node") == engine.id and r.get("reason") == FAILURE}
        if not mine:
            return
        with contextlib.suppress(ApiError):
            await engine.refresh_all()
        for swarm_id, record in mine.items():
            if record.get("state") == "done":
                try:
                    await self._remove(engine, record["old_id"])
                except ApiError as exc:
                    log.warning("old copy not removed swarm_id=%s node=%s error=%s", swarm_id[:12],
                                engine.name, exc.message)
                    continue
                log.info("old copy removed swarm_id=%s node=%s id=%s", swarm_id[:12], engine.name,
                         record["old_id"][:12])
                await self._save(swarm_id, None)
            elif record["old_id"] in engine.containers:  # else it is lost with its node: the move goes on
                worker = self._workers.pop(swarm_id, None)
                if worker is not None:
                    worker.cancel()
                    await asyncio.gather(worker, return_exceptions=True)
                try:
                    await self._cancel(engine, record)
                except ApiError as exc:
                    log.warning("reschedule not cancelled swarm_id=%s error=%s", swarm_id[:12], exc.message)
                    self._start(swarm_id)  # the worker cancels it on its next attempt

    async def _cancel(self, engine: Engine, record: dict) -> None:
        """The old node is back with the container: the move ends, and a copy it made elsewhere (it
        may have been created, or started, by this or an earlier primary) is removed."""
        swarm_id = record["swarm_id"]
        for other, cid in await self._copies(swarm_id, exclude=engine.id):
            log.warning("reschedule removing the copy of a cancelled move swarm_id=%s node=%s id=%s", swarm_id[:12],
                        other.name, cid[:12])
            await self._remove(other, cid)
        log.info("reschedule cancelled, node is back swarm_id=%s node=%s", swarm_id[:12], engine.name)
        RESCHEDULES.labels(record["reason"], "cancelled").inc()
        await self._save(swarm_id, None)

    def _publish(self, engine: Engine, action: str, cid: str, record: dict, **extra: str) -> None:
        now = time.time()
        attributes = {"name": record["name"], SWARM_ID_LABEL: record["swarm_id"], "from": record["from_name"],
                      "reason": record["reason"], **extra}
        self.cluster.events.publish(engine, {
            "status": action, "id": cid, "from": record["config"].get("Image", ""), "Type": "container",
            "Action": action, "Actor": {"ID": cid, "Attributes": attributes}, "scope": "local",
            "time": int(now), "timeNano": int(now * 1e9)})
