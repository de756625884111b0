"""The one fan-out: results and failures in engine order, whether one engine or several."""
from __future__ import annotations

import asyncio

import pytest

from manager.api.fanout import fan_out
from manager.errors import ApiError


async def answer(engine: str) -> str:
    await asyncio.sleep(0)
    if engine == "down":
        raise ApiError(500, "down did not answer")
    return f"{engine} ok"


@pytest.mark.parametrize("engines", [["node1"], ["down"], ["node1", "down", "node3"]])
async def test_each_engine_gets_its_answer_or_its_error(engines):
    results = await fan_out(engines, answer)
    assert [e for e, _ in results] == engines
    for engine, result in results:
        if engine == "down":
            assert isinstance(result, ApiError) and result.message == "down did not answer"
        else:
            assert result == f"{engine} ok"


@pytest.mark.parametrize("engines", [["node1"], ["node1", "node2"]])
async def test_a_cancelled_fan_out_is_cancelled_not_a_result(engines):
    started = asyncio.Event()

    async def hang(engine: str) -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(fan_out(engines, hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
