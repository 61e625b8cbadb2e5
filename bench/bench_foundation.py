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
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.postgres import PostgresCluster  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WHOAMI = "/_matrix/client/v3/account/whoami"
VERSIONS = "/_matrix/client/versions"
START_DEADLINE_S = 120.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- process-tree accounting (from /proc, no extra dependency) ---------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of `pid` and its live descendants (incl. reaped children)."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat (1-based).
        ticks += sum(int(f) for f in fields[11:15])
    return ticks / CLOCK_TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Time the tree's threads spent runnable but waiting for a CPU (/proc/*/schedstat).

    The share of the load window a server spent waiting shows how much other
    work on the machine held it back: throughput measured while it waited is
    the machine's limit, not the server's.
    """
    ns = 0
    for p in process_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                ns += int(Path(f"/proc/{p}/task/{t}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return ns / 1e9


# --- servers -----------------------------------------------------------------------


@dataclass
class ServerSetup:
    name: str
    argv: list[str]
    cwd: Path
    base_url: str
    shared_secret: str
    log_path: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup_hearth(root: Path, database_url: str | None) -> ServerSetup:
    port = free_port()
    data = root / "data"
    args = [sys.executable, "-m", "hearth.cli", "generate-config", "--server-name", "bench.hearth",
            "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--enable-registration"]
    if database_url:
        args += ["--database-url", database_url]
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    config_path = data / "hearth.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["argon2"] = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}
    config["rate_limits"] = {"enabled": False}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ServerSetup(
        "Hearth", [sys.executable, "-m", "hearth.cli", "serve", "--config", str(config_path)],
        root, f"http://127.0.0.1:{port}", config["registration_shared_secret"], root / "server-output.log",
    )


_HIGH = {"per_second": 100000, "burst_count": 100000}


def setup_synapse(root: Path, venv: Path, pg: tuple[PostgresCluster, str] | None) -> ServerSetup:
    port = free_port()
    python = str(venv / "bin" / "python")
    config_path = root / "homeserver.yaml"
    subprocess.run([python, "-m", "synapse.app.homeserver", "--server-name", "bench.synapse",
                    "--config-path", str(config_path), "--data-directory", str(root),
                    "--generate-config", "--report-stats=no"], check=True, capture_output=True, cwd=root)
    config = yaml.safe_load(config_path.read_text())
    config["listeners"] = [{
        "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False, "x_forwarded": False,
        "resources": [{"names": ["client", "federation"], "compress": False}],
    }]
    if pg is not None:
        cluster, dbname = pg
        config["database"] = {"name": "psycopg2", "args": {
            "user": "postgres", "host": "127.0.0.1", "port": cluster.port, "database": dbname,
            "cp_min": 5, "cp_max": 10,
        }}
    config.update({
        "bcrypt_rounds": 4,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "rc_message": _HIGH,
        "rc_registration": _HIGH,
        "rc_registration_token_validity": _HIGH,
        "rc_login": {"address": _HIGH, "account": _HIGH, "failed_attempts": _HIGH},
        "rc_admin_redaction": _HIGH,
        "rc_joins": {"local": _HIGH, "remote": _HIGH},
        "rc_joins_per_room": _HIGH,
        "rc_3pid_validation": _HIGH,
        "rc_invites": {"per_room": _HIGH, "per_user": _HIGH, "per_issuer": _HIGH},
        "rc_presence": {"per_user": _HIGH},
        "rc_delayed_event_mgmt": _HIGH,
    })
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ServerSetup(
        "Synapse", [python, "-m", "synapse.app.homeserver", "--config-path", str(config_path)],
        root, f"http://127.0.0.1:{port}", config["registration_shared_secret"], root / "homeserver.log",
    )


def ensure_synapse_venv(venv: Path, postgres: bool) -> str:
    """Create the virtualenv if absent; return the installed Synapse version."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"Creating {venv} and installing matrix-synapse from PyPI...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "matrix-synapse"], check=True)
    if postgres and subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True).returncode:
        print(f"Installing psycopg2-binary into {venv}...", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "psycopg2-binary"], check=True)
    return subprocess.run([str(python), "-c", "import synapse; print(synapse.__version__)"],
                          check=True, capture_output=True, text=True).stdout.strip()


def _pin_to(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)
    return pin


class Running:
    """A started server process."""

    def __init__(self, setup: ServerSetup, server_cpus: set[int] | None) -> None:
        self.setup = setup
        # Hearth logs to stderr, Synapse to its own log file; either way the
        # process output goes to a file (a pipe nobody reads would stall it).
        self._out = (setup.cwd / "server-output.log").open("ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            setup.argv, cwd=setup.cwd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out,
            preexec_fn=_pin_to(server_cpus),
        )
        self.startup_s = self._wait_until_answering()
        # CPU time spent starting: unlike wall time, other load on the machine
        # does not inflate it.
        self.startup_cpu_s = cpu_seconds(self.proc.pid)

    def _wait_until_answering(self) -> float:
        host, port = self.setup.base_url.removeprefix("http://").rsplit(":", 1)
        deadline = self.started_at + START_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                self._out.flush()
                tail = "\n".join((self.setup.cwd / "server-output.log").read_text(errors="replace")
                                  .splitlines()[-30:])
                raise RuntimeError(f"{self.setup.name} exited with {self.proc.returncode} while starting "
                                   f"(see also {self.setup.log_path}):\n{tail}")
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=5)
                conn.request("GET", VERSIONS)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError(f"{self.setup.name} did not answer within {START_DEADLINE_S}s")
            time.sleep(0.005)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


# --- users and load ----------------------------------------------------------------


async def register_users(base_url: str, shared_secret: str, count: int, prefix: str) -> list[str]:
    """Create `count` users through /_synapse/admin/v1/register; returns their access tokens."""
    url = base_url + "/_synapse/admin/v1/register"
    password = "bench password"

    async def one(session: aiohttp.ClientSession, i: int) -> str:
        async with session.get(url) as resp:
            nonce = (await resp.json())["nonce"]
        username = f"{prefix}{i}"
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"notadmin"]))
        body = {"nonce": nonce, "username": username, "password": password, "admin": False,
                "mac": mac.hexdigest()}
        async with session.post(url, json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"shared-secret register failed: {resp.status} {data}")
        return str(data["access_token"])

    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(8)

        async def limited(i: int) -> str:
            async with sem:
                return await one(session, i)
        tokens = await asyncio.gather(*(limited(i) for i in range(count)))
        # Each token works (and each server has seen each token once before timing).
        for token in tokens:
            async with session.get(base_url + WHOAMI, headers={"Authorization": f"Bearer {token}"}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"whoami failed for a fresh token: {resp.status} {await resp.text()}")
    return list(tokens)


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
        capture_output=True, text=True, check=True, preexec_fn=_pin_to(cpus),
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


def _git_commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


@contextmanager
def _postgres(enabled: bool) -> Iterator[PostgresCluster | None]:
    if not enabled:
        yield None
        return
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _create_db(cluster: PostgresCluster, name: str) -> None:
    # Synapse insists on C collation; Hearth does not mind it.
    subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c",
         f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"],
        check=True, capture_output=True,
    )


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
                        default=Path(os.environ.get("SYNAPSE_VENV", BENCH_DIR / ".venv-synapse")))
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 starts, 3 s load)")
    args = parser.parse_args()
    if args.quick:
        args.starts, args.settle, args.duration, args.warmup, args.rounds = 2, 1.0, 3.0, 1.0, 1
    if args.load == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --load aiohttp")

    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(f"warning: the machine is busy (load average {load_before[0]:.1f}); wall-clock figures "
              "will be inflated, CPU-time figures much less so", file=sys.stderr)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = load_cpus = None
    if not args.no_pin and len(cpus) >= 2:
        server_cpus, load_cpus = {cpus[0]}, {cpus[1]}
        os.sched_setaffinity(0, load_cpus)

    synapse_version = ensure_synapse_venv(args.synapse_venv.resolve(), args.postgres)
    engines = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    results: list[tuple[ServerResult, ServerResult]] = []
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp, _postgres(args.postgres) as cluster:
        for engine in engines:
            base = Path(tmp) / engine
            (base / "hearth").mkdir(parents=True)
            (base / "synapse").mkdir(parents=True)
            hearth_url = synapse_pg = None
            if engine == "postgresql":
                assert cluster is not None
                _create_db(cluster, "hearth_bench")
                _create_db(cluster, "synapse_bench")
                hearth_url, synapse_pg = cluster.url("hearth_bench"), (cluster, "synapse_bench")
            setups = [setup_hearth(base / "hearth", hearth_url),
                      setup_synapse(base / "synapse", args.synapse_venv.resolve(), synapse_pg)]
            hearth, synapse = bench_pair(setups, engine, args, server_cpus, load_cpus)
            results.append((hearth, synapse))

    env = {
        "hearth_commit": _git_commit(), "synapse_version": synapse_version,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": len(cpus),
        "pinning": None if server_cpus is None else {"server": sorted(server_cpus),
                                                     "load": sorted(load_cpus or [])},
        "args": {k: str(v) for k, v in vars(args).items()},
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
    print(f"\n## Hearth ({env['hearth_commit']}) vs Synapse {synapse_version}, Python {env['python']}, "
          f"{env['cpus']} CPUs"
          + (", server pinned to 1 CPU, load generator to another" if server_cpus else "")
          + f"; 1-min load average before/after: {load_before[0]:.1f}/{os.getloadavg()[0]:.1f}")
    for hearth, synapse in results:
        print()
        print(markdown(hearth, synapse))

    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"foundation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "environment": env,
        "results": [{"engine": h.engine, "hearth": asdict(h), "synapse": asdict(s)} for h, s in results],
    }, indent=2))
    print(f"\nWrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
