"""Shoal's Prometheus metrics (official prometheus-client), all in one place.

Counters and histograms are incremented where the event already happens (a placement, an engine
call failure, a refresh, an event stream coming back, an API request, a reschedule, a change of
role); gauges about the cluster
(engines by state, containers and reservations per node) are read from the cluster at scrape
time. Label values are bounded: strategies, outcomes, filter names, engine states, node names,
route templates, status codes, reschedule reasons and roles; never container IDs or names.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from scheduler import Node, Scheduler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry()  # Shoal's own metrics and the process's (the library's default one is left alone)
# No `_created` series beside each counter: at 5,000 engines one for every engine's refresh counter,
# 5,000 lines of the scrape's 45,000, which Prometheus does not read in this text format.
disable_created_metrics()

PLACEMENTS = Counter("shoal_placements", "Scheduling decisions, by strategy and outcome (placed or no_fit, "
                     "with the rule that left no node: a filter name, resources or nodes)",
                     ["strategy", "outcome", "rule"], registry=REGISTRY)
SCHEDULING_SECONDS = Histogram("shoal_scheduling_seconds", "Time to pick a node (snapshots and ranking)",
                               ["outcome"], registry=REGISTRY,
                               buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1))
API_SECONDS = Histogram("shoal_api_request_seconds", "Docker API requests answered, by route and status "
                        "(streams and hijacks count until they end)", ["method", "route", "status"],
                        registry=REGISTRY, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))


@functools.cache
def api_request(method: str, route: str, status: str) -> Histogram:
    """API_SECONDS of one method, route template and status, looked up once (the label sets are
    bounded; `labels()` was half of what measuring a request cost)."""
    return API_SECONDS.labels(method, route, status)


ENGINE_CALL_ERRORS = Counter("shoal_engine_call_errors", "Calls to an engine that failed to connect or were cut",
                             ["node"], registry=REGISTRY)
ENGINE_REFRESHES = Counter("shoal_engine_refreshes", "Full re-lists of an engine's containers and images",
                           ["node", "outcome"], registry=REGISTRY)
EVENT_STREAM_RECONNECTS = Counter("shoal_event_stream_reconnects", "An engine's /events stream opened again "
                                  "after it was lost", ["node"], registry=REGISTRY)
RESCHEDULES = Counter("shoal_reschedules", "Containers moved off a failed or drained node, by reason and "
                      "outcome (done, failed: an attempt that will be retried, cancelled: the node came back)",
                      ["reason", "outcome"], registry=REGISTRY)
ROLE_CHANGES = Counter("shoal_leader_changes", "This manager became primary or replica (replicated managers)",
                       ["role"], registry=REGISTRY)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


NODES_A_TURN = 100  # nodes whose gauges are read between two turns of the loop


class ClusterCollector:
    """Gauges read from the cluster when scraped: the engines by address (each counted under one of
    `states`), and the validated ones as the scheduler sees them (`nodes`)."""

    def __init__(self, engines: Mapping[str, Any], nodes: Callable[[], list[Node]], scheduler: Scheduler,
                 states: tuple[str, ...]) -> None:
        self.engines, self.nodes, self.scheduler, self.states = engines, nodes, scheduler, states

    async def gauges(self) -> list[Metric]:
        """The gauges, read NODES_A_TURN nodes at a time with a turn of the loop in between (at
        5,000 nodes they are 35,000 samples); a node that left meanwhile is left out."""
        scheduler = self.scheduler
        engines = GaugeMetricFamily("shoal_engines", "Engines by state", labels=["state"])
        states = [e.state for e in self.engines.values()]
        for state in self.states:
            engines.add_metric([state], states.count(state))
        containers = GaugeMetricFamily("shoal_node_containers", "Containers per node, by state",
                                       labels=["node", "state"])
        cpus = GaugeMetricFamily("shoal_node_cpus", "CPUs per node (with overcommit)", labels=["node"])
        reserved_cpus = GaugeMetricFamily("shoal_node_reserved_cpus", "CPUs reserved per node", labels=["node"])
        memory = GaugeMetricFamily("shoal_node_memory_bytes", "Memory per node (with overcommit)",
                                   labels=["node"])
        reserved_memory = GaugeMetricFamily("shoal_node_reserved_memory_bytes", "Memory reserved per node",
                                            labels=["node"])
        nodes = self.nodes()
        for start in range(0, len(nodes), NODES_A_TURN):
            if start:
                await asyncio.sleep(0)
            for node in nodes[start:start + NODES_A_TURN]:
                engine = self.engines.get(node.addr)
                if engine is None:
                    continue
                _, running, paused, stopped = engine.containers.counts()
                for state, count in (("running", running), ("paused", paused), ("stopped", stopped)):
                    containers.add_metric([node.name, state], count)
                cpus.add_metric([node.name], scheduler.total_cpus(node))
                reserved_cpus.add_metric([node.name], node.used_cpus)
                memory.add_metric([node.name], scheduler.total_memory(node))
                reserved_memory.add_metric([node.name], node.used_memory)
        return [engines, containers, cpus, reserved_cpus, memory, reserved_memory]


class _Read(Collector):
    """Metrics already read, for a registry of one scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def _text(gauges: list[Metric]) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Read(gauges))
    return generate_latest(REGISTRY) + generate_latest(scrape)


async def exposition(cluster: ClusterCollector) -> bytes:
    """The text format for one scrape: Shoal's own metrics and the process's, then the cluster's
    gauges. The text is written in a worker thread (prometheus-client's registries are made for
    that): written in the loop, at 5,000 nodes, it held the loop 308-426 ms a scrape
    (bench.metrics_scrape); from the thread the loop takes its turn at least every switch
    interval (5 ms)."""
    return await asyncio.to_thread(_text, await cluster.gauges())
