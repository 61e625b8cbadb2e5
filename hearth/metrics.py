"""Prometheus metrics, owned by one app (no process globals).

Requests and latency per endpoint, the database pool, and process memory, CPU
and file descriptors, for the `metrics` listener resource, written in
Prometheus' text exposition format (version 0.0.4).

The format is written here rather than by prometheus_client: that library
and what it imports at start (its own HTTP and WSGI servers among them) cost
every server about 1 MiB of resident memory, and each labelled histogram
series kept a lock per bucket, for three metric families a few lines cover.
"""

from __future__ import annotations

import os
import resource
import time
from bisect import bisect_left
from collections.abc import Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_POOL_GAUGES = (
    ("hearth_db_pool_connections_in_use", "Database connections checked out", "checkedout"),
    ("hearth_db_pool_connections_idle", "Open database connections waiting in the pool", "checkedin"),
    ("hearth_db_pool_size", "Connections the pool keeps open at most (before overflow)", "size"),
)


class _Latency:
    """One histogram series: per-bucket counts (not yet cumulative), sum and count."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # A bucket `le` counts values <= le: the first bound not below the value.
        i = bisect_left(LATENCY_BUCKETS, seconds)
        if i < len(self.buckets):
            self.buckets[i] += 1
        self.count += 1
        self.sum += seconds


class Metrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}
        self._pool: dict[str, float] = {}

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (method, endpoint, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        series = self._latency.get((method, endpoint))
        if series is None:
            series = self._latency[(method, endpoint)] = _Latency()
        series.observe(seconds)

    def observe_pool(self, pool: object) -> None:
        """Read a SQLAlchemy pool's counters into the gauges (at scrape time).

        Read when scraped rather than updated on every checkout: a scrape every
        few seconds costs nothing, a hook on every query would not.
        """
        for name, _help, attr in _POOL_GAUGES:
            read = getattr(pool, attr, None)
            if callable(read):
                self._pool[name] = float(read())

    def render(self) -> bytes:
        lines: list[str] = []
        requests = [((("method", m), ("endpoint", e), ("status", str(s))), n)
                    for (m, e, s), n in self._requests.items()]
        _family(lines, "hearth_http_requests_total", "HTTP requests served", "counter", requests)
        _histogram(lines, self._latency)
        for name, help_text, _attr in _POOL_GAUGES:
            if name in self._pool:
                _family(lines, name, help_text, "gauge", [((), self._pool[name])])
        _process(lines)
        return ("\n".join(lines) + "\n").encode()


Labels = tuple[tuple[str, str], ...]


def _family(lines: list[str], name: str, help_text: str, kind: str,
            samples: Iterable[tuple[Labels, float]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    lines.extend(_sample(name, labels, value) for labels, value in samples)


def _sample(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {float(value)!r}"
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{text}}} {float(value)!r}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _histogram(lines: list[str], series: dict[tuple[str, str], _Latency]) -> None:
    name = "hearth_http_request_seconds"
    lines.append(f"# HELP {name} Time to produce a response")
    lines.append(f"# TYPE {name} histogram")
    for (method, endpoint), s in series.items():
        labels = (("method", method), ("endpoint", endpoint))
        cumulative = 0
        for bound, n in zip(LATENCY_BUCKETS, s.buckets, strict=True):
            cumulative += n
            lines.append(_sample(f"{name}_bucket", (*labels, ("le", repr(float(bound)))), cumulative))
        lines.append(_sample(f"{name}_bucket", (*labels, ("le", "+Inf")), s.count))
        lines.append(_sample(f"{name}_count", labels, s.count))
        lines.append(_sample(f"{name}_sum", labels, s.sum))


def _process(lines: list[str]) -> None:
    """The standard `process_*` metrics, from /proc (absent where there is none)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        return
    ticks = os.sysconf("SC_CLK_TCK")
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    gauges = (
        ("process_virtual_memory_bytes", "Virtual memory size in bytes.", float(fields[20])),
        ("process_resident_memory_bytes", "Resident memory size in bytes.",
         float(fields[21]) * os.sysconf("SC_PAGE_SIZE")),
        ("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         boot + int(fields[19]) / ticks),
        ("process_open_fds", "Number of open file descriptors.", float(fds)),
        ("process_max_fds", "Maximum number of open file descriptors.",
         float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])),
    )
    for name, help_text, value in gauges:
        _family(lines, name, help_text, "gauge", [((), value)])
    _family(lines, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter",
            [((), (int(fields[11]) + int(fields[12])) / ticks)])
