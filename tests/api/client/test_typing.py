"""PUT /rooms/{roomId}/typing/{userId} and m.typing in /sync."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from hearth.sync.token import SyncToken
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

SYNC = "/_matrix/client/v3/sync"


async def sync(
    client: MatrixTestClient, token: str, since: str | None = None, **params: Any
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.request(  # type: ignore[no-any-return]
        "GET", SYNC + "?" + (f"since={since}&" if since else "") + query, token=token
    )


async def set_typing(client: MatrixTestClient, token: str, room_id: str, user_id: str, body: Any,
                     expect: int = 200) -> Any:
    return await client.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/typing/{user_id}",
                                token=token, json=body, expect=expect)


def typing_in(body: dict[str, Any], room_id: str) -> list[list[str]]:
    """The user_ids of each m.typing event for the room (none: the room had no typing news)."""
    room = body["rooms"].get("join", {}).get(room_id)
    if room is None:
        return []
    return [e["content"]["user_ids"] for e in room["ephemeral"]["events"] if e["type"] == "m.typing"]


async def shared_room(client: MatrixTestClient) -> tuple[str, tuple[str, str], tuple[str, str]]:
    alice = await client.user("alice")
    bob = await client.user("bob")
    room_id = await client.create_room(alice[1], preset="public_chat")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob[1], json={})
    return room_id, alice, bob


async def test_typing_appears_and_stops(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (bob, bob_token) = await shared_room(client)
    mark = await sync(client, bob_token)
    await set_typing(client, alice_token, room_id, alice, {"typing": True, "timeout": 30000})
    await set_typing(client, bob_token, room_id, bob, {"typing": True})
    started = await sync(client, bob_token, since=mark["next_batch"])
    assert typing_in(started, room_id) == [[alice, bob]]
    assert typing_in(await sync(client, bob_token), room_id) == [[alice, bob]]
    # Typing again only extends the notice: nothing new to tell.
    await set_typing(client, alice_token, room_id, alice, {"typing": True, "timeout": 30000})
    assert typing_in(await sync(client, bob_token, since=started["next_batch"]), room_id) == []
    await set_typing(client, alice_token, room_id, alice, {"typing": False})
    stopped = await sync(client, bob_token, since=started["next_batch"])
    assert typing_in(stopped, room_id) == [[bob]]
    await set_typing(client, bob_token, room_id, bob, {"typing": False})
    assert typing_in(await sync(client, bob_token, since=stopped["next_batch"]), room_id) == [[]]
    # Stopping when not typing changes nothing.
    await set_typing(client, bob_token, room_id, bob, {"typing": False})
    assert typing_in(await sync(client, bob_token), room_id) == []


async def test_typing_expires_on_the_clock(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await set_typing(client, alice_token, room_id, alice, {"typing": True, "timeout": 10000})
    mark = await sync(client, bob_token)
    assert typing_in(mark, room_id) == [[alice]]
    fake_clock.advance(9999)
    assert typing_in(await sync(client, bob_token, since=mark["next_batch"]), room_id) == []
    fake_clock.advance(1)
    assert typing_in(await sync(client, bob_token, since=mark["next_batch"]), room_id) == [[]]
    assert typing_in(await sync(client, bob_token), room_id) == []


async def test_timeout_is_capped(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await set_typing(client, alice_token, room_id, alice, {"typing": True, "timeout": 10**9})
    fake_clock.advance(120_000)
    assert typing_in(await sync(client, bob_token), room_id) == []


async def test_long_poll_wakes_on_typing(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    mark = await sync(client, bob_token)
    poll = asyncio.create_task(sync(client, bob_token, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await set_typing(client, alice_token, room_id, alice, {"typing": True, "timeout": 5000})
    body = await asyncio.wait_for(poll, 10)
    assert typing_in(body, room_id) == [[alice]]


async def test_strangers_and_left_users_see_no_typing(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/leave", token=bob_token, json={})
    carol_mark = await sync(client, carol_token)
    await set_typing(client, alice_token, room_id, alice, {"typing": True})
    assert typing_in(await sync(client, bob_token), room_id) == []
    assert typing_in(await sync(client, carol_token, since=carol_mark["next_batch"]), room_id) == []


async def test_unknown_typing_position_gets_every_room(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    quiet_room = await client.create_room(bob_token)
    await set_typing(client, alice_token, room_id, alice, {"typing": True})
    current = SyncToken.parse((await sync(client, bob_token))["next_batch"])
    # From an earlier process (below this one's first position) or beyond the current one.
    for typing in (0, current.typing + 1000):
        body = await sync(client, bob_token, since=str(replace(current, typing=typing)))
        assert typing_in(body, room_id) == [[alice]]
        assert typing_in(body, quiet_room) == [[]]
        assert SyncToken.parse(body["next_batch"]).typing == current.typing


async def test_ephemeral_filter_can_leave_typing_out(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await set_typing(client, alice_token, room_id, alice, {"typing": True})
    flt = json.dumps({"room": {"ephemeral": {"types": ["m.receipt"]}}})
    assert typing_in(await sync(client, bob_token, filter=flt), room_id) == []
    flt = json.dumps({"room": {"ephemeral": {"not_rooms": [room_id]}}})
    assert typing_in(await sync(client, bob_token, filter=flt), room_id) == []


async def test_typing_errors(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (bob, _) = await shared_room(client)
    carol, carol_token = await client.user("carol")

    async def error(token: str, user_id: str, body: Any, status: int, room: str = room_id) -> str:
        return (await set_typing(client, token, room, user_id, body, expect=status))["errcode"]  # type: ignore[no-any-return]

    assert await error(alice_token, bob, {"typing": True}, 403) == "M_FORBIDDEN"
    assert await error(carol_token, carol, {"typing": True}, 403) == "M_FORBIDDEN"
    assert await error(carol_token, carol, {"typing": True}, 403, room="!unknown:test.local") == "M_FORBIDDEN"
    assert await error(alice_token, alice, {}, 400) == "M_MISSING_PARAM"
    assert await error(alice_token, alice, {"typing": "yes"}, 400) == "M_BAD_JSON"
    assert await error(alice_token, alice, {"typing": True, "timeout": "1000"}, 400) == "M_BAD_JSON"
    assert await error(alice_token, alice, {"typing": True}, 400, room="nope") == "M_INVALID_PARAM"
    await client.request("PUT", f"/_matrix/client/r0/rooms/{room_id}/typing/{alice}", token=alice_token,
                         json={"typing": False})
