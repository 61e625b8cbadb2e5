"""Hearth and Synapse side by side on /sync: wake latency, big-account syncs, idle long-polls.

Run: ``python bench/bench_sync.py`` (``--quick`` for a short smoke run,
``--postgres`` to also run both on PostgreSQL, ``--no-sqlite`` to skip
SQLite). Prints a markdown table per database engine, writes the figures as
JSON to ``bench/results/sync-<timestamp>.json`` and the wake-latency
distribution as SVG next to it (and, for a full run, to ``docs/``).

What is measured, for each server (both from their own generated configs
with the equal overrides of ``harness.py``: rate limits off, cheap password
hashing, both on SQLite or both on the same PostgreSQL cluster):

- **Wake latency.** User A long-polls ``/sync?since=...&timeout=30000`` with a
  stored filter (the same on both: timeline of the rooms, no presence,
  ephemeral or account data); user B sends ``--wake-messages`` messages one at
  a time into their shared room. Each is timed from issuing B's send request
  to the last byte of A's sync response that holds it; A re-issues its
  long-poll at once with the new ``since``, and B waits ``--wake-gap-ms`` so
  the poll is parked before the next send. Reported: p50, p90, p99, and the
  server CPU time per message (send plus wake). Blocks of messages alternate
  between the servers, so other work on the machine falls on both alike.
- **Initial sync** of a user in ``--rooms`` rooms with ``--room-messages``
  messages each (and another member who sent them), built through the API
  with several rooms in flight at once. ``/sync`` with no ``since`` and the
  default filter, each run from a freshly logged-in device (as a new login
  does; it also keeps Synapse's per-device response cache from answering a
  repeat). The first run is reported on its own, the headline is the median
  of the ``--sync-runs`` after it.
- **Incremental sync** in the same account: one new message in one of the
  rooms, then ``/sync?since=<token from before the message>`` (default
  filter); median of ``--incremental-runs``.
- **Idle long-polls.** ``--idle-polls`` users (in rooms of
  ``--idle-room-size``) each take a ``since`` token from an initial sync; the
  server is restarted; then each parks one ``/sync?since=...&timeout=300000``
  on its own connection. Once settled, the RSS of the server's whole process
  tree is sampled every second for ``--idle-seconds`` (median reported) and
  the CPU time it used over that window is read from /proc.

Where the machine has two or more cores (and without ``--no-pin``), both
servers are pinned to one core and this load generator to another. Timing
figures on a machine shared with other work are inflated by it; CPU-time
figures much less so, and the report gives both. The PostgreSQL server's own
processes are not part of either server's process tree (not counted in RSS
or CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
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
    Running,
    ServerSetup,
    create_database,
    ensure_synapse_venv,
    environment,
    postgres_cluster,
    register_users,
    setup_hearth,
    setup_synapse,
    split_cpus,
    warn_if_busy,
    write_results,
)
from matrix_client import MatrixClient
from svg_plot import cdf_svg
from sync_workloads import (
    BigAccount,
    IdleResult,
    SyncRun,
    WakeState,
    big_setup,
    idle_long_polls,
    idle_setup,
    incremental_sync_run,
    initial_sync_run,
    percentile,
    since_tokens,
    wake_block,
    wake_setup,
)

DOCS_DIR = ROOT / "docs"


@dataclass
class Side:
    """One server under test and everything the workloads built on it."""

    setup: ServerSetup
    running: Running
    session: aiohttp.ClientSession
    wake: WakeState | None = None
    big: BigAccount | None = None
    idle_clients: list[MatrixClient] = field(default_factory=list)
    initial: list[SyncRun] = field(default_factory=list)
    incremental: list[SyncRun] = field(default_factory=list)
    idle: IdleResult | None = None
    setup_s: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.setup.name

    @property
    def pid(self) -> int:
        return self.running.proc.pid

    @property
    def port(self) -> int:
        return int(self.setup.base_url.rsplit(":", 1)[1])


def log(engine: str, message: str) -> None:
    print(f"[{engine}] {message}", file=sys.stderr, flush=True)


async def _clients(side: Side, count: int, prefix: str) -> list[MatrixClient]:
    tokens = await register_users(side.setup.base_url, side.setup.shared_secret, count, prefix)
    return list(await asyncio.gather(*(MatrixClient.connect(side.session, side.setup.base_url, t)
                                       for t in tokens)))


async def _timed_setup(side: Side, what: str, coro: Any) -> Any:
    started = time.perf_counter()
    out = await coro
    side.setup_s[what] = round(time.perf_counter() - started, 1)
    return out


async def prepare_users(side: Side, idle_polls: int) -> tuple[list[MatrixClient], list[MatrixClient]]:
    wake = await _clients(side, 2, "wake")
    big = await _clients(side, 2, "big")
    side.idle_clients = await _timed_setup(side, "register idle users", _clients(side, idle_polls, "idle"))
    return wake, big


async def run_wake(sides: list[Side], args: argparse.Namespace, engine: str) -> None:
    remaining = args.wake_messages
    while remaining > 0:
        block = min(args.wake_block, remaining)
        for side in sides:
            assert side.wake is not None
            await wake_block(side.wake, block, args.wake_gap_ms / 1000, side.pid)
        remaining -= block
        done = args.wake_messages - remaining
        log(engine, "wake latency: " + ", ".join(
            f"{s.name} p50 {1000 * statistics.median(s.wake.latencies_s):.1f} ms"
            for s in sides if s.wake is not None) + f" after {done}/{args.wake_messages} messages")


async def run_big(sides: list[Side], args: argparse.Namespace, engine: str,
                  big_users: list[list[MatrixClient]]) -> None:
    log(engine, f"building {args.rooms} rooms x {args.room_messages} messages on both servers...")
    accounts = await asyncio.gather(*(
        _timed_setup(side, "rooms and messages",
                     big_setup(users[0], users[1], args.rooms, args.room_messages, args.setup_concurrency,
                               f"{engine} {side.name}"))
        for side, users in zip(sides, big_users, strict=True)))
    for side, account in zip(sides, accounts, strict=True):
        side.big = account
        log(engine, f"{side.name}: setup took {side.setup_s['rooms and messages']:.0f} s")
    for n in range(args.sync_runs + 1):
        for side in sides:
            assert side.big is not None
            run = await initial_sync_run(side.big, side.pid)
            side.initial.append(run)
            log(engine, f"{side.name}: initial sync {n}/{args.sync_runs}: {run.seconds:.3f} s, "
                        f"{run.server_cpu_s:.2f} s CPU, {run.bytes / 1024:.0f} KiB")
    tokens = {}
    for side in sides:
        assert side.big is not None
        tokens[side.name] = str((await side.big.reader.sync()).body["next_batch"])
    for n in range(args.incremental_runs):
        for side in sides:
            assert side.big is not None
            run, tokens[side.name] = await incremental_sync_run(side.big, tokens[side.name], n, side.pid)
            side.incremental.append(run)
    for side in sides:
        log(engine, f"{side.name}: incremental sync median "
                    f"{1000 * statistics.median(r.seconds for r in side.incremental):.1f} ms")


async def run_idle(sides: list[Side], args: argparse.Namespace, engine: str,
                   server_cpus: set[int] | None) -> None:
    log(engine, f"putting {args.idle_polls} idle users in rooms of {args.idle_room_size}...")
    await asyncio.gather(*(_timed_setup(side, "idle rooms", idle_setup(side.idle_clients, args.idle_room_size,
                                                                        args.setup_concurrency))
                           for side in sides))
    for side in sides:
        # Tokens right before the restart: the users were last seen seconds ago,
        # so no presence timeout falls into the window.
        tokens = await since_tokens(side.idle_clients, 16)
        side.running.stop()
        side.running = Running(side.setup, server_cpus)
        await asyncio.sleep(3)
        log(engine, f"{side.name}: restarted; parking {args.idle_polls} long-polls...")
        side.idle = await idle_long_polls(side.idle_clients, tokens, side.pid, side.port, args.idle_seconds,
                                          args.idle_settle)
        idle = side.idle
        log(engine, f"{side.name}: {idle.connections} connections, RSS "
                    f"{idle.rss_median_bytes / 2**20:.0f} MiB (was {idle.rss_before_bytes / 2**20:.0f}), "
                    f"{idle.cpu_s:.2f} s CPU in {idle.seconds:.0f} s, "
                    f"{idle.returns_in_window} polls answered in the window")


async def bench_engine(setups: list[ServerSetup], engine: str, args: argparse.Namespace,
                       server_cpus: set[int] | None) -> list[Side]:
    sides: list[Side] = []
    try:
        for setup in setups:
            log(engine, f"starting {setup.name}...")
            sides.append(Side(setup, Running(setup, server_cpus),
                              aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))))
        users = await asyncio.gather(*(prepare_users(side, args.idle_polls) for side in sides))
        for side, (wake_users, _) in zip(sides, users, strict=True):
            side.wake = await wake_setup(*wake_users)
        await run_wake(sides, args, engine)
        await run_big(sides, args, engine, [big for _, big in users])
        await run_idle(sides, args, engine, server_cpus)
    finally:
        for side in sides:
            await side.session.close()
            side.running.stop()
    return sides


# --- report ------------------------------------------------------------------------------


def side_summary(side: Side) -> dict[str, Any]:
    """The headline figures of one server (also what goes into the JSON)."""
    out: dict[str, Any] = {"name": side.name, "setup_s": side.setup_s}
    if side.wake is not None:
        lat = [1000 * s for s in side.wake.latencies_s]
        out["wake"] = {
            "messages": len(lat),
            "p50_ms": round(percentile(lat, 50), 2), "p90_ms": round(percentile(lat, 90), 2),
            "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat), 2),
            "server_cpu_ms_per_message": round(1000 * side.wake.server_cpu_s / max(1, len(lat)), 2),
            "early_returns": side.wake.early_returns, "extra_polls": side.wake.extra_polls,
            "latencies_ms": [round(v, 3) for v in lat],
        }
    if side.initial:
        timed = side.initial[1:] or side.initial
        out["initial_sync"] = {
            "rooms": side.initial[0].rooms,
            "first_s": round(side.initial[0].seconds, 3),
            "median_s": round(statistics.median(r.seconds for r in timed), 3),
            # CPU time comes in clock ticks (10 ms): a mean over runs resolves it, a median not.
            "mean_server_cpu_s": round(statistics.mean(r.server_cpu_s for r in timed), 3),
            "bytes": side.initial[-1].bytes,
            "runs": [asdict(r) for r in side.initial],
        }
    if side.incremental:
        out["incremental_sync"] = {
            "median_ms": round(1000 * statistics.median(r.seconds for r in side.incremental), 2),
            "mean_server_cpu_ms": round(1000 * statistics.mean(r.server_cpu_s for r in side.incremental), 2),
            "runs": [asdict(r) for r in side.incremental],
        }
    if side.idle is not None:
        out["idle"] = {**asdict(side.idle), "rss_median_bytes": side.idle.rss_median_bytes}
    return out


def _ratio(h: float, s: float) -> str:
    return f"{s / h:.1f}x" if h > 0 and s > 0 else "—"


def markdown(engine: str, h: dict[str, Any], s: dict[str, Any]) -> str:
    """One table per engine; the last column is Synapse's figure over Hearth's (>1: Hearth better)."""
    rows: list[tuple[str, float, float, str]] = []
    if "wake" in h:
        for p in ("p50", "p90", "p99"):
            rows.append((f"wake latency {p}, ms", h["wake"][f"{p}_ms"], s["wake"][f"{p}_ms"], "{:.1f}"))
        rows.append(("server CPU per message (send + wake), ms", h["wake"]["server_cpu_ms_per_message"],
                     s["wake"]["server_cpu_ms_per_message"], "{:.2f}"))
    if "initial_sync" in h:
        hi, si = h["initial_sync"], s["initial_sync"]
        rows += [
            (f"initial sync, {hi['rooms']} rooms (median of {len(hi['runs']) - 1}), s", hi["median_s"],
             si["median_s"], "{:.3f}"),
            ("initial sync, first run, s", hi["first_s"], si["first_s"], "{:.3f}"),
            ("initial sync, server CPU (mean), s", hi["mean_server_cpu_s"], si["mean_server_cpu_s"],
             "{:.3f}"),
            ("initial sync response, KiB", hi["bytes"] / 1024, si["bytes"] / 1024, "{:.0f}"),
        ]
    if "incremental_sync" in h:
        hn, sn = h["incremental_sync"], s["incremental_sync"]
        rows += [
            (f"incremental sync, 1 new message (median of {len(hn['runs'])}), ms", hn["median_ms"],
             sn["median_ms"], "{:.1f}"),
            ("incremental sync, server CPU (mean), ms", hn["mean_server_cpu_ms"],
             sn["mean_server_cpu_ms"], "{:.1f}"),
        ]
    if "idle" in h:
        hd, sd = h["idle"], s["idle"]
        rows += [
            (f"RSS with {hd['polls']} idle long-polls (median), MiB", hd["rss_median_bytes"] / 2**20,
             sd["rss_median_bytes"] / 2**20, "{:.0f}"),
            ("RSS added by parking them, MiB", (hd["rss_median_bytes"] - hd["rss_before_bytes"]) / 2**20,
             (sd["rss_median_bytes"] - sd["rss_before_bytes"]) / 2**20, "{:.0f}"),
            (f"server CPU over {hd['seconds']:.0f} s idle, s", hd["cpu_s"], sd["cpu_s"], "{:.2f}"),
            ("server CPU to answer and park them, s", hd["park_cpu_s"], sd["park_cpu_s"], "{:.2f}"),
        ]
    out = [f"### {engine}", "", "| metric | Hearth | Synapse | Synapse / Hearth |", "|---|---:|---:|---:|"]
    for label, hv, sv, fmt in rows:
        out.append(f"| {label} | {fmt.format(hv)} | {fmt.format(sv)} | {_ratio(hv, sv)} |")
    if "idle" in h:
        out.append(f"| idle long-polls answered in the window | {h['idle']['returns_in_window']} | "
                   f"{s['idle']['returns_in_window']} | |")
    out += ["", "Goals:"] + [f"- {g}" for g in goals(h, s)]
    return "\n".join(out)


def goals(h: dict[str, Any], s: dict[str, Any]) -> list[str]:
    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"
    out = []
    if "wake" in h:
        hp, sp = h["wake"]["p50_ms"], s["wake"]["p50_ms"]
        out.append(f"wake p50 under 1/5 of Synapse's: {verdict(hp * 5 < sp)} ({_ratio(hp, sp)})")
    if "initial_sync" in h:
        hv, sv = h["initial_sync"]["median_s"], s["initial_sync"]["median_s"]
        out.append(f"initial sync ≥5x faster: {verdict(sv >= 5 * hv)} ({_ratio(hv, sv)})")
    if "incremental_sync" in h:
        hv, sv = h["incremental_sync"]["median_ms"], s["incremental_sync"]["median_ms"]
        out.append(f"incremental sync ≥5x faster: {verdict(sv >= 5 * hv)} ({_ratio(hv, sv)})")
    if "idle" in h:
        hv, sv = h["idle"]["rss_median_bytes"], s["idle"]["rss_median_bytes"]
        out.append(f"RSS with idle long-polls ≤ half of Synapse's: {verdict(2 * hv <= sv)} "
                   f"({_ratio(hv, sv)})")
    return out


def write_plot(path: Path, engine: str, h: dict[str, Any], s: dict[str, Any]) -> None:
    series = [(side["name"], side["wake"]["latencies_ms"]) for side in (h, s)]
    path.write_text(cdf_svg(
        series, f"/sync wake latency ({engine}): B sends, A's parked long-poll answers",
        "time from B's send request to A's sync response holding the message (log scale)"))


def raise_fd_limit(needed: int) -> None:
    """Each long-poll holds a socket here and in the server (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        raise SystemExit(f"open-file limit {soft} is below the {needed} this run needs (ulimit -n)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wake-messages", type=int, default=500)
    parser.add_argument("--wake-block", type=int, default=50, help="messages per server before switching")
    parser.add_argument("--wake-gap-ms", type=float, default=100.0,
                        help="pause between a long-poll being issued and the next send")
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--room-messages", type=int, default=50)
    parser.add_argument("--sync-runs", type=int, default=5, help="timed initial syncs after the first")
    parser.add_argument("--incremental-runs", type=int, default=20)
    parser.add_argument("--setup-concurrency", type=int, default=8, help="rooms built at once")
    parser.add_argument("--idle-polls", type=int, default=1000)
    parser.add_argument("--idle-room-size", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--idle-settle", type=float, default=10.0, help="minimum seconds before measuring")
    parser.add_argument("--postgres", action="store_true", help="also run both on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite round")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and load generator to CPUs")
    parser.add_argument("--synapse-venv", type=Path, default=DEFAULT_SYNAPSE_VENV)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small numbers everywhere)")
    args = parser.parse_args()
    if args.quick:
        args.wake_messages, args.wake_block, args.rooms, args.room_messages = 40, 10, 10, 10
        args.sync_runs, args.incremental_runs = 2, 5
        args.idle_polls, args.idle_seconds, args.idle_settle = 100, 5.0, 3.0
    raise_fd_limit(args.idle_polls + 500)

    load_before = warn_if_busy()
    server_cpus, load_cpus = split_cpus(args.no_pin)
    synapse_version = ensure_synapse_venv(args.synapse_venv.resolve(), args.postgres)
    engines = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    results: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    with (tempfile.TemporaryDirectory(prefix="hearth-bench-sync-") as tmp,
          postgres_cluster(args.postgres) as cluster):
        for engine in engines:
            base = Path(tmp) / engine
            (base / "hearth").mkdir(parents=True)
            (base / "synapse").mkdir(parents=True)
            hearth_url = synapse_pg = None
            if engine == "postgresql":
                assert cluster is not None
                create_database(cluster, "hearth_sync")
                create_database(cluster, "synapse_sync")
                hearth_url, synapse_pg = cluster.url("hearth_sync"), (cluster, "synapse_sync")
            setups = [setup_hearth(base / "hearth", hearth_url),
                      setup_synapse(base / "synapse", args.synapse_venv.resolve(), synapse_pg)]
            hearth, synapse = asyncio.run(bench_engine(setups, engine, args, server_cpus))
            results.append((engine, side_summary(hearth), side_summary(synapse)))

    env = environment(synapse_version, server_cpus, load_cpus, args, load_before)
    print(f"\n## /sync: Hearth ({env['hearth_commit']}) vs Synapse {synapse_version}, "
          f"Python {env['python']}, {env['cpus']} CPUs"
          + (", both servers pinned to 1 CPU, load generator to another" if server_cpus else "")
          + f"; 1-min load average before/after: {load_before[0]:.1f}/{os.getloadavg()[0]:.1f}")
    for engine, h, s in results:
        print()
        print(markdown(engine, h, s))

    out = write_results("sync", {
        "environment": env,
        "results": [{"engine": engine, "hearth": h, "synapse": s} for engine, h, s in results],
    })
    print(f"\nWrote {out.relative_to(ROOT)}")
    for engine, h, s in results:
        plots = [out.with_name(f"{out.stem}-wake-{engine}.svg")]
        if not args.quick:
            plots.append(DOCS_DIR / f"sync-wake-latency-{engine}.svg")
        for path in plots:
            write_plot(path, engine, h, s)
            print(f"Wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
