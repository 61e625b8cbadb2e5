"""Shortcuts for tests that read rooms: membership changes and paging through history."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.helpers.homeserver import MatrixTestClient

V3 = "/_matrix/client/v3"


async def join(client: MatrixTestClient, token: str, room_id: str) -> None:
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=token, json={})


async def leave(client: MatrixTestClient, token: str, room_id: str) -> None:
    await client.request("POST", f"{V3}/rooms/{room_id}/leave", token=token, json={})


async def invite(client: MatrixTestClient, token: str, room_id: str, user_id: str) -> None:
    await client.request("POST", f"{V3}/rooms/{room_id}/invite", token=token, json={"user_id": user_id})


async def set_visibility(client: MatrixTestClient, token: str, room_id: str, value: str) -> str:
    return await client.send_state(token, room_id, "m.room.history_visibility", {"history_visibility": value})


async def messages(
    client: MatrixTestClient,
    token: str,
    room_id: str,
    *,
    dir: str = "b",
    expect: int = 200,
    filter: dict[str, Any] | None = None,
    **params: Any,
) -> Any:
    query: dict[str, Any] = {"dir": dir, **{k: v for k, v in params.items() if v is not None}}
    if filter is not None:
        query["filter"] = json.dumps(filter)
    return await client.request(
        "GET", f"{V3}/rooms/{room_id}/messages?{urlencode(query)}", token=token, expect=expect
    )


async def all_messages(
    client: MatrixTestClient, token: str, room_id: str, *, dir: str = "b", limit: int = 10, **params: Any
) -> list[dict[str, Any]]:
    """Every event /messages hands out, following `end` until it is gone."""
    out: list[dict[str, Any]] = []
    token_from = params.pop("from_", None)
    for _ in range(10_000):
        body = await messages(client, token, room_id, dir=dir, limit=limit, **{"from": token_from}, **params)
        out.extend(body["chunk"])
        if "end" not in body:
            return out
        token_from = body["end"]
    raise AssertionError("pagination did not end")


def bodies(events: list[dict[str, Any]]) -> list[str]:
    """The message bodies of the m.room.message events, in order."""
    return [e["content"].get("body", "") for e in events if e["type"] == "m.room.message"]


async def get_event(
    client: MatrixTestClient, token: str, room_id: str, event_id: str, expect: int = 200
) -> Any:
    return await client.request("GET", f"{V3}/rooms/{room_id}/event/{event_id}", token=token, expect=expect)
