"""Where Hearth spends its CPU in the rooms benchmark: py-spy over sends and /messages.

Run: ``python bench/profile_rooms.py`` (needs ``pip install py-spy``; as root,
or with ptrace allowed). Starts Hearth alone on SQLite (``--postgres`` for
PostgreSQL), prepares users and rooms as ``bench_rooms.py`` does, and records
each phase (sends into own rooms, sends into one shared room, paginating the
shared room) with ``py-spy record --format raw``. Prints, per phase, the
functions with the most samples on top of the stack (self) and on the stack at
all (inclusive), as a share of the phase's samples; the raw stacks are kept
in ``--out`` for a flame graph (e.g. inferno-flamegraph or speedscope).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_rooms import hearth_server, pagination_round, prepare_rooms, send_phase
from harness import BENCH_DIR, postgres_cluster, split_cpus

# A thread-pool worker waiting for work: py-spy does not always see the wait as idle.
IDLE_POOL_WORKER = "_worker (concurrent/futures/thread.py)"


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: lines differ per sample, functions do not."""
    func, _, where = frame.partition(" (")
    return f"{func} ({where.rsplit(':', 1)[0]})"


def summarise(raw: Path, top: int) -> str:
    """Top functions by self and inclusive samples in a py-spy raw (collapsed stacks) file."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # [0] names the process
        if not frames or frames[-1] == IDLE_POOL_WORKER:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            incl_counts[name] += count
    lines = [f"{total} samples", "", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "inclusive (hearth code only):"]
    hearth = [(name, n) for name, n in incl_counts.most_common() if name.split(" (")[1].startswith("hearth/")]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in hearth[:top]]
    return "\n".join(lines)


def record(pid: int, out: Path, rate: int, work: Callable[[], object]) -> None:
    """py-spy samples `pid` (and its subprocesses) while `work` runs."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                            "--subprocesses", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches
    try:
        work()
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="messages per client per phase")
    parser.add_argument("--pagination-rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "profile-rooms")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server_cpus, _ = split_cpus(False)
    engine = "postgresql" if args.postgres else "sqlite"
    with (tempfile.TemporaryDirectory(prefix="hearth-profile-rooms-") as tmp,
          postgres_cluster(args.postgres) as cluster):
        server = hearth_server(Path(tmp), engine, cluster, server_cpus)
        server.start()
        try:
            asyncio.run(prepare_rooms(server, args.clients))
            send_phase(server, server.own_rooms, 5, "warmup", None)
            phases: list[tuple[str, Callable[[], object]]] = [
                ("own", lambda: send_phase(server, server.own_rooms, args.messages, "own", None)),
                ("shared", lambda: send_phase(server, [server.shared_room] * args.clients, args.messages,
                                              "shared", None)),
                ("messages", lambda: [pagination_round(server, args.clients * args.messages, None)
                                      for _ in range(args.pagination_rounds)]),
            ]
            for name, work in phases:
                raw = args.out / f"{engine}-{name}.raw"
                print(f"recording {name} -> {raw}", file=sys.stderr)
                record(server.pid, raw, args.rate, work)
                print(f"\n## {engine}: {name}\n\n{summarise(raw, args.top)}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
