"""The service's Prometheus metrics, true with one process or several.

Requests, latencies and rate-limit refusals are counted where they happen; the catalog's size
and the spec store's cache figures are copied into metrics after each request and at each
scrape. With several workers (`PROMETHEUS_MULTIPROC_DIR` set, prometheus-client's multiprocess
mode) every process writes its own files and a scrape, whichever worker answers it, adds them
up: counters summed, the catalog's size the largest live value, the hit ratio computed from the
summed counts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from opensesame_predictor.service import Service

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


class HTTPMetrics:
    """The app's metrics on a registry of its own (several apps in one process don't clash)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.shared = multiprocess()  # several workers write to one folder of metrics
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "opensesame_http_requests", "HTTP requests.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "opensesame_http_request_duration_seconds",
            "HTTP request latency.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prediction = Histogram(
            "opensesame_prediction_duration_seconds",
            "Time spent in the predictor per /predict request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "opensesame_rate_limit_rejections",
            "Requests refused by a rate limit, by the limit that refused them.",
            ["scope"],
            registry=self.registry,
        )
        self.specs = Gauge(
            "opensesame_specs_loaded",
            "Specs loaded without error.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.operations = Gauge(
            "opensesame_operations_loaded",
            "Operations in the catalog.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.cache_hits = Counter(
            "opensesame_cache_hits", "Spec store cache hits.", ["level"], registry=self.registry
        )
        self.cache_misses = Counter(
            "opensesame_cache_misses", "Spec store misses.", registry=self.registry
        )
        for level in ("l1", "l2"):  # series at 0 from the start, not once the first hit comes
            self.cache_hits.labels(level)
        for scope in ("user", "global", "blocked"):
            self.rate_limited.labels(scope)
        self._copied = (0, 0, 0)  # the store's l1, l2 and miss counts already counted
        self._lock = threading.Lock()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)
        if self.shared:  # another worker may answer the scrape: keep this one's figures fresh
            self.copy_service_figures()

    def copy_service_figures(self) -> None:
        """The catalog's size and what the store counted since the last copy."""
        catalog = self.service.catalog
        stats = self.service.store.stats
        self.specs.set(len(catalog.spec_names()))
        self.operations.set(len(catalog.operations))
        with self._lock:
            now = (stats.l1_hits, stats.l2_hits, stats.misses)
            l1, l2, misses = (max(0, a - b) for a, b in zip(now, self._copied, strict=True))
            self._copied = now
        if l1:
            self.cache_hits.labels("l1").inc(l1)
        if l2:
            self.cache_hits.labels("l2").inc(l2)
        if misses:
            self.cache_misses.inc(misses)

    def exposition(self) -> bytes:
        """The text /metrics answers: this process's metrics, or every worker's together."""
        self.copy_service_figures()
        source = self.registry
        if self.shared:
            source = CollectorRegistry()
            MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        ratio = CollectorRegistry()
        ratio.register(HitRatio(source))
        return generate_latest(source) + generate_latest(ratio)

    @staticmethod
    def process_ended() -> None:
        """A worker that stops takes its live gauges with it."""
        if multiprocess():
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class HitRatio(Collector):
    """Spec store hits / lookups, from the (possibly summed) counters of `source`."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        hits = misses = 0.0
        for family in self.source.collect():
            for sample in family.samples:
                if sample.name == "opensesame_cache_hits_total":
                    hits += sample.value
                elif sample.name == "opensesame_cache_misses_total":
                    misses += sample.value
        lookups = hits + misses
        yield GaugeMetricFamily(
            "opensesame_cache_hit_ratio",
            "Spec store hits / lookups.",
            hits / lookups if lookups else 0.0,
        )
