"""An acknowledged send survives `kill -9`, on SQLite and on PostgreSQL.

A real `hearth serve` takes a concurrent burst of messages (several users,
devices, connections and rooms, each send with its own transaction id). The
moment the last of the first `ACKED_TARGET` sends is acknowledged, the server
gets SIGKILL, while the other sends are still on the wire. Started again on the
same database, it must have kept every acknowledged event exactly once with
its body, answer a retried transaction id with the event it acknowledged
before, and store each send that was cut off at most once however often it is
retried. A request whose body never finished arriving must leave no trace.

Which of the cut-off sends the server committed depends on timing; the
assertions hold whichever it was, so the test is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from tests.e2e.process import HearthProcess, free_port, make_config, start_hearth

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
USERS = 3
DEVICES_PER_USER = 2
CONNECTIONS_PER_DEVICE = 2
ROOMS = 4
SENDS_PER_CONNECTION = 20  # 240 sends in all
ACKED_TARGET = 200  # SIGKILL right after this many acknowledgements


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    token: str


@dataclass(frozen=True)
class Send:
    device: Device
    room_id: str
    txn_id: str
    body: str

    def path(self) -> str:
        return (f"/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}"
                f"/send/m.room.message/{quote(self.txn_id, safe='')}")

    def content(self) -> dict[str, str]:
        return {"msgtype": "m.text", "body": self.body}


@dataclass
class Burst:
    acked: dict[Send, str] = field(default_factory=dict)
    cut_off: list[Send] = field(default_factory=list)
    refused: list[tuple[Send, int, Any]] = field(default_factory=list)


class Api:
    """Plain HTTP to the server, one aiohttp session (own connection pool) per device."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, token: str) -> aiohttp.ClientSession:
        if token not in self._sessions:
            self._sessions[token] = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"} if token else {},
                connector=aiohttp.TCPConnector(limit=CONNECTIONS_PER_DEVICE),
            )
        return self._sessions[token]

    async def call(self, method: str, path: str, body: Any = None, *, token: str = "") -> tuple[int, Any]:
        async with self.session(token).request(method, self.base_url + path, json=body) as resp:
            text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    async def ok(self, method: str, path: str, body: Any = None, *, token: str = "") -> Any:
        status, got = await self.call(method, path, body, token=token)
        assert status == 200, f"{method} {path} -> {status} {got}"
        return got

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


@dataclass
class Deployment:
    config: Path
    root: Path
    base_url: str
    server: HearthProcess
    runs: int = 1

    def restart(self) -> None:
        """Start `hearth serve` again on the same config and database."""
        self.runs += 1
        cwd = self.root / f"run{self.runs}"
        cwd.mkdir()
        self.server = start_hearth(["serve", "--config", str(self.config)], cwd=cwd, base_url=self.base_url)


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    port = free_port()
    config = make_config(tmp_path / "data", port=port, database_url=database_url)
    (tmp_path / "run1").mkdir()
    base_url = f"http://127.0.0.1:{port}"
    server = start_hearth(["serve", "--config", str(config)], cwd=tmp_path / "run1", base_url=base_url)
    made = Deployment(config, tmp_path, base_url, server)
    yield made
    made.server.kill()


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[Api]:
    made = Api(deployment.base_url)
    yield made
    await made.close()


async def _register(api: Api, localpart: str) -> Device:
    """Register through the dummy-auth flow (first the 401 with a session, then the real request)."""
    status, challenge = await api.call("POST", "/_matrix/client/v3/register",
                                       {"username": localpart, "password": PASSWORD})
    assert status == 401 and "session" in challenge, challenge
    got = await api.ok("POST", "/_matrix/client/v3/register", {
        "username": localpart, "password": PASSWORD,
        "auth": {"type": "m.login.dummy", "session": challenge["session"]}})
    return Device(got["user_id"], got["device_id"], got["access_token"])


async def _login(api: Api, user_id: str) -> Device:
    got = await api.ok("POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
        "password": PASSWORD})
    return Device(got["user_id"], got["device_id"], got["access_token"])


async def _setup(api: Api) -> tuple[list[Device], list[str]]:
    """Users with several devices each, all joined to the same public rooms."""
    devices: list[Device] = []
    for u in range(USERS):
        first = await _register(api, f"burst{u}")
        devices.append(first)
        for _ in range(DEVICES_PER_USER - 1):
            devices.append(await _login(api, first.user_id))
    owner = devices[0]
    rooms = []
    for r in range(ROOMS):
        created = await api.ok("POST", "/_matrix/client/v3/createRoom",
                               {"preset": "public_chat", "name": f"burst {r}"}, token=owner.token)
        rooms.append(created["room_id"])
    for device in devices[DEVICES_PER_USER::DEVICES_PER_USER]:
        for room_id in rooms:
            await api.ok("POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", {}, token=device.token)
    return devices, rooms


def _plan(devices: list[Device], rooms: list[str]) -> list[list[Send]]:
    """The sends of each connection: distinct txn ids and bodies, spread over every room."""
    plans = []
    for d, device in enumerate(devices):
        for c in range(CONNECTIONS_PER_DEVICE):
            plans.append([
                Send(device, rooms[(d + c + i) % len(rooms)], f"burst-{d}-{c}-{i}", f"burst d{d} c{c} #{i}")
                for i in range(SENDS_PER_CONNECTION)
            ])
    return plans


async def _burst(api: Api, server: HearthProcess, plans: list[list[Send]]) -> Burst:
    """Run every connection's sends at once; SIGKILL the server at the ACKED_TARGET-th 200."""
    burst = Burst()

    async def connection(plan: list[Send]) -> None:
        for send in plan:
            try:
                status, got = await api.call("PUT", send.path(), send.content(), token=send.device.token)
            except (aiohttp.ClientError, OSError):
                # The server died with this send in flight (or before it could connect).
                burst.cut_off.append(send)
                continue
            if status != 200:
                burst.refused.append((send, status, got))
                continue
            burst.acked[send] = got["event_id"]
            if len(burst.acked) == ACKED_TARGET:
                server.proc.kill()  # synchronous: nothing else runs in between

    await asyncio.gather(*(connection(plan) for plan in plans))
    return burst


def _start_partial_send(base_url: str, device: Device, room_id: str, txn_id: str) -> socket.socket:
    """A send whose headers and part of its body reach the server, the rest never does."""
    host, port = base_url.removeprefix("http://").split(":")
    body = json.dumps({"msgtype": "m.text", "body": "partial body that never fully arrives"}).encode()
    path = (f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/"
            f"{quote(txn_id, safe='')}")
    head = (f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {device.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head + body[: len(body) // 2])
    return sock


async def _all_messages(api: Api, token: str, room_id: str) -> list[dict[str, Any]]:
    """Every m.room.message in the room, oldest first, paged forwards from the start."""
    events: list[dict[str, Any]] = []
    query: dict[str, str] = {"dir": "f", "limit": "50"}
    while True:
        page = await api.ok("GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages?"
                            + urlencode(query), token=token)
        events.extend(e for e in page["chunk"] if e["type"] == "m.room.message")
        if "end" not in page:
            return events
        assert page["chunk"], page
        query["from"] = page["end"]


async def _room_contents(api: Api, token: str, rooms: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {room_id: await _all_messages(api, token, room_id) for room_id in rooms}


def _check_acknowledged_kept(contents: dict[str, list[dict[str, Any]]], burst: Burst,
                             plans: list[list[Send]]) -> None:
    """Every acknowledged send is there exactly once, in its room, with its sender and body."""
    by_id = {e["event_id"]: (room_id, e) for room_id, events in contents.items() for e in events}
    all_ids = [e["event_id"] for events in contents.values() for e in events]
    assert len(all_ids) == len(set(all_ids)), "an event is listed twice"
    for send, event_id in burst.acked.items():
        assert event_id in by_id, f"acknowledged {send.txn_id} ({event_id}) is lost"
        room_id, event = by_id[event_id]
        assert (room_id, event["sender"]) == (send.room_id, send.device.user_id)
        assert event["content"] == send.content()
    bodies = Counter(e["content"].get("body") for events in contents.values() for e in events)
    assert {body: n for body, n in bodies.items() if n > 1} == {}
    # Nothing appears that nobody sent: the half-received request left nothing.
    assert set(bodies) <= {send.body for plan in plans for send in plan}


async def _retry(api: Api, send: Send) -> str:
    got = await api.ok("PUT", send.path(), send.content(), token=send.device.token)
    event_id: str = got["event_id"]
    return event_id


async def test_acknowledged_sends_survive_sigkill(deployment: Deployment, api: Api) -> None:
    devices, rooms = await _setup(api)
    plans = _plan(devices, rooms)
    partial = _start_partial_send(deployment.base_url, devices[-1], rooms[0], "partial-1")
    try:
        burst = await _burst(api, deployment.server, plans)
        assert deployment.server.proc.wait() == -9, "the server was not killed by the test's SIGKILL"
    finally:
        partial.close()
    assert burst.refused == [], burst.refused[:3]
    assert len(burst.acked) >= ACKED_TARGET
    # Every send was either acknowledged or cut off by the kill.
    assert len(burst.acked) + len(burst.cut_off) == sum(len(plan) for plan in plans)
    await api.close()  # its pooled connections point at the dead process

    deployment.restart()
    reader = devices[0].token
    _check_acknowledged_kept(await _room_contents(api, reader, rooms), burst, plans)

    # Retrying an acknowledged txn id gives back the same event and stores nothing new.
    for send, event_id in burst.acked.items():
        assert await _retry(api, send) == event_id, f"retry of {send.txn_id} made a new event"
    # Retrying a cut-off send stores it if the server had not, and only once either way.
    retried = {}
    for send in burst.cut_off:
        retried[send] = await _retry(api, send)
        assert await _retry(api, send) == retried[send]

    # Every room is writable, and the partial send's txn id is free for a real send.
    new_sends: dict[str, list[str]] = {}
    for i, room_id in enumerate(rooms):
        fresh = Send(devices[i], room_id, "after-restart", f"after restart {i}")
        new_sends[room_id] = [await _retry(api, fresh)]
    new_sends[rooms[0]].append(
        await _retry(api, Send(devices[-1], rooms[0], "partial-1", "partial, sent in full")))

    after = await _room_contents(api, reader, rooms)
    for room_id, events in after.items():
        ids = [e["event_id"] for e in events]
        assert len(ids) == len(set(ids))
        expected = {event_id for send, event_id in [*burst.acked.items(), *retried.items()]
                    if send.room_id == room_id}
        # What was sent after the restart comes last, in order.
        assert ids[-len(new_sends[room_id]):] == new_sends[room_id]
        assert set(ids) == expected | set(new_sends[room_id])
    # Exactly once per send, whichever way it got there.
    final_bodies = Counter(e["content"]["body"] for events in after.values() for e in events)
    assert final_bodies == Counter(
        [send.body for plan in plans for send in plan]
        + [f"after restart {i}" for i in range(ROOMS)] + ["partial, sent in full"])

    assert deployment.server.stop() == 0
