"""Prometheus metrics, in a registry owned by one app (no process globals).

Requests and latency per endpoint, the database pool, and process memory, for
the `metrics` listener resource.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "hearth_http_requests", "HTTP requests served", ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hearth_http_request_seconds", "Time to produce a response", ["method", "endpoint"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        # (method, endpoint, status) -> its request counter and latency histogram.
        # `labels()` validates and locks on every call, so each pair is looked
        # up once; one entry per series the registry keeps anyway.
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.db_pool_checked_out = Gauge(
            "hearth_db_pool_connections_in_use", "Database connections checked out",
            registry=self.registry,
        )
        self.db_pool_idle = Gauge(
            "hearth_db_pool_connections_idle", "Open database connections waiting in the pool",
            registry=self.registry,
        )
        self.db_pool_size = Gauge(
            "hearth_db_pool_size", "Connections the pool keeps open at most (before overflow)",
            registry=self.registry,
        )

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (method, endpoint, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (
                self.requests.labels(method, endpoint, str(status)), self.latency.labels(method, endpoint))
        series[0].inc()
        series[1].observe(seconds)

    def observe_pool(self, pool: object) -> None:
        """Read a SQLAlchemy pool's counters into the gauges (at scrape time).

        Read when scraped rather than updated on every checkout: a scrape every
        few seconds costs nothing, a hook on every query would not.
        """
        for gauge, attr in ((self.db_pool_checked_out, "checkedout"), (self.db_pool_idle, "checkedin"),
                            (self.db_pool_size, "size")):
            read = getattr(pool, attr, None)
            if callable(read):
                gauge.set(read())

    def render(self) -> bytes:
        return generate_latest(self.registry)
