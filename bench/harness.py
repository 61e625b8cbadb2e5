"""Shared machinery of the Hearth-vs-Synapse benchmarks in this folder.

Starting each server from its own generated config with equal overrides,
registering users through the shared-secret admin API both implement,
pinning processes to CPUs, reading RSS and CPU time of a process tree from
/proc, a throwaway PostgreSQL cluster, and writing results as JSON. Each
``bench_*.py`` script owns only what it measures and how it reports it.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.postgres import PostgresCluster  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_SYNAPSE_VENV = Path(os.environ.get("SYNAPSE_VENV", BENCH_DIR / ".venv-synapse"))
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
        # Newer Synapse limits these too (room creation: 10 then one a minute).
        "rc_room_creation": _HIGH,
        "rc_profile": _HIGH,
        "rc_reports": _HIGH,
        "rc_user_directory": _HIGH,
        "rc_media_create": _HIGH,
        "rc_key_requests": _HIGH,
        "rc_third_party_invite": _HIGH,
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


def pin_to(cpus: set[int] | None) -> Callable[[], None] | None:
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
            preexec_fn=pin_to(server_cpus),
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


# --- users ---------------------------------------------------------------------------


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


# --- PostgreSQL ----------------------------------------------------------------------


@contextmanager
def postgres_cluster(enabled: bool) -> Iterator[PostgresCluster | None]:
    if not enabled:
        yield None
        return
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def create_database(cluster: PostgresCluster, name: str) -> None:
    # Synapse insists on C collation; Hearth does not mind it.
    subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c",
         f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"],
        check=True, capture_output=True,
    )


# --- CPUs, environment and results --------------------------------------------------


def split_cpus(no_pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load CPUs): one core each when there are two or more.

    Pins this process to the load CPU, so a load generator running here (and
    any child it starts) never competes with the server for its core.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if no_pin or len(cpus) < 2:
        return None, None
    server_cpus, load_cpus = {cpus[0]}, {cpus[1]}
    os.sched_setaffinity(0, load_cpus)
    return server_cpus, load_cpus


def warn_if_busy() -> tuple[float, float, float]:
    """Return the load average; warn on stderr when other work is running."""
    load = os.getloadavg()
    if load[0] > 0.5:
        print(f"warning: the machine is busy (load average {load[0]:.1f}); wall-clock figures "
              "will be inflated, CPU-time figures much less so", file=sys.stderr)
    return load


def git_commit() -> str:
    """HEAD's short hash, with ``+dirty`` when hearth/ has uncommitted changes (what actually ran)."""
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "hearth"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (res.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def environment(synapse_version: str, server_cpus: set[int] | None, load_cpus: set[int] | None,
                args: Any, load_before: tuple[float, float, float],
                commit: str | None = None) -> dict[str, Any]:
    """What a result depends on besides the code: versions, machine, pinning, options, load.

    Pass `commit` as read when the servers started: the tree may move during a long run.
    """
    return {
        "hearth_commit": commit or git_commit(), "synapse_version": synapse_version,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "pinning": None if server_cpus is None else {"server": sorted(server_cpus),
                                                     "load": sorted(load_cpus or [])},
        "args": {k: str(v) for k, v in vars(args).items()},
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }


def write_results(kind: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<kind>-<timestamp>.json``; returns the path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=2))
    return out
