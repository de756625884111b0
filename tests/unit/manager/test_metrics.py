"""`GET /metrics`, scraped and read back with prometheus-client's own parser."""
from __future__ import annotations

import time

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bench.metrics_scrape import LoopPauses, cluster_of
from manager.api.routes import build_app
from manager.cluster.cluster import Cluster
from manager.cluster.options import EngineOptions
from scheduler import Scheduler


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, for every sample of the scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    reply = await client.get("/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(await reply.text())


async def test_metrics_parse_and_count_requests_and_placements():
    cluster = Cluster(Scheduler(strategy="binpack"), EngineOptions())
    async with TestClient(TestServer(build_app(cluster, []))) as client:
        before = await scrape(client)
        assert (await client.get("/v1.41/containers/abc/json")).status == 404
        reply = await client.post("/containers/create", json={"Image": "busybox"})
        assert reply.status == 500 and "No nodes available" in (await reply.json())["message"]
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("shoal_placements_total", strategy="binpack", outcome="no_fit", rule="nodes") == 1
    assert delta("shoal_scheduling_seconds_count", outcome="no_fit") == 1
    assert delta("shoal_api_request_seconds_count", method="GET", route="/containers/{ref}/json", status="404") == 1
    assert delta("shoal_api_request_seconds_count", method="POST", route="/containers/create", status="500") == 1
    assert after[("shoal_engines", (("state", "Healthy"),))] == 0
    assert ("process_resident_memory_bytes", ()) in after
    labels = {label for name, pairs in after for label, _ in pairs if name.startswith("shoal_")}
    assert labels <= {"strategy", "outcome", "rule", "method", "route", "status", "node", "state", "le", "reason",
                      "role"}


async def test_an_app_for_metrics_only_serves_nothing_else():
    """What `--metrics-addr` listens with: the same routing, `/metrics` alone."""
    cluster = Cluster(Scheduler(), EngineOptions())
    async with TestClient(TestServer(build_app(cluster, only=frozenset({"/metrics"})))) as client:
        assert ("shoal_engines", (("state", "Healthy"),)) in await scrape(client)
        for path in ("/v1.41/info", "/_ping", "/dashboard/", "/v1.41/metrics/x"):
            reply = await client.get(path)
            assert reply.status == 404 and (await reply.json())["message"] == "page not found"
        assert (await client.get("/v1.41/metrics")).status == 200


async def test_a_scrape_of_a_large_cluster_lets_other_work_run_meanwhile():
    """At 5,000 nodes a scrape is 35,000 samples: the loop keeps taking turns while they are read
    and written (no pause of the loop is over half the scrape), and every node is in it."""
    async with TestClient(TestServer(build_app(cluster_of(3000)))) as client:
        await scrape(client)  # routes and views warmed up
        async with LoopPauses() as loop:
            began = time.perf_counter()
            text = await (await client.get("/metrics")).text()
            took = time.perf_counter() - began
    scraped = samples(text)
    assert scraped[("shoal_engines", (("state", "Healthy"),))] == 3000
    assert sum(1 for name, _ in scraped if name == "shoal_node_cpus") == 3000
    assert loop.longest < took / 2, f"the loop paused {loop.longest * 1000:.0f} ms of a {took * 1000:.0f} ms scrape"
