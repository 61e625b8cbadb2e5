"""Hearth and Synapse side by side: message sends, /messages pagination, database size.

Run: ``python bench/bench_rooms.py`` (``--quick`` for a short smoke run,
``--postgres`` to run both on PostgreSQL instead of SQLite). Prints a markdown
table and writes the figures as JSON to ``bench/results/rooms-<timestamp>.json``.

What is measured, for each server on the same engine, rate limits off:

- **Sends into own rooms**: ``--clients`` users, each with its own room, each
  sending ``--messages`` ``m.room.message`` events one after the other
  (``PUT /rooms/{id}/send/m.room.message/{txn}``), all clients at once.
- **Sends into one shared room**: the same clients, all joined to one public
  room, again ``--messages`` each, all at once. Here every send serialises on
  the one room (its DAG has one head), which is the harder case for a server.
  For both phases: messages per second over the phase's wall time, per-request
  latency p50/p99, and the server's CPU time per message (which other work on
  the machine does not inflate, unlike the wall-clock figures).
- **Pagination**: ``GET /rooms/{id}/messages?dir=b&limit=100`` through the
  whole shared room from its end, following ``end`` tokens until the start;
  total time and per-page latency. Every message sent is checked to come back.
  Pagination only reads, so it is repeated ``--pagination-rounds`` times per
  server and the fastest round is reported.
- **Database size**: once after setup (users, rooms) and once after all sends,
  each with the server stopped. SQLite: the database file plus any ``-wal`` and
  ``-shm`` left after a ``wal_checkpoint(TRUNCATE)`` (and the share of free
  pages in it). PostgreSQL: ``pg_database_size``. Reported as the growth per
  10,000 messages sent, and the total.

The two servers take turns (Hearth's own-room sends, then Synapse's, then
Hearth's shared-room sends, ...), never both under load at once, so that other
work on the machine falls on both alike. With two or more CPUs the server's
process tree is pinned to one and this process (the load generator) to another;
the generator's CPU use is reported (1.0 would mean it was the bottleneck). On
PostgreSQL the cluster's own processes are not pinned; their CPU time per
message is reported separately.

The load generator is one aiohttp session in this process with one asyncio task
per client. A send costs a server far more CPU than the client side costs
here, so one process keeps ahead of either server.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
from harness import (
    DEFAULT_SYNAPSE_VENV,
    ROOT,
    PostgresCluster,
    Running,
    ServerSetup,
    cpu_seconds,
    create_database,
    ensure_synapse_venv,
    environment,
    git_commit,
    postgres_cluster,
    register_users,
    runqueue_wait_seconds,
    setup_hearth,
    setup_synapse,
    split_cpus,
    warn_if_busy,
    write_results,
)

CLIENT = "/_matrix/client/v3"
PAGE_LIMIT = 100
# The targets, as Hearth/Synapse ratios on the same engine.
SEND_GOAL = 10.0
PAGINATION_GOAL = {"sqlite": 10.0, "postgresql": 3.0}


def _percentiles(latencies: list[float]) -> dict[str, float]:
    """p50/p90/p99 in milliseconds (nearest rank)."""
    if not latencies:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)
    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99)}


# --- the servers under test ------------------------------------------------------------


@dataclass
class Server:
    """One server under test: how to start it, where its data lives, its users and rooms."""

    setup: ServerSetup
    engine: str
    sqlite_path: Path | None
    pg: tuple[PostgresCluster, str] | None
    server_cpus: set[int] | None
    running: Running | None = None
    tokens: list[str] = field(default_factory=list)
    own_rooms: list[str] = field(default_factory=list)
    shared_room: str = ""

    def start(self) -> None:
        self.running = Running(self.setup, self.server_cpus)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    @property
    def pid(self) -> int:
        assert self.running is not None
        return self.running.proc.pid

    def db_bytes(self) -> tuple[int, int]:
        """(size of the server's database, bytes of it on SQLite's free list); with the server stopped.

        Free pages are space a database file keeps after rows were deleted (e.g.
        from staging tables); they are part of the file's size on disk.
        """
        if self.pg is not None:
            cluster, dbname = self.pg
            return _pg_database_size(cluster, dbname), 0
        assert self.sqlite_path is not None
        conn = sqlite3.connect(self.sqlite_path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            free = conn.execute("PRAGMA freelist_count").fetchone()[0] * conn.execute(
                "PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
        name = self.sqlite_path.name
        files = [self.sqlite_path.with_name(name + suffix) for suffix in ("", "-wal", "-shm")]
        return sum(f.stat().st_size for f in files if f.exists()), int(free)


def _pg_database_size(cluster: PostgresCluster, dbname: str) -> int:
    out = subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", "postgres", "-tA", "-c", f"SELECT pg_database_size('{dbname}')"],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.strip())


def _postmaster_pid(cluster: PostgresCluster | None) -> int | None:
    if cluster is None:
        return None
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


def hearth_server(root: Path, engine: str, cluster: PostgresCluster | None,
                  server_cpus: set[int] | None) -> Server:
    if cluster is not None:
        create_database(cluster, "hearth_rooms")
        return Server(setup_hearth(root, cluster.url("hearth_rooms")), engine, None,
                      (cluster, "hearth_rooms"), server_cpus)
    setup = setup_hearth(root, None)
    config = yaml.safe_load((root / "data" / "hearth.yaml").read_text())
    sqlite_path = Path(config["database"]["url"].removeprefix("sqlite:///"))
    return Server(setup, engine, sqlite_path, None, server_cpus)


def synapse_server(root: Path, engine: str, venv: Path, cluster: PostgresCluster | None,
                   server_cpus: set[int] | None) -> Server:
    if cluster is not None:
        create_database(cluster, "synapse_rooms")
        pg = (cluster, "synapse_rooms")
        return Server(setup_synapse(root, venv, pg), engine, None, pg, server_cpus)
    setup = setup_synapse(root, venv, None)
    config = yaml.safe_load((root / "homeserver.yaml").read_text())
    return Server(setup, engine, Path(config["database"]["args"]["database"]), None, server_cpus)


# --- users and rooms ---------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(session: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(url, json=body, headers=_auth(token)) as resp:
        data: dict[str, Any] = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"POST {url} failed: {resp.status} {data}")
        return data


async def prepare_rooms(server: Server, clients: int) -> None:
    """Register the users, give each its own room and join all to one shared room."""
    base = server.setup.base_url
    server.tokens = await register_users(base, server.setup.shared_secret, clients, "rooms")
    async with aiohttp.ClientSession() as session:
        server.own_rooms = [
            (await _post(session, f"{base}{CLIENT}/createRoom", token,
                         {"preset": "private_chat", "name": f"own room {i}"}))["room_id"]
            for i, token in enumerate(server.tokens)
        ]
        server.shared_room = (await _post(session, f"{base}{CLIENT}/createRoom", server.tokens[0],
                                          {"preset": "public_chat", "name": "shared room"}))["room_id"]
        for token in server.tokens[1:]:
            await _post(session, f"{base}{CLIENT}/join/{quote(server.shared_room)}", token, {})


# --- sends ---------------------------------------------------------------------------------


@dataclass
class SendResult:
    messages: int
    errors: int
    seconds: float
    messages_per_s: float
    latency_ms: dict[str, float]
    server_cpu_ms_per_message: float
    server_runqueue_wait_fraction: float
    postgres_cpu_ms_per_message: float | None
    generator_cpu_fraction: float


async def _send_all(base: str, tokens: list[str], rooms: list[str], count: int,
                    tag: str) -> tuple[list[float], int, float, float]:
    """Each token sends `count` messages into its room; returns latencies, errors, wall, CPU."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(i: int) -> None:
            nonlocal errors
            headers = _auth(tokens[i])
            url = f"{base}{CLIENT}/rooms/{quote(rooms[i])}/send/m.room.message/"
            for n in range(count):
                body = {"msgtype": "m.text", "body": f"{tag} message {n} from client {i}"}
                t0 = time.perf_counter()
                async with session.put(f"{url}{tag}-{i}-{n}", json=body, headers=headers) as resp:
                    await resp.read()
                    latencies.append(time.perf_counter() - t0)
                    if resp.status != 200:
                        errors += 1
                        if errors <= 3:
                            print(f"send failed: {resp.status} {await resp.text()}", file=sys.stderr)

        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(len(tokens))))
        wall = time.perf_counter() - wall0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return latencies, errors, wall, cpu


def send_phase(server: Server, rooms: list[str], count: int, tag: str, pg_pid: int | None) -> SendResult:
    cpu0, wait0 = cpu_seconds(server.pid), runqueue_wait_seconds(server.pid)
    pg0 = cpu_seconds(pg_pid) if pg_pid else 0.0
    latencies, errors, wall, gen_cpu = asyncio.run(
        _send_all(server.setup.base_url, server.tokens, rooms, count, tag))
    n = len(latencies)
    server_cpu = cpu_seconds(server.pid) - cpu0
    return SendResult(
        n, errors, round(wall, 3), round(n / wall, 1), _percentiles(latencies),
        round(1000 * server_cpu / n, 3),
        round((runqueue_wait_seconds(server.pid) - wait0) / wall, 3),
        round(1000 * (cpu_seconds(pg_pid) - pg0) / n, 3) if pg_pid else None,
        round(gen_cpu / wall, 2),
    )


# --- pagination -----------------------------------------------------------------------------


@dataclass
class PaginationResult:
    pages: int
    messages: int
    seconds: float
    page_latency_ms: dict[str, float]
    server_cpu_s: float
    server_runqueue_wait_fraction: float
    postgres_cpu_s: float | None


async def _paginate(base: str, token: str, room_id: str) -> tuple[list[float], int, float]:
    """Page backwards from the end to the start; returns page latencies, messages seen, wall."""
    url = f"{base}{CLIENT}/rooms/{quote(room_id)}/messages"
    latencies: list[float] = []
    messages = 0
    params = {"dir": "b", "limit": str(PAGE_LIMIT)}
    async with aiohttp.ClientSession() as session:
        wall0 = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            async with session.get(url, params=params, headers=_auth(token)) as resp:
                data = await resp.json()
                latencies.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"/messages failed: {resp.status} {data}")
            messages += sum(1 for e in data["chunk"] if e.get("type") == "m.room.message")
            # The spec: no `end` means there are no more events in that direction.
            if not data.get("end") or not data["chunk"]:
                break
            params["from"] = data["end"]
        wall = time.perf_counter() - wall0
    return latencies, messages, wall


def pagination_round(server: Server, expected: int, pg_pid: int | None) -> PaginationResult:
    cpu0, wait0 = cpu_seconds(server.pid), runqueue_wait_seconds(server.pid)
    pg0 = cpu_seconds(pg_pid) if pg_pid else 0.0
    latencies, messages, wall = asyncio.run(
        _paginate(server.setup.base_url, server.tokens[0], server.shared_room))
    if messages != expected:
        raise RuntimeError(f"{server.setup.name}: pagination returned {messages} messages, "
                           f"{expected} were sent")
    return PaginationResult(
        len(latencies), messages, round(wall, 3), _percentiles(latencies),
        round(cpu_seconds(server.pid) - cpu0, 3),
        round((runqueue_wait_seconds(server.pid) - wait0) / wall, 3),
        round(cpu_seconds(pg_pid) - pg0, 3) if pg_pid else None,
    )


# --- one engine -----------------------------------------------------------------------------


@dataclass
class RoomsResult:
    name: str
    engine: str
    own_rooms: SendResult | None = None
    shared_room: SendResult | None = None
    pagination: PaginationResult | None = None
    pagination_rounds: list[PaginationResult] = field(default_factory=list)
    messages_sent: int = 0
    db_bytes_after_setup: int = 0
    db_bytes_after_run: int = 0
    db_free_bytes_after_run: int = 0

    @property
    def db_growth_per_10k(self) -> float:
        return (self.db_bytes_after_run - self.db_bytes_after_setup) * 10_000 / max(1, self.messages_sent)


def _each(servers: list[Server], results: list[RoomsResult],
          step: Callable[[Server, RoomsResult], None]) -> None:
    for server, result in zip(servers, results, strict=True):
        step(server, result)


def bench_engine(servers: list[Server], args: argparse.Namespace,
                 cluster: PostgresCluster | None) -> list[RoomsResult]:
    engine = servers[0].engine
    results = [RoomsResult(s.setup.name, engine) for s in servers]
    pg_pid = _postmaster_pid(cluster)
    warmup = args.warmup_messages

    def log(server: Server, text: str) -> None:
        print(f"[{engine}] {server.setup.name}: {text}", file=sys.stderr)

    try:
        for server in servers:
            log(server, "starting, registering users, creating rooms...")
            server.start()
            asyncio.run(prepare_rooms(server, args.clients))
        for server, result in zip(servers, results, strict=True):
            server.stop()
            result.db_bytes_after_setup = server.db_bytes()[0]
            server.start()
            # Warm-up: a few sends per client into its own room (counted for the size).
            send_phase(server, server.own_rooms, warmup, "warmup", None)
            result.messages_sent += warmup * len(server.tokens)

        def sends(server: Server, result: RoomsResult, phase: str, rooms: list[str]) -> None:
            sent = send_phase(server, rooms, args.messages, phase.split("_")[0], pg_pid)
            setattr(result, phase, sent)
            result.messages_sent += sent.messages
            log(server, f"{phase.replace('_', ' ')}: {sent.messages_per_s:.0f} msg/s, "
                f"{sent.server_cpu_ms_per_message:.2f} ms CPU/message, {sent.errors} errors, "
                f"generator CPU {sent.generator_cpu_fraction}")

        def own(server: Server, result: RoomsResult) -> None:
            sends(server, result, "own_rooms", server.own_rooms)

        def shared(server: Server, result: RoomsResult) -> None:
            sends(server, result, "shared_room", [server.shared_room] * len(server.tokens))

        def paginate(server: Server, result: RoomsResult) -> None:
            expected = args.messages * len(server.tokens)
            page = pagination_round(server, expected, pg_pid)
            result.pagination_rounds.append(page)
            log(server, f"pagination round {len(result.pagination_rounds)}: {page.pages} pages in "
                f"{page.seconds:.2f}s (p50 {page.page_latency_ms['p50']} ms)")

        _each(servers, results, own)
        _each(servers, results, shared)
        for _ in range(args.pagination_rounds):
            _each(servers, results, paginate)
        for server, result in zip(servers, results, strict=True):
            result.pagination = min(result.pagination_rounds, key=lambda p: p.seconds)
            server.stop()
            result.db_bytes_after_run, result.db_free_bytes_after_run = server.db_bytes()
    finally:
        for server in servers:
            server.stop()
    return results


# --- report ----------------------------------------------------------------------------------


def goals(hearth: RoomsResult, synapse: RoomsResult) -> dict[str, Any]:
    """The issue's targets: sends >= 10x Synapse; pagination >= 10x (SQLite) / 3x (PostgreSQL)."""
    out: dict[str, Any] = {}
    for phase in ("own_rooms", "shared_room"):
        h, s = getattr(hearth, phase), getattr(synapse, phase)
        ratio = h.messages_per_s / s.messages_per_s
        out[f"send_{phase}"] = {"ratio": round(ratio, 2), "goal": SEND_GOAL, "met": ratio >= SEND_GOAL}
    assert hearth.pagination and synapse.pagination
    goal = PAGINATION_GOAL[hearth.engine]
    ratio = synapse.pagination.seconds / hearth.pagination.seconds
    out["pagination"] = {"ratio": round(ratio, 2), "goal": goal, "met": ratio >= goal}
    return out


def markdown(hearth: RoomsResult, synapse: RoomsResult) -> str:
    """One table per engine; the last column is >1 where Hearth does better."""
    rows: list[tuple[str, float | None, float | None, bool, str]] = []
    for label, phase in (("own rooms", "own_rooms"), ("one shared room", "shared_room")):
        h: SendResult = getattr(hearth, phase)
        s: SendResult = getattr(synapse, phase)
        rows += [
            (f"send, {label}: messages/s", h.messages_per_s, s.messages_per_s, True, "{:.0f}"),
            (f"send, {label}: latency p50, ms", h.latency_ms["p50"], s.latency_ms["p50"], False, "{:.1f}"),
            (f"send, {label}: latency p99, ms", h.latency_ms["p99"], s.latency_ms["p99"], False, "{:.1f}"),
            (f"send, {label}: server CPU per message, ms", h.server_cpu_ms_per_message,
             s.server_cpu_ms_per_message, False, "{:.2f}"),
        ]
        if h.postgres_cpu_ms_per_message is not None and s.postgres_cpu_ms_per_message is not None:
            rows.append((f"send, {label}: PostgreSQL CPU per message, ms", h.postgres_cpu_ms_per_message,
                         s.postgres_cpu_ms_per_message, False, "{:.2f}"))
    hp, sp = hearth.pagination, synapse.pagination
    assert hp and sp
    hl, sl = hp.page_latency_ms, sp.page_latency_ms
    rows += [
        (f"/messages, {hp.messages} messages back to the start, total s", hp.seconds, sp.seconds, False,
         "{:.2f}"),
        (f"/messages, per page of {PAGE_LIMIT}: p50, ms", hl["p50"], sl["p50"], False, "{:.1f}"),
        (f"/messages, per page of {PAGE_LIMIT}: p99, ms", hl["p99"], sl["p99"], False, "{:.1f}"),
        ("/messages, server CPU for the whole room, s", hp.server_cpu_s, sp.server_cpu_s, False, "{:.2f}"),
        ("database growth per 10,000 messages, MiB", hearth.db_growth_per_10k / 2**20,
         synapse.db_growth_per_10k / 2**20, False, "{:.1f}"),
        (f"database size after the run ({hearth.messages_sent} messages), MiB",
         hearth.db_bytes_after_run / 2**20, synapse.db_bytes_after_run / 2**20, False, "{:.1f}"),
    ]
    out = [f"### {hearth.engine}", "", "| metric | Hearth | Synapse | Hearth advantage |",
           "|---|---:|---:|---:|"]
    for label, hv, sv, higher_better, fmt in rows:
        ratio = f"{(hv / sv if higher_better else sv / hv):.2f}x" if hv and sv else "—"
        out.append(f"| {label} | {fmt.format(hv)} | {fmt.format(sv)} | {ratio} |")
    g = goals(hearth, synapse)
    out += ["", "Goals: " + "; ".join(
        f"{name.replace('_', ' ')} ≥{v['goal']:.0f}x: {v['ratio']:.1f}x, {'met' if v['met'] else 'NOT met'}"
        for name, v in g.items()) + "."]
    waits = [(r.name, max(x.server_runqueue_wait_fraction for x in (r.own_rooms, r.shared_room) if x))
             for r in (hearth, synapse)]
    out.append("Time each server's threads spent runnable but waiting for a CPU (other work on the machine), "
               "per second of the send phases: " + ", ".join(f"{n} {w:.2f} s" for n, w in waits)
               + ". Where this is large, messages/s and latency show the machine's limit; "
               "CPU per message is the comparable figure.")
    free = [(r.name, r.db_free_bytes_after_run / r.db_bytes_after_run) for r in (hearth, synapse)
            if r.db_bytes_after_run and r.db_free_bytes_after_run]
    if free:
        out.append("Of the database file, free pages (deleted rows) after the run: "
                   + ", ".join(f"{n} {f:.0%}" for n, f in free) + ".")
    gen = [(r.name, max(x.generator_cpu_fraction for x in (r.own_rooms, r.shared_room) if x))
           for r in (hearth, synapse)]
    out.append("Load generator CPU use during sends (1.0 = a whole core, i.e. it was the bottleneck): "
               + ", ".join(f"{n} {f:.2f}" for n, f in gen) + ".")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent senders, one user and token each")
    parser.add_argument("--messages", type=int, default=500, help="messages each client sends per phase")
    parser.add_argument("--warmup-messages", type=int, default=5,
                        help="messages each client sends into its own room before timing")
    parser.add_argument("--pagination-rounds", type=int, default=3,
                        help="full paginations per server (alternating); the fastest is reported")
    parser.add_argument("--postgres", action="store_true", help="run both on PostgreSQL instead of SQLite")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to CPUs")
    parser.add_argument("--synapse-venv", type=Path, default=DEFAULT_SYNAPSE_VENV)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (4 clients x 50 messages)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.messages, args.warmup_messages, args.pagination_rounds = 4, 50, 2, 1

    load_before = warn_if_busy()
    commit = git_commit()
    server_cpus, load_cpus = split_cpus(args.no_pin)
    venv = args.synapse_venv.resolve()
    synapse_version = ensure_synapse_venv(venv, args.postgres)
    engine = "postgresql" if args.postgres else "sqlite"
    with (tempfile.TemporaryDirectory(prefix="hearth-bench-rooms-") as tmp,
          postgres_cluster(args.postgres) as cluster):
        (Path(tmp) / "hearth").mkdir()
        (Path(tmp) / "synapse").mkdir()
        servers = [hearth_server(Path(tmp) / "hearth", engine, cluster, server_cpus),
                   synapse_server(Path(tmp) / "synapse", engine, venv, cluster, server_cpus)]
        hearth, synapse = bench_engine(servers, args, cluster)

    env = environment(synapse_version, server_cpus, load_cpus, args, load_before, commit)
    load = env["load_average_1min"]
    print(f"\n## Rooms: Hearth ({env['hearth_commit']}) vs Synapse {synapse_version}, "
          f"Python {env['python']}, {env['cpus']} CPUs"
          + (", server pinned to 1 CPU, load generator to another" if server_cpus else "")
          + f"; 1-min load average before/after: {load['before']:.1f}/{load['after']:.1f}")
    print(f"{args.clients} clients x {args.messages} messages per phase; pagination fastest of "
          f"{args.pagination_rounds} round(s).\n")
    print(markdown(hearth, synapse))
    out = write_results("rooms", {
        "environment": env,
        "engine": engine,
        "hearth": asdict(hearth) | {"db_growth_per_10k_bytes": round(hearth.db_growth_per_10k)},
        "synapse": asdict(synapse) | {"db_growth_per_10k_bytes": round(synapse.db_growth_per_10k)},
        "goals": goals(hearth, synapse),
    })
    print(f"\nWrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
