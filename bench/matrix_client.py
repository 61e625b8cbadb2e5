"""A thin Client-Server API client for the benchmarks: only what they need, timed.

Deliberately not matrix-nio: a benchmark client must add as little work of its
own as possible and must be able to say when the last byte of a response
arrived, before any JSON parsing, so the figure is the server's and the wire's
and not the client's decoder's.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

CS = "/_matrix/client/v3"
_txn_ids = itertools.count()


@dataclass
class Timed:
    """A response body with the times its request was issued and its last byte read."""

    body: dict[str, Any]
    issued_at: float
    arrived_at: float
    size: int

    @property
    def seconds(self) -> float:
        return self.arrived_at - self.issued_at


class MatrixClient:
    """One access token on one server, over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str, user_id: str = "") -> None:
        self.session = session
        self.base_url = base_url
        self.token = token
        self.user_id = user_id
        self._headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, base_url: str, token: str) -> MatrixClient:
        """A client whose user ID is asked of the server (whoami)."""
        client = cls(session, base_url, token)
        client.user_id = (await client.call("GET", "/account/whoami"))["user_id"]
        return client

    def with_session(self, session: aiohttp.ClientSession) -> MatrixClient:
        return MatrixClient(session, self.base_url, self.token, self.user_id)

    async def timed(self, method: str, path: str, body: Any = None,
                    query: dict[str, str] | None = None) -> Timed:
        url = self.base_url + CS + path
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers if data is None else {**self._headers, "Content-Type": "application/json"}
        issued = time.perf_counter()
        async with self.session.request(method, url, data=data, params=query, headers=headers) as resp:
            raw = await resp.read()
            arrived = time.perf_counter()
            if resp.status != 200:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {raw[:500]!r}")
        return Timed(json.loads(raw), issued, arrived, len(raw))

    async def call(self, method: str, path: str, body: Any = None,
                   query: dict[str, str] | None = None) -> dict[str, Any]:
        return (await self.timed(method, path, body, query)).body

    async def create_room(self, preset: str = "public_chat", name: str | None = None) -> str:
        body: dict[str, Any] = {"preset": preset}
        if name is not None:
            body["name"] = name
        return str((await self.call("POST", "/createRoom", body))["room_id"])

    async def join(self, room_id: str) -> None:
        await self.call("POST", f"/join/{urllib.parse.quote(room_id)}", {})

    async def send_text(self, room_id: str, text: str) -> str:
        txn = f"bench{time.time_ns()}.{next(_txn_ids)}"
        path = f"/rooms/{urllib.parse.quote(room_id)}/send/m.room.message/{txn}"
        return str((await self.call("PUT", path, {"msgtype": "m.text", "body": text}))["event_id"])

    async def upload_filter(self, flt: dict[str, Any]) -> str:
        path = f"/user/{urllib.parse.quote(self.user_id)}/filter"
        return str((await self.call("POST", path, flt))["filter_id"])

    async def sync(self, since: str | None = None, timeout_ms: int = 0,
                   filter_id: str | None = None) -> Timed:
        query = {"timeout": str(timeout_ms)}
        if since is not None:
            query["since"] = since
        if filter_id is not None:
            query["filter"] = filter_id
        return await self.timed("GET", "/sync", query=query)

    async def login(self, password: str = "bench password") -> MatrixClient:
        """A new device (and token) for this user: a fresh client, as after a new login."""
        body = {"type": "m.login.password", "password": password,
                "identifier": {"type": "m.id.user", "user": self.user_id}}
        data = await self.call("POST", "/login", body)
        return MatrixClient(self.session, self.base_url, data["access_token"], self.user_id)


def timeline_bodies(sync_body: dict[str, Any], room_id: str | None = None) -> list[str]:
    """The `body` of each timeline event in a /sync response (one room or all joined rooms)."""
    joined = sync_body.get("rooms", {}).get("join", {})
    rooms = [joined.get(room_id, {})] if room_id is not None else list(joined.values())
    events = [e for r in rooms for e in r.get("timeline", {}).get("events", [])]
    return [str(e.get("content", {}).get("body")) for e in events]
