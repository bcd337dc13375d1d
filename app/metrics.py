"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

disable_created_metrics()  # no *_created series: they double the exposition for no use here

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_resident_memory_bytes, process_cpu_seconds_total...: what operators' dashboards
        # read (Linux; elsewhere the collector reports nothing)
        ProcessCollector(registry=r)
        self.requests = Counter(
            "attnviz_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "attnviz_request_duration_seconds",
            "Time from the request's first byte to the response's last, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "attnviz_inference_seconds",
            "Time a worker thread spent on one job (forward passes + serialisation).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "attnviz_cache_hits",
            "Requests answered from the result cache.",
            ["endpoint"],
            registry=r,
        )
        self.cache_misses = Counter(
            "attnviz_cache_misses", "Requests the cache could not answer.", ["endpoint"], registry=r
        )
        self.coalesced = Counter(
            "attnviz_coalesced",
            "Requests that waited for an identical request already in flight.",
            ["endpoint"],
            registry=r,
        )
        self.rejected = Counter(
            "attnviz_rejected",
            "Requests refused with 503 because the queue was full.",
            ["endpoint"],
            registry=r,
        )
        self.dropped = Counter(
            "attnviz_dropped",
            "Queued jobs never run: every client went away (reason=disconnected), or the job "
            "waited past the queue deadline and its client got 503 (reason=expired).",
            ["endpoint", "reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "attnviz_queue_depth", "Jobs admitted and waiting for a worker thread.", registry=r
        )
        self.queue_wait = Gauge(
            "attnviz_queue_wait_seconds",
            "Estimated wait of a job admitted now: the queued work per worker thread.",
            registry=r,
        )
        self.running = Gauge("attnviz_jobs_running", "Jobs running on a worker thread.", registry=r)
        self.cache_entries = Gauge(
            "attnviz_cache_entries", "Results held in the LRU cache.", registry=r
        )
        self.cache_bytes = Gauge(
            "attnviz_cache_bytes", "Bytes of results held in the LRU cache.", registry=r
        )
        self.models_loaded = Gauge("attnviz_models_loaded", "Checkpoints loaded.", registry=r)
