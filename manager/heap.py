"""The manager's heap and Python's cyclic garbage collector.

The cache holds a few objects per container (150,000 containers: about a million). A full
collection walks all of them, a pause of a good part of a second that lands on whichever request
is running (a `docker ps` every few calls). The cache forms no reference cycles, so the objects
that have survived a while are frozen (`gc.freeze`: never walked again, still freed by reference
counting); every `THAW_EVERY` freezes they are thawed once, so that a cycle among them is not kept
for good.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("shoal.heap")

FREEZE_EVERY = 10.0  # seconds
THAW_EVERY = 60  # freezes


async def keep_frozen() -> None:
    """Collect the young garbage and freeze the survivors, forever (run as a task)."""
    rounds = 0
    while True:
        await asyncio.sleep(FREEZE_EVERY)
        rounds += 1
        began = time.perf_counter()
        if rounds % THAW_EVERY == 0:
            gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        log.debug("heap frozen freed=%d ms=%.1f", freed, (time.perf_counter() - began) * 1000)
