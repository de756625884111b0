"""Which engine a BuildKit session or cancel goes to: the build's, whether it is placed before or after
the session arrives; nothing is kept once the build is over or nobody placed it."""
from __future__ import annotations

import asyncio

from manager.cluster.builds import BuildSessions


async def test_a_session_waits_for_its_build_and_a_late_one_finds_it_at_once():
    builds, engine = BuildSessions(), object()
    waiting = asyncio.create_task(builds.engine_of("s1", wait=2))
    await asyncio.sleep(0.05)
    builds.placed(engine, "s1", "b1")
    assert await waiting is engine
    assert await builds.engine_of("b1", wait=0) is engine
    builds.finished("s1", "b1")
    assert await builds.engine_of("b1", wait=0.05) is None


async def test_nobody_places_it_none_after_the_wait_and_nothing_left_behind():
    builds = BuildSessions()
    assert await builds.engine_of("ghost", wait=0.05) is None
    assert builds._waiting == {}
    builds.placed(object(), "", "")  # a classic build: no session, no build ID
    assert builds._waiting == {}
