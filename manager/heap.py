"""The manager's heap and Python's cyclic garbage collector.

The cache holds a few objects per container (150,000 containers: about a million). A full
collection walks all of them, a pause of a good part of a second that lands on whichever request
is running (a `docker ps` every few calls). The cache forms no reference cycles, so the objects
that have survived a while are frozen (`gc.freeze`: never walked again, still freed by reference
counting) after a collection of the young generations; every `THAW_EVERY` freezes (an hour) they
are thawed and collected once, so that a cycle among them (a removed engine and its tasks) is not
kept for good. Python's own full collections are turned off: while the cache fills after a start
at 5,000 engines they ran every few hundred milliseconds over the whole growing heap (14 of the
25 seconds of CPU the start took), and a full collection every FREEZE_EVERY walked what had
survived since the last freeze (the `ps` order of 150,000 containers, rebuilt after a change):
pauses of 50-500 ms. That order runs a round itself once built (`Cluster.newest_first`), so the
young collections until the next round do not walk it either.

The round runs every second: Python's own young collections hardly run here (frozen objects that
die count against new ones, so the young generation's count stays low while it grows: 20,000-37,000
objects in 10 s at 5,000 engines, the refresh loops' timers and futures), and a round every 10 s
walked all of them at once, holding the loop 25-45 ms; each second it is well under a millisecond.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("shoal.heap")

FREEZE_EVERY = 1.0  # seconds
THAW_EVERY = 3600  # freezes
NEVER = 2 ** 30  # young collections between two full ones: Python starts none


async def keep_frozen() -> None:
    """Collect the young garbage and freeze the survivors, forever (run as a task); the full
    collections are this task's alone."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    rounds = 0
    while True:
        await asyncio.sleep(FREEZE_EVERY)
        rounds += 1
        collect_round(full=rounds % THAW_EVERY == 0)


def collect_round(full: bool) -> int:
    """Collect the young generations (`full`: thaw and collect everything), then freeze what is
    left; the number of objects freed."""
    began = time.perf_counter()
    if full:
        gc.unfreeze()
    freed = gc.collect(2 if full else 1)
    gc.freeze()
    log.debug("heap frozen full=%s freed=%d ms=%.1f", full, freed, (time.perf_counter() - began) * 1000)
    return freed
