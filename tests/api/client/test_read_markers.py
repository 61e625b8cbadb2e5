"""POST /rooms/{roomId}/read_markers: the fully read marker and receipts in one call."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers.homeserver import MatrixTestClient

SYNC = "/_matrix/client/v3/sync"


async def sync(
    client: MatrixTestClient, token: str, since: str | None = None, **params: Any
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.request(  # type: ignore[no-any-return]
        "GET", SYNC + "?" + (f"since={since}&" if since else "") + query, token=token
    )


async def markers(client: MatrixTestClient, token: str, room_id: str, body: Any, expect: int = 200) -> Any:
    return await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/read_markers", token=token,
                                json=body, expect=expect)


async def fully_read(client: MatrixTestClient, user_id: str, token: str, room_id: str) -> Any:
    url = f"/_matrix/client/v3/user/{user_id}/rooms/{room_id}/account_data/m.fully_read"
    return await client.request("GET", url, token=token, expect=None)


def room_account_data(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"].get("join", {}).get(room_id)
    return room["account_data"]["events"] if room else []


def receipts(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"].get("join", {}).get(room_id)
    return [e for e in room["ephemeral"]["events"] if e["type"] == "m.receipt"] if room else []


async def shared_room(client: MatrixTestClient) -> tuple[str, tuple[str, str], tuple[str, str]]:
    alice = await client.user("alice")
    bob = await client.user("bob")
    room_id = await client.create_room(alice[1], preset="public_chat")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob[1], json={})
    return room_id, alice, bob


async def test_fully_read_is_room_account_data_in_sync(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    mark = await sync(client, alice_token)
    await markers(client, alice_token, room_id, {"m.fully_read": event_id})
    assert await fully_read(client, alice, alice_token, room_id) == {"event_id": event_id}
    body = await sync(client, alice_token, since=mark["next_batch"])
    assert room_account_data(body, room_id) == [{"type": "m.fully_read", "content": {"event_id": event_id}}]
    # Only the user's own account data: room-mates see nothing of it.
    bob_body = await sync(client, bob_token)
    assert room_account_data(bob_body, room_id) == []


async def test_long_poll_wakes_on_fully_read(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    mark = await sync(client, alice_token)
    poll = asyncio.create_task(sync(client, alice_token, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await markers(client, alice_token, room_id, {"m.fully_read": event_id})
    body = await asyncio.wait_for(poll, 10)
    assert room_account_data(body, room_id)[0]["type"] == "m.fully_read"


async def test_receipts_set_with_the_marker(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    first = await client.send_message(bob_token, room_id, "one")
    second = await client.send_message(bob_token, room_id, "two")
    bob_mark = await sync(client, bob_token)
    await markers(client, alice_token, room_id,
                  {"m.fully_read": first, "m.read": first, "m.read.private": second})
    seen_by_bob = receipts(await sync(client, bob_token, since=bob_mark["next_batch"]), room_id)
    assert seen_by_bob == [{"type": "m.receipt", "content": {
        first: {"m.read": {alice: {"ts": client.hs.clock.time_ms()}}}}}]
    own = receipts(await sync(client, alice_token), room_id)
    content = own[0]["content"]
    assert alice in content[first]["m.read"]
    assert alice in content[second]["m.read.private"]


async def test_fully_read_never_moves_backwards(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    first = await client.send_message(bob_token, room_id, "one")
    second = await client.send_message(bob_token, room_id, "two")
    await markers(client, alice_token, room_id, {"m.fully_read": second})
    mark = await sync(client, alice_token)
    await markers(client, alice_token, room_id, {"m.fully_read": first})
    assert await fully_read(client, alice, alice_token, room_id) == {"event_id": second}
    assert room_account_data(await sync(client, alice_token, since=mark["next_batch"]), room_id) == []


async def test_fully_read_cannot_be_set_as_account_data(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), _ = await shared_room(client)
    url = f"/_matrix/client/v3/user/{alice}/rooms/{room_id}/account_data/m.fully_read"
    err = await client.request("PUT", url, token=alice_token, json={"event_id": "$x"}, expect=405)
    assert err["errcode"] == "M_BAD_JSON"


async def test_empty_body_changes_nothing(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), _ = await shared_room(client)
    assert await markers(client, alice_token, room_id, {}) == {}
    assert (await fully_read(client, alice, alice_token, room_id))["errcode"] == "M_NOT_FOUND"


async def test_read_marker_errors(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    event_id = await client.send_message(bob_token, room_id, "hi")
    other_room = await client.create_room(carol_token)
    foreign = await client.send_message(carol_token, other_room, "elsewhere")

    async def error(token: str, body: Any, status: int, room: str = room_id) -> str:
        return (await markers(client, token, room, body, expect=status))["errcode"]  # type: ignore[no-any-return]

    assert await error(carol_token, {"m.fully_read": event_id}, 403) == "M_FORBIDDEN"
    assert await error(alice_token, {"m.fully_read": "$missing"}, 404) == "M_NOT_FOUND"
    assert await error(alice_token, {"m.read": foreign}, 404) == "M_NOT_FOUND"
    assert await error(alice_token, {"m.fully_read": 5}, 400) == "M_BAD_JSON"
    assert await error(alice_token, {"m.read.private": "no-sigil"}, 400) == "M_INVALID_PARAM"
    assert await error(alice_token, {"m.fully_read": event_id}, 400, room="bad") == "M_INVALID_PARAM"
    # A failing part fails the whole request: the valid marker was not stored.
    assert await error(alice_token, {"m.fully_read": event_id, "m.read": "$missing"}, 404) == "M_NOT_FOUND"
    assert (await fully_read(client, alice, alice_token, room_id))["errcode"] == "M_NOT_FOUND"
    assert receipts(await sync(client, bob_token), room_id) == []
