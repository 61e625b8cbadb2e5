"""matrix-nio as the real client, with a record of what went over the wire.

When nio and Hearth disagree, an assertion shows the exact request nio sent and
the exact response it got (status and body), which is what the endpoint's owner
needs to fix it, rather than nio's summary of the failure.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import ClientResponse
from nio import AsyncClient, AsyncClientConfig, RegisterResponse

R = TypeVar("R")


@dataclass
class Exchange:
    method: str
    path: str
    request_body: str | None
    status: int
    response_body: str

    def __str__(self) -> str:
        return (f"nio sent: {self.method} {self.path}\n  body: {self.request_body}\n"
                f"got back: {self.status}\n  body: {self.response_body}")


class RecordingClient(AsyncClient):
    """An `AsyncClient` that keeps every request and response it exchanged."""

    def __init__(self, homeserver: str, user: str = "", device_id: str | None = "") -> None:
        # Fail fast: never retry or sleep on 429/timeouts inside a test.
        super().__init__(homeserver, user, device_id,
                         config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0,
                                                  request_timeout=60, store_sync_tokens=False))
        self.exchanges: list[Exchange] = []

    async def send(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None,
                   trace_context: Any = None, timeout: float | None = None) -> ClientResponse:
        resp = await super().send(method, path, data, headers, trace_context, timeout)
        body = await resp.read()  # aiohttp keeps it, so nio can still parse it
        self.exchanges.append(Exchange(
            method, path.split("?", 1)[0] + ("?..." if "?" in path else ""),
            data if isinstance(data, str) or data is None else repr(data),
            resp.status, body.decode(errors="replace"),
        ))
        return resp

    def last(self) -> str:
        return str(self.exchanges[-1]) if self.exchanges else "(nothing sent)"

    def expect(self, resp: object, cls: type[R]) -> R:
        """`resp` as `cls`, or an assertion showing the failing exchange."""
        assert isinstance(resp, cls), f"expected {cls.__name__}, nio returned {resp!r}\n{self.last()}"
        return resp

    async def raw(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """An authenticated request nio has no method for (e.g. account data)."""
        headers = {"Authorization": f"Bearer {self.access_token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        resp = await self.send(method, path, data, headers)
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


PASSWORD = "correct horse battery staple"
_names = itertools.count()


def unique_localpart(prefix: str) -> str:
    """A localpart no other test (or xdist worker) sharing the server uses."""
    return f"{prefix}{os.getpid()}_{next(_names)}"


class Clients:
    """Makes nio clients for a test and closes them all afterwards."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._clients: list[RecordingClient] = []

    def new(self, user: str = "") -> RecordingClient:
        client = RecordingClient(self.base_url, user)
        self._clients.append(client)
        return client

    async def registered(self, prefix: str, device_name: str = "nio e2e") -> RecordingClient:
        client = self.new()
        client.expect(await client.register(unique_localpart(prefix), PASSWORD, device_name=device_name),
                      RegisterResponse)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
