"""`docker images` is written as it is encoded (chunked) when it is large, with a length when it is
small (as `docker ps`: tests/unit/manager/test_container_records.py), through the app, over a
cluster of engines with filled caches (no engine is dialled: the answer comes from the cache)."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from manager.api import images
from manager.api.routes import build_app
from manager.cluster.cluster import Cluster
from manager.cluster.engine import Engine
from manager.cluster.options import EngineOptions
from scheduler import Scheduler


def cluster_with_images(count: int) -> Cluster:
    """Two engines, each with `count` images; the first ten on both (one entry each, tags joined)."""
    cluster = Cluster(Scheduler(), EngineOptions())
    for n in (1, 2):
        e = Engine(f"10.0.0.{n}:2375", None, EngineOptions(), notify=lambda *_: None, is_duplicate=lambda _: None)
        e.name, e.id, e.state = f"node{n}", f"ID{n}|10.0.0.{n}:2375", "Healthy"
        e.images = [{"Id": f"sha256:{n if i >= 10 else 0}{i:063x}", "Created": i, "RepoTags": [f"app{i}:v{n}"],
                     "RepoDigests": [], "Labels": {}} for i in range(count)]
        cluster.engines[e.addr] = e
    return cluster


async def test_many_images_are_streamed_and_grouped_by_id():
    async with TestClient(TestServer(build_app(cluster_with_images(500)))) as client:
        resp = await client.get("/v1.41/images/json")
        assert resp.status == 200 and resp.headers.get("Transfer-Encoding") == "chunked"
        listed = await resp.json()
    assert len(listed) == 990  # 10 shared + 2 x 490
    assert [i["Created"] for i in listed] == sorted((i["Created"] for i in listed), reverse=True)
    shared = next(i for i in listed if i["Id"] == f"sha256:0{9:063x}")
    assert shared["RepoTags"] == ["app9:v1", "app9:v2"]


async def test_a_few_images_are_one_answer_with_a_length():
    async with TestClient(TestServer(build_app(cluster_with_images(3)))) as client:
        resp = await client.get("/v1.41/images/json")
        assert resp.status == 200 and "Transfer-Encoding" not in resp.headers
        assert int(resp.headers["Content-Length"]) > 0 and len(await resp.json()) == 3
    assert images.IMAGE_ROWS < 990


async def test_a_long_answer_lets_other_work_run_between_its_chunks():
    """Writing a large list does not hold the loop until its end (the refreshes due meanwhile would
    all run at once after it, in front of the next request)."""
    ticks: list[int] = []
    async with TestClient(TestServer(build_app(cluster_with_images(3000)))) as client:
        async def ticking() -> None:
            while True:
                ticks.append(len(ticks))
                await asyncio.sleep(0)

        ticker = asyncio.create_task(ticking())
        await asyncio.sleep(0)
        resp = await client.get("/v1.41/images/json")
        ticks.clear()
        await resp.read()
        ticker.cancel()
    assert len(ticks) >= 3000 * 2 // images.IMAGE_ROWS - 1  # a turn after each chunk written
