"""GET /sync: initial, incremental, long-poll, rooms sections, tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.helpers.homeserver import MatrixTestClient

SYNC = "/_matrix/client/v3/sync"


async def sync(
    client: MatrixTestClient, token: str, since: str | None = None, **params: Any
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    path = SYNC + "?" + (f"since={since}&" if since else "") + query
    return await client.request("GET", path, token=token)  # type: ignore[no-any-return]


def timeline_bodies(room: dict[str, Any]) -> list[str]:
    return [e["content"].get("body") for e in room["timeline"]["events"] if e["type"] == "m.room.message"]


async def test_initial_sync_has_joined_room_with_state_and_timeline(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    room_id = await client.create_room(token, name="Room")
    await client.send_message(token, room_id, "hello")
    body = await sync(client, token)
    room = body["rooms"]["join"][room_id]
    assert timeline_bodies(room) == ["hello"]
    all_events = room["timeline"]["events"] + room["state"]["events"]
    types = {(e["type"], e.get("state_key")) for e in all_events}
    assert ("m.room.create", "") in types
    assert ("m.room.name", "") in types
    assert ("m.room.member", alice) in types
    assert room["summary"]["m.joined_member_count"] == 1
    assert body["next_batch"].startswith("s")
    for key in ("account_data", "presence", "to_device", "device_lists", "device_one_time_keys_count"):
        assert key in body


async def test_incremental_sync_returns_only_new_events(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    first = await sync(client, token)
    await client.send_message(token, room_id, "new")
    second = await sync(client, token, since=first["next_batch"])
    room = second["rooms"]["join"][room_id]
    assert timeline_bodies(room) == ["new"]
    assert room["timeline"]["limited"] is False
    assert room["state"]["events"] == []
    # Nothing new: no rooms at all.
    third = await sync(client, token, since=second["next_batch"])
    assert third["rooms"] == {}
    assert third["next_batch"] == second["next_batch"]


async def test_limited_timeline_and_prev_batch_paginates(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    first = await sync(client, token)
    for i in range(5):
        await client.send_message(token, room_id, f"m{i}")
    flt = json.dumps({"room": {"timeline": {"limit": 2}}})
    body = await sync(client, token, since=first["next_batch"], filter=flt)
    room = body["rooms"]["join"][room_id]
    assert timeline_bodies(room) == ["m3", "m4"]
    assert room["timeline"]["limited"] is True
    older = await client.request(
        "GET",
        f"/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=3&from={room['timeline']['prev_batch']}",
        token=token,
    )
    assert [e["content"]["body"] for e in older["chunk"]] == ["m2", "m1", "m0"]


async def test_invite_and_join_and_leave_sections(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, name="Secret")
    bob_first = await sync(client, bob)
    await client.request(
        "POST", f"/_matrix/client/v3/rooms/{room_id}/invite", token=alice, json={"user_id": bob_id}
    )
    invited = await sync(client, bob, since=bob_first["next_batch"])
    invite_state = invited["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {e["type"] for e in invite_state} >= {"m.room.create", "m.room.name", "m.room.member"}
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob, json={})
    joined = await sync(client, bob, since=invited["next_batch"])
    room = joined["rooms"]["join"][room_id]
    state_types = {e["type"] for e in room["state"]["events"] + room["timeline"]["events"]}
    assert "m.room.create" in state_types  # a newly joined room gets its full state
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/leave", token=bob, json={})
    left = await sync(client, bob, since=joined["next_batch"])
    assert room_id in left["rooms"]["leave"]
    assert room_id not in left["rooms"].get("join", {})


async def test_long_poll_wakes_on_new_message(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    first = await sync(client, token)
    poll = asyncio.create_task(sync(client, token, since=first["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await client.send_message(token, room_id, "wake up")
    body = await asyncio.wait_for(poll, 10)
    assert timeline_bodies(body["rooms"]["join"][room_id]) == ["wake up"]


async def test_long_poll_wakes_on_account_data(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    first = await sync(client, token)
    poll = asyncio.create_task(sync(client, token, since=first["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    await client.request(
        "PUT", f"/_matrix/client/v3/user/{alice}/account_data/org.example.x", token=token, json={"a": 1}
    )
    body = await asyncio.wait_for(poll, 10)
    assert body["account_data"]["events"] == [{"type": "org.example.x", "content": {"a": 1}}]


async def test_long_poll_not_woken_by_other_rooms(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    await client.create_room(alice)
    bob_room = await client.create_room(bob)
    first = await sync(client, alice)
    poll = asyncio.create_task(sync(client, alice, since=first["next_batch"], timeout=500))
    await client.send_message(bob, bob_room, "not for alice")
    body = await asyncio.wait_for(poll, 10)
    assert body["rooms"] == {}


async def test_bad_tokens_are_invalid_param(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    for since in ("garbage", "s1_2", "s999999_0_0_0_0_0_0"):
        body = await client.request("GET", f"{SYNC}?since={since}", token=token, expect=400)
        assert body["errcode"] == "M_INVALID_PARAM"


async def test_stored_and_inline_filters(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    room_id = await client.create_room(token)
    await client.send_message(token, room_id, "one")
    created = await client.request(
        "POST",
        f"/_matrix/client/v3/user/{alice}/filter",
        token=token,
        json={"room": {"timeline": {"types": ["m.room.message"]}}},
    )
    body = await sync(client, token, filter=created["filter_id"])
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert events and all(e["type"] == "m.room.message" for e in events)
    bad = await client.request("GET", f"{SYNC}?filter=%7Bnot-json", token=token, expect=400)
    assert bad["errcode"] == "M_INVALID_PARAM"


async def test_sync_requires_token(client: MatrixTestClient) -> None:
    body = await client.request("GET", SYNC, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


async def test_user_in_many_rooms_sees_membership_changes(client: MatrixTestClient) -> None:
    """The membership list is cached between syncs: leaving, invites and forgetting still show."""
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    count = 20
    rooms = [await client.create_room(alice, preset="public_chat") for _ in range(count)]
    for room_id in rooms:
        await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob, json={})
    first = await sync(client, bob)
    assert set(first["rooms"]["join"]) == set(rooms)
    quiet = await sync(client, bob, since=first["next_batch"])  # served from the cached list
    assert quiet["rooms"] == {}

    left, invited = rooms[0], await client.create_room(alice, name="New")
    await client.request("POST", f"/_matrix/client/v3/rooms/{left}/leave", token=bob, json={})
    await client.request(
        "POST", f"/_matrix/client/v3/rooms/{invited}/invite", token=alice, json={"user_id": bob_id}
    )
    changed = await sync(client, bob, since=quiet["next_batch"])
    assert left in changed["rooms"]["leave"]
    assert invited in changed["rooms"]["invite"]
    leave_filter = json.dumps({"room": {"include_leave": True}})
    assert left in (await sync(client, bob, filter=leave_filter))["rooms"]["leave"]

    await client.request("POST", f"/_matrix/client/v3/rooms/{left}/forget", token=bob, json={})
    after_forget = await sync(client, bob, filter=leave_filter)
    assert left not in after_forget["rooms"].get("leave", {})
    assert set(after_forget["rooms"]["join"]) == set(rooms[1:])


async def test_incremental_sync_shows_only_rooms_where_something_happened(client: MatrixTestClient) -> None:
    """An incremental sync walks only the touched rooms: new events, room account data, a new join."""
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    rooms = [await client.create_room(alice, preset="public_chat") for _ in range(8)]
    for room_id in rooms[:-1]:
        await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob, json={})
    since = (await sync(client, bob))["next_batch"]

    await client.send_message(alice, rooms[2], "news")
    await client.request(
        "PUT", f"/_matrix/client/v3/user/{bob_id}/rooms/{rooms[5]}/account_data/org.example.note",
        token=bob, json={"n": 1},
    )
    await client.request("POST", f"/_matrix/client/v3/rooms/{rooms[-1]}/join", token=bob, json={})
    body = await sync(client, bob, since=since)
    join = body["rooms"]["join"]
    assert set(join) == {rooms[2], rooms[5], rooms[-1]}
    assert [e["content"].get("body") for e in join[rooms[2]]["timeline"]["events"]] == ["news"]
    assert join[rooms[5]]["account_data"]["events"] == [{"type": "org.example.note", "content": {"n": 1}}]
    assert join[rooms[5]]["timeline"]["events"] == []
    # Newly joined: the full state.
    assert any(e["type"] == "m.room.create" for e in join[rooms[-1]]["state"]["events"])

    quiet = await sync(client, bob, since=body["next_batch"])
    assert quiet["rooms"] == {}
