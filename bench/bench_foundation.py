"""Hearth and Synapse side by side: start time, idle memory, authenticated throughput.

Run: ``python bench/bench_foundation.py`` (``--quick`` for a short smoke run,
``--postgres`` to also run both on PostgreSQL). Prints a markdown table per
database engine and writes the figures as JSON to ``bench/results/``.

What is measured, for each server. The two are measured in alternation (Hearth
start, Synapse start, Hearth start, ...; then load rounds Hearth, Synapse,
Hearth, ...), never both under load at once, so that other work on the
machine disturbs both alike; the best of ``--rounds`` load rounds is reported.

- **Start time**: seconds from ``Popen`` to the first 200 from
  ``GET /_matrix/client/versions``. The first start (which creates the schema) is
  reported on its own; the headline is the median of ``--starts`` restarts on
  the existing database, which is what an admin waits for after an upgrade.
- **Idle memory**: resident memory (RSS) of the server's whole process tree,
  ``--settle`` seconds after it first answers, median over the restarts.
- **Throughput**: ``GET /_matrix/client/v3/account/whoami`` from ``--clients``
  concurrent clients, each with its own access token (users created through
  the Synapse-compatible shared-secret admin API, ``/_synapse/admin/v1/register``,
  which both servers implement), for ``--duration`` seconds after a warm-up.
  Also reported: latency percentiles, the server's CPU time per 1000 requests
  (a figure the load generator's own limits do not distort) and RSS after load.

How load is generated (it competes with the server for the machine's cores):

- ``--load wrk`` (the default when ``wrk`` is installed): one wrk thread over
  ``--clients`` keep-alive connections; a Lua script sends every request with
  the next of the ``--clients`` tokens in turn, so all tokens are used evenly.
- ``--load aiohttp``: ``--clients`` asyncio tasks in this process, each with its
  own token, sharing one aiohttp session (one keep-alive connection per task).
  Python's HTTP client costs about as much CPU per request as a fast server,
  so this one saturates first; its CPU use is reported so that shows.
- With two or more cores and without ``--no-pin``, the server process tree is
  pinned to CPU 0 and the load generator to CPU 1, so each server gets exactly
  one core and the generator never steals from it. (PostgreSQL's own
  processes are not pinned.)

Equal footing: both run on 127.0.0.1, on SQLite (or both on the same PostgreSQL
cluster with ``--postgres``), with cheap password hashing (Synapse
``bcrypt_rounds: 4``; Hearth argon2id ``time_cost: 1, memory_cost_kib: 8``),
rate limits off, and each logging every request at INFO to a file (their
default logging; Hearth's stderr is redirected to a file). Each server's config
starts from its own generator (``hearth generate-config``,
``synapse.app.homeserver --generate-config``) with only those overrides.

Synapse comes from PyPI in its own virtualenv: ``--synapse-venv`` or
``$SYNAPSE_VENV``, else ``bench/.venv-synapse``, created with
``python -m venv`` + ``pip install matrix-synapse`` when absent
(``psycopg2-binary`` is added for ``--postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from harness import (
    DEFAULT_SYNAPSE_VENV,
    ROOT,
    WHOAMI,
    Running,
    ServerSetup,
    cpu_seconds,
    create_database,
    ensure_synapse_venv,
    environment,
    pin_to,
    postgres_cluster,
    register_users,
    rss_bytes,
    runqueue_wait_seconds,
    setup_hearth,
    setup_synapse,
    split_cpus,
    warn_if_busy,
    write_results,
)

# --- users and load ----------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    latency_ms: dict[str, float]
    generator: str
    generator_cpu_fraction: float | None = None
    server_cpu_s: float = 0.0
    server_cpu_ms_per_request: float = 0.0
    server_runqueue_wait_fraction: float = 0.0


async def _aiohttp_load(base_url: str, tokens: list[str], seconds: float) -> LoadResult:
    url = base_url + WHOAMI
    latencies: list[float] = []
    counts = {"ok": 0, "err": 0}
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.perf_counter() + seconds

        async def client(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    t1 = time.perf_counter()
                    counts["ok" if resp.status == 200 else "err"] += 1
                    latencies.append(t1 - t0)

        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.gather(*(client(t) for t in tokens))
        wall = time.perf_counter() - wall0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)
    done = counts["ok"] + counts["err"]
    return LoadResult(done, counts["err"], round(wall, 3), round(done / wall, 1),
                      {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99)},
                      f"aiohttp, {len(tokens)} tasks, 1 process", round(cpu / wall, 2))


_WRK_SCRIPT = """
local tokens = {%(tokens)s}
local n = #tokens
local i = 0
init = function(args)
  i = math.random(n)
end
request = function()
  i = (i %% n) + 1
  return wrk.format("GET", "%(path)s", {["Authorization"] = "Bearer " .. tokens[i]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"connect\\": %%d, " ..
    "\\"read\\": %%d, \\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d, " ..
    "\\"p50\\": %%d, \\"p90\\": %%d, \\"p99\\": %%d}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def _wrk_load(base_url: str, tokens: list[str], seconds: float, threads: int, workdir: Path,
              cpus: set[int] | None) -> LoadResult:
    script = workdir / "whoami.lua"
    script.write_text(_WRK_SCRIPT % {"tokens": ", ".join(json.dumps(t) for t in tokens), "path": WHOAMI})
    proc = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(len(tokens)), "-d", f"{max(1, round(seconds))}s",
         "--timeout", "10s", "-s", str(script), base_url + WHOAMI],
        capture_output=True, text=True, check=True, preexec_fn=pin_to(cpus),
    )
    match = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(match.group(1))
    wall = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        data["requests"], errors, round(wall, 3), round(data["requests"] / wall, 1),
        {k: round(data[k] / 1000, 2) for k in ("p50", "p90", "p99")},
        f"wrk, {threads} thread(s), {len(tokens)} connections, tokens in rotation",
    )


def run_load(kind: str, running: Running, tokens: list[str], seconds: float, warmup: float,
             workdir: Path, load_cpus: set[int] | None) -> LoadResult:
    base = running.setup.base_url
    threads = 1 if load_cpus is not None else max(1, (os.cpu_count() or 1) // 2)

    def once(duration: float) -> LoadResult:
        if kind == "wrk":
            return _wrk_load(base, tokens, duration, threads, workdir, load_cpus)
        return asyncio.run(_aiohttp_load(base, tokens, duration))

    once(warmup)
    cpu0, wait0 = cpu_seconds(running.proc.pid), runqueue_wait_seconds(running.proc.pid)
    result = once(seconds)
    result.server_cpu_s = round(cpu_seconds(running.proc.pid) - cpu0, 3)
    result.server_runqueue_wait_fraction = round(
        (runqueue_wait_seconds(running.proc.pid) - wait0) / result.seconds, 3)
    result.server_cpu_ms_per_request = round(1000 * result.server_cpu_s / max(1, result.requests), 4)
    return result


# --- one server, one engine --------------------------------------------------------


@dataclass
class ServerResult:
    name: str
    engine: str
    first_start_s: float
    restart_s: list[float]
    restart_cpu_s: list[float]
    idle_rss_bytes: list[int]
    load: LoadResult | None = None
    load_rounds: list[LoadResult] = field(default_factory=list)
    rss_after_load_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def restart_median_s(self) -> float:
        return statistics.median(self.restart_s)

    @property
    def idle_rss_median(self) -> float:
        return statistics.median(self.idle_rss_bytes)


def _start(setup: ServerSetup, engine: str, result: ServerResult, n: int, args: argparse.Namespace,
           server_cpus: set[int] | None) -> Running:
    running = Running(setup, server_cpus)
    result.restart_s.append(round(running.startup_s, 3))
    result.restart_cpu_s.append(round(running.startup_cpu_s, 3))
    time.sleep(args.settle)
    result.idle_rss_bytes.append(rss_bytes(running.proc.pid))
    print(f"[{engine}] {setup.name}: start {n + 1}/{args.starts}: {running.startup_s:.2f}s "
          f"({running.startup_cpu_s:.2f}s CPU), idle RSS {result.idle_rss_bytes[-1] / 2**20:.0f} MiB",
          file=sys.stderr)
    return running


def bench_pair(setups: list[ServerSetup], engine: str, args: argparse.Namespace,
               server_cpus: set[int] | None, load_cpus: set[int] | None) -> list[ServerResult]:
    """Measure the servers in alternation, so changing load from other processes on
    the machine falls on both alike rather than on whichever ran second."""
    results = []
    for setup in setups:
        print(f"[{engine}] {setup.name}: first start (creates the schema)...", file=sys.stderr)
        first = Running(setup, server_cpus)
        first.stop()
        results.append(ServerResult(setup.name, engine, round(first.startup_s, 3), [], [], []))
    running: list[Running] = []
    try:
        for n in range(args.starts):
            for setup, result in zip(setups, results, strict=True):
                started = _start(setup, engine, result, n, args, server_cpus)
                if n < args.starts - 1:
                    started.stop()
                else:
                    running.append(started)  # the last start of each stays up for the load
        tokens = [asyncio.run(register_users(r.setup.base_url, r.setup.shared_secret, args.clients, "bench"))
                  for r in running]
        for round_ in range(args.rounds):
            for server, result, server_tokens in zip(running, results, tokens, strict=True):
                load = run_load(args.load, server, server_tokens, args.duration, args.warmup,
                                server.setup.cwd, load_cpus)
                result.load_rounds.append(load)
                print(f"[{engine}] {server.setup.name}: round {round_ + 1}/{args.rounds}: "
                      f"{load.rps:.0f} whoami/s, {load.server_cpu_ms_per_request:.3f} ms CPU/request, "
                      f"waited for a CPU {load.server_runqueue_wait_fraction:.0%} of the time "
                      f"({load.errors} errors)", file=sys.stderr)
        for server, result in zip(running, results, strict=True):
            result.rss_after_load_bytes = rss_bytes(server.proc.pid)
            # The round least disturbed by the rest of the machine.
            result.load = max(result.load_rounds, key=lambda r: r.rps)
    finally:
        for server in running:
            server.stop()
    return results


# --- report ------------------------------------------------------------------------


def markdown(hearth: ServerResult, synapse: ServerResult) -> str:
    """One table per engine; the last column is >1 where Hearth does better."""
    rows: list[tuple[str, float, float, bool, str]] = [
        # label, hearth, synapse, higher_is_better, format
        (f"start → /versions answers, restart (median of {len(hearth.restart_s)}), s",
         hearth.restart_median_s, synapse.restart_median_s, False, "{:.2f}"),
        ("CPU time to start (median), s", statistics.median(hearth.restart_cpu_s),
         statistics.median(synapse.restart_cpu_s), False, "{:.2f}"),
        ("first start incl. schema creation, s", hearth.first_start_s, synapse.first_start_s,
         False, "{:.2f}"),
        ("idle RSS of process tree (median), MiB", hearth.idle_rss_median / 2**20,
         synapse.idle_rss_median / 2**20, False, "{:.1f}"),
    ]
    if hearth.load and synapse.load:
        h, s = hearth.load, synapse.load
        rows += [
            ("whoami requests/s", h.rps, s.rps, True, "{:.0f}"),
            ("whoami latency p50, ms", h.latency_ms["p50"], s.latency_ms["p50"], False, "{:.2f}"),
            ("whoami latency p99, ms", h.latency_ms["p99"], s.latency_ms["p99"], False, "{:.2f}"),
            ("server CPU per 1000 whoami, s", h.server_cpu_ms_per_request, s.server_cpu_ms_per_request,
             False, "{:.3f}"),
            ("server waiting for a CPU during load, % of the time", 100 * h.server_runqueue_wait_fraction,
             100 * s.server_runqueue_wait_fraction, False, "{:.0f}"),
            ("RSS after load, MiB", hearth.rss_after_load_bytes / 2**20, synapse.rss_after_load_bytes / 2**20,
             False, "{:.1f}"),
            ("errors during load", h.errors, s.errors, False, "{:.0f}"),
        ]
    out = [f"### {hearth.engine}", "", "| metric | Hearth | Synapse | Hearth advantage |",
           "|---|---:|---:|---:|"]
    for label, hv, sv, higher_better, fmt in rows:
        if label.startswith(("errors", "server waiting")):
            ratio = "—"
        elif hv and sv:
            ratio = f"{(hv / sv if higher_better else sv / hv):.2f}x"
        else:
            ratio = "—"
        out.append(f"| {label} | {fmt.format(hv)} | {fmt.format(sv)} | {ratio} |")
    if hearth.load:
        out += ["", f"Load: {hearth.load.generator}; best of {len(hearth.load_rounds)} rounds of "
                f"{hearth.load.seconds:.0f} s, each after a warm-up; CPU per request and latency are "
                "from that round."]
        starved = [r.name for r in (hearth, synapse)
                   if r.load and r.load.server_runqueue_wait_fraction > 0.1]
        if starved:
            out.append(f"Other work on the machine kept {' and '.join(starved)} waiting for a CPU for more "
                       "than 10% of the load window: requests/s and latency there show the machine's "
                       "limit; CPU per request is the comparable figure.")
        gens = [(r.name, r.load.generator_cpu_fraction) for r in (hearth, synapse)
                if r.load and r.load.generator_cpu_fraction is not None]
        if gens:
            out.append("Load generator CPU use (1.0 = a whole core, i.e. it was the bottleneck): "
                       + ", ".join(f"{n} {f:.2f}" for n, f in gens) + ".")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="restarts to take the median of")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after start before reading RSS")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients, one token each")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--rounds", type=int, default=3,
                        help="load rounds per server (alternating); the best is reported")
    parser.add_argument("--load", choices=["wrk", "aiohttp"],
                        default="wrk" if shutil.which("wrk") else "aiohttp")
    parser.add_argument("--postgres", action="store_true", help="also run both on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite round")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to CPUs")
    parser.add_argument("--synapse-venv", type=Path,
                        default=DEFAULT_SYNAPSE_VENV)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 starts, 3 s load)")
    args = parser.parse_args()
    if args.quick:
        args.starts, args.settle, args.duration, args.warmup, args.rounds = 2, 1.0, 3.0, 1.0, 1
    if args.load == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --load aiohttp")

    load_before = warn_if_busy()
    server_cpus, load_cpus = split_cpus(args.no_pin)

    synapse_version = ensure_synapse_venv(args.synapse_venv.resolve(), args.postgres)
    engines = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    results: list[tuple[ServerResult, ServerResult]] = []
    with (tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp,
          postgres_cluster(args.postgres) as cluster):
        for engine in engines:
            base = Path(tmp) / engine
            (base / "hearth").mkdir(parents=True)
            (base / "synapse").mkdir(parents=True)
            hearth_url = synapse_pg = None
            if engine == "postgresql":
                assert cluster is not None
                create_database(cluster, "hearth_bench")
                create_database(cluster, "synapse_bench")
                hearth_url, synapse_pg = cluster.url("hearth_bench"), (cluster, "synapse_bench")
            setups = [setup_hearth(base / "hearth", hearth_url),
                      setup_synapse(base / "synapse", args.synapse_venv.resolve(), synapse_pg)]
            hearth, synapse = bench_pair(setups, engine, args, server_cpus, load_cpus)
            results.append((hearth, synapse))

    env = environment(synapse_version, server_cpus, load_cpus, args, load_before)
    print(f"\n## Hearth ({env['hearth_commit']}) vs Synapse {synapse_version}, Python {env['python']}, "
          f"{env['cpus']} CPUs"
          + (", server pinned to 1 CPU, load generator to another" if server_cpus else "")
          + f"; 1-min load average before/after: {load_before[0]:.1f}/{os.getloadavg()[0]:.1f}")
    for hearth, synapse in results:
        print()
        print(markdown(hearth, synapse))

    out = write_results("foundation", {
        "environment": env,
        "results": [{"engine": h.engine, "hearth": asdict(h), "synapse": asdict(s)} for h, s in results],
    })
    print(f"\nWrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
