"""The merged event stream: every engine's events tagged with their node, to every subscriber."""
from __future__ import annotations

import asyncio
import collections
import contextlib

from manager.cluster.engine import Engine

EVENT_QUEUE_LIMIT = 10000
RECENT_EVENTS = 1000  # kept for `docker events --since`


def tag_event(engine: Engine, event: dict) -> dict:
    """Classic Swarm's event decoration: who (which node) it came from."""
    event = dict(event)
    node = {"Name": engine.name, "Id": engine.id, "Addr": engine.addr, "Ip": engine.ip}
    if event.get("from") is not None or event.get("status"):
        event["from"] = f"{event.get('from', '')} node:{engine.name}".strip()
    actor = dict(event.get("Actor") or {})
    actor["Attributes"] = dict(actor.get("Attributes") or {}, **{
        "node.name": engine.name, "node.id": engine.id, "node.addr": engine.addr, "node.ip": engine.ip})
    event["Actor"] = actor
    event["node"] = node
    return event


class EventBus:
    """Subscribers' queues, fed with tagged events; the last RECENT_EVENTS kept for `since`."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue] = set()
        self._recent: collections.deque[dict] = collections.deque(maxlen=RECENT_EVENTS)

    def subscribe(self, since: float | None = None) -> asyncio.Queue:
        """A queue of tagged events from now on, after the recent ones since `since`; None ends it."""
        queue: asyncio.Queue = asyncio.Queue(EVENT_QUEUE_LIMIT)
        if since is not None:
            for event in self._recent:
                if event.get("time", 0) >= since:
                    queue.put_nowait(event)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def publish(self, engine: Engine, event: dict) -> None:
        """Tag an engine's event and hand it to every subscriber."""
        event = tag_event(engine, event)
        self._recent.append(event)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a client that stopped reading: cut it off
                self._subscribers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    def close(self) -> None:
        """End every subscriber's stream."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
