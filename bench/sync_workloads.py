"""The workloads of ``bench_sync.py``: what each sync measurement does on one server.

Each function drives one server through the Client-Server API only, so the
same code measures Hearth and Synapse. Setup (rooms, messages, users) goes
through the API too, concurrently across rooms, and is never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from harness import cpu_seconds, rss_bytes
from matrix_client import MatrixClient, Timed, timeline_bodies

T = TypeVar("T")

# The wake-latency client asks for the shared room's timeline only, as a
# client showing one conversation would; both servers get the same filter.
WAKE_FILTER: dict[str, Any] = {
    "room": {
        "timeline": {"limit": 10},
        "state": {"lazy_load_members": True},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
}
LONG_POLL_MS = 30_000
IDLE_POLL_MS = 300_000


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most `limit` in flight; results in job order."""
    sem = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()
    return list(await asyncio.gather(*(run(j) for j in jobs)))


def _session(limit: int) -> aiohttp.ClientSession:
    # No overall timeout: long-polls are meant to hang for minutes.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))


# --- wake latency --------------------------------------------------------------------


@dataclass
class WakeState:
    """User A long-polls the shared room, user B sends into it; carried across blocks."""

    reader: MatrixClient
    sender: MatrixClient
    room_id: str
    filter_id: str
    since: str
    sent: int = 0
    latencies_s: list[float] = field(default_factory=list)
    early_returns: int = 0   # a long-poll came back before B sent anything
    extra_polls: int = 0     # a response came without the message and A polled again
    server_cpu_s: float = 0.0


async def wake_setup(reader: MatrixClient, sender: MatrixClient) -> WakeState:
    room_id = await reader.create_room("public_chat", name="wake latency")
    await sender.join(room_id)
    filter_id = await reader.upload_filter(WAKE_FILTER)
    since = (await reader.sync(filter_id=filter_id)).body["next_batch"]
    return WakeState(reader, sender, room_id, filter_id, str(since))


async def wake_block(state: WakeState, count: int, gap_s: float, pid: int) -> None:
    """`count` messages from B, each timed from B's request to A's sync response holding it.

    A's long-poll is issued `gap_s` before B sends, so it is parked in the
    server when the message arrives: the time measured is the server waking a
    waiting request, not answering a fresh one.
    """
    async with _session(4) as a_session, _session(4) as b_session:
        reader, sender = state.reader.with_session(a_session), state.sender.with_session(b_session)

        def poll() -> asyncio.Task[Timed]:
            return asyncio.create_task(reader.sync(state.since, LONG_POLL_MS, state.filter_id))

        cpu0 = cpu_seconds(pid)
        pending = poll()
        try:
            for _ in range(count):
                await asyncio.sleep(gap_s)
                while pending.done():  # woken by something else: take it, wait again
                    state.since = pending.result().body["next_batch"]
                    state.early_returns += 1
                    pending = poll()
                    await asyncio.sleep(gap_s)
                marker = f"wake {state.sent}"
                state.sent += 1
                issued = time.perf_counter()
                send = asyncio.create_task(sender.send_text(state.room_id, marker))
                while True:
                    res = await pending
                    state.since = res.body["next_batch"]
                    pending = poll()  # re-issue at once, as a client does
                    if marker in timeline_bodies(res.body, state.room_id):
                        break
                    state.extra_polls += 1
                state.latencies_s.append(res.arrived_at - issued)
                await send
        finally:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await pending
        state.server_cpu_s += cpu_seconds(pid) - cpu0


# --- a user in many rooms: initial and incremental sync -------------------------------


@dataclass
class BigAccount:
    reader: MatrixClient
    writer: MatrixClient
    room_ids: list[str]


async def big_setup(reader: MatrixClient, writer: MatrixClient, rooms: int, messages: int,
                    concurrency: int, label: str) -> BigAccount:
    """`writer` creates `rooms` public rooms, `reader` joins each, `writer` sends `messages` into each."""
    done = 0
    started = time.perf_counter()

    async def one_room(k: int) -> str:
        nonlocal done
        room_id = await writer.create_room("public_chat", name=f"bench room {k}")
        await reader.join(room_id)
        for j in range(messages):
            await writer.send_text(room_id, f"message {j} of {messages} in room {k}: the quick brown fox "
                                            "jumps over the lazy dog")
        done += 1
        if done % max(1, rooms // 10) == 0:
            print(f"  {label}: {done}/{rooms} rooms filled ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
        return room_id

    room_ids = await bounded(concurrency, [functools.partial(one_room, k) for k in range(rooms)])
    return BigAccount(reader, writer, room_ids)


@dataclass
class SyncRun:
    seconds: float
    server_cpu_s: float
    bytes: int
    rooms: int


async def initial_sync_run(account: BigAccount, pid: int) -> SyncRun:
    """One initial sync (no since, default filter) from a freshly logged-in device.

    A new device per run is what a new login does, and it keeps a server's
    response cache (Synapse keys it by device) from answering a repeat.
    """
    device = await account.reader.login()
    cpu0 = cpu_seconds(pid)
    res = await device.sync()
    cpu = cpu_seconds(pid) - cpu0
    joined = len(res.body.get("rooms", {}).get("join", {}))
    if joined != len(account.room_ids):
        raise RuntimeError(f"initial sync returned {joined} joined rooms, expected {len(account.room_ids)}")
    return SyncRun(res.seconds, cpu, res.size, joined)


async def incremental_sync_run(account: BigAccount, since: str, n: int, pid: int) -> tuple[SyncRun, str]:
    """One message into one of the rooms, then a sync from the token before it."""
    marker = f"incremental {n}"
    await account.writer.send_text(account.room_ids[n % len(account.room_ids)], marker)
    cpu0 = cpu_seconds(pid)
    res = await account.reader.sync(since)
    cpu = cpu_seconds(pid) - cpu0
    if marker not in timeline_bodies(res.body):
        raise RuntimeError(f"incremental sync did not contain the new message: {res.body}")
    joined = len(res.body.get("rooms", {}).get("join", {}))
    return SyncRun(res.seconds, cpu, res.size, joined), str(res.body["next_batch"])


# --- many idle long-polls ------------------------------------------------------------


async def idle_setup(clients: list[MatrixClient], room_size: int, concurrency: int) -> None:
    """Put the users in rooms of `room_size` (the first of each group creates, the rest join)."""
    if room_size <= 1:
        return
    groups = [clients[i:i + room_size] for i in range(0, len(clients), room_size)]

    async def one_group(group: list[MatrixClient]) -> None:
        room_id = await group[0].create_room("public_chat")
        for member in group[1:]:
            await member.join(room_id)
    await bounded(concurrency, [functools.partial(one_group, g) for g in groups])


async def since_tokens(clients: list[MatrixClient], concurrency: int) -> list[str]:
    """Each user's initial sync (default filter), as a client does before it long-polls."""
    async def one(c: MatrixClient) -> str:
        return str((await c.sync()).body["next_batch"])
    return await bounded(concurrency, [functools.partial(one, c) for c in clients])


def established_connections(port: int) -> int:
    """Established TCP connections whose local end is `port` (the server's side), from /proc."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


@dataclass
class IdleResult:
    polls: int
    rss_before_bytes: int
    rss_samples_bytes: list[int]
    cpu_s: float
    seconds: float
    connections: int
    returns_in_window: int
    returns_while_settling: int
    settle_s: float
    park_cpu_s: float

    @property
    def rss_median_bytes(self) -> float:
        return statistics.median(self.rss_samples_bytes)


async def idle_long_polls(clients: list[MatrixClient], tokens: list[str], pid: int, port: int,
                          seconds: float, settle_s: float) -> IdleResult:
    """Park one long-poll per client, then watch the server's RSS and CPU while nothing happens.

    The polls are opened a few milliseconds apart, so the server's accept
    backlog never overflows (which would add SYN retries, not server cost).
    Settled means: every connection established, at least `settle_s` passed
    and no poll answered for 3 s (presence changes of room-mates coming online
    wake some once). A poll that returns is re-issued at once and counted.
    """
    rss_before = rss_bytes(pid)
    returns = 0
    last_return = time.perf_counter()

    async with _session(0) as session:
        async def hold(client: MatrixClient, since: str) -> None:
            nonlocal returns, last_return
            while True:
                res = await client.sync(since, IDLE_POLL_MS)
                since = str(res.body["next_batch"])
                returns += 1
                last_return = time.perf_counter()

        cpu0 = cpu_seconds(pid)
        started = time.perf_counter()
        tasks = []
        for c, t in zip(clients, tokens, strict=True):
            tasks.append(asyncio.create_task(hold(c.with_session(session), t)))
            await asyncio.sleep(0.002)
        try:
            while True:
                await asyncio.sleep(0.5)
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        raise RuntimeError("an idle long-poll failed") from task.exception()
                now = time.perf_counter()
                if (now - started >= settle_s and now - last_return >= 3.0
                        and established_connections(port) >= len(clients)):
                    break
                if now - started > settle_s + 120:
                    raise RuntimeError(f"idle long-polls did not settle: {established_connections(port)} "
                                       f"connections, {returns} returns")
            settled = time.perf_counter() - started
            park_cpu = cpu_seconds(pid) - cpu0
            settling_returns = returns
            samples = []
            cpu1, t1 = cpu_seconds(pid), time.perf_counter()
            while time.perf_counter() - t1 < seconds:
                await asyncio.sleep(1.0)
                samples.append(rss_bytes(pid))
            cpu2, t2 = cpu_seconds(pid), time.perf_counter()
            connections = established_connections(port)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return IdleResult(len(clients), rss_before, samples, cpu2 - cpu1, t2 - t1, connections,
                      returns - settling_returns, settling_returns, settled, park_cpu)
