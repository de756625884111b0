"""One engine's containers as the manager caches them: `docker inspect` bodies by ID, indexed by
every way a user names one, and values derived from each body that live until it changes."""
from __future__ import annotations

from typing import Any, Callable, Iterator, TypeVar

from manager.cluster.names import plain_name
from scheduler.node import SWARM_ID_LABEL

T = TypeVar("T")


def ref_keys(container: dict) -> list[str]:
    """What else a container is looked up by, besides its full ID and its name."""
    keys = [container["Id"][:12]]
    swarm_id = swarm_id_of(container)
    if swarm_id:
        keys += [swarm_id, swarm_id[:12]]
    return keys


def swarm_id_of(container: dict) -> str:
    """The cluster-wide ID Shoal gave the container (label `com.docker.swarm.id`), or ''."""
    return (container.get("Config", {}).get("Labels") or {}).get(SWARM_ID_LABEL, "")


class ContainerCache:
    """Inspect bodies by container ID, with indexes by short ID, Swarm ID and name."""

    def __init__(self) -> None:
        self._by_id: dict[str, dict] = {}
        self._refs: dict[str, str] = {}  # short ID, Swarm ID and its short form -> ID
        self._names: dict[str, str] = {}  # name (no leading slash) -> ID
        self._derived: dict[str, dict[str, Any]] = {}  # ID -> {what: value}
        self._counts: tuple[int, int, int, int] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_id))

    def get(self, cid: str) -> dict | None:
        """The inspect body of a container by full ID."""
        return self._by_id.get(cid)

    def values(self) -> Iterator[dict]:
        return iter(list(self._by_id.values()))

    def by_ref(self, ref: str) -> dict | None:
        """A container by full ID, short ID, Swarm ID or short Swarm ID."""
        cid = ref if ref in self._by_id else self._refs.get(ref)
        return self._by_id.get(cid) if cid else None

    def by_name(self, name: str) -> dict | None:
        """A container by name (with or without the leading slash)."""
        cid = self._names.get(plain_name(name))
        return self._by_id.get(cid) if cid else None

    def store(self, cid: str, body: dict | None) -> bool:
        """Put one container's inspect in the cache and its indexes (None: drop it); True if it changed."""
        old = self._by_id.pop(cid, None)
        if old is not None:
            for key in ref_keys(old):
                if self._refs.get(key) == cid:
                    del self._refs[key]
            if self._names.get(plain_name(old["Name"])) == cid:
                del self._names[plain_name(old["Name"])]
        self._derived.pop(cid, None)
        if body is not None:
            self._by_id[cid] = body
            self._refs.update(dict.fromkeys(ref_keys(body), cid))
            self._names[plain_name(body["Name"])] = cid
        changed = old != body
        if changed:
            self._counts = None
        return changed

    def derived(self, cid: str, what: str, build: Callable[[dict], T]) -> T:
        """`build(inspect body)`, computed once per change of that container (renderings, rows)."""
        values = self._derived.setdefault(cid, {})
        if what not in values:
            values[what] = build(self._by_id[cid])
        return values[what]

    def counts(self) -> tuple[int, int, int, int]:
        """(containers, running, paused, stopped), recounted only after a change."""
        if self._counts is None:
            total = running = paused = 0
            for c in self._by_id.values():
                total += 1
                paused += bool(c["State"].get("Paused"))
                running += bool(c["State"].get("Running") and not c["State"].get("Paused"))
            self._counts = (total, running, paused, total - running - paused)
        return self._counts
