"""GET /rooms/{roomId}/context/{eventId}."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, bodies, join, messages, set_visibility


async def context(client: MatrixTestClient, token: str, room_id: str, event_id: str, *, expect: int = 200,
                  filter: dict[str, Any] | None = None, **params: Any) -> Any:
    query = dict(params)
    if filter is not None:
        query["filter"] = json.dumps(filter)
    suffix = f"?{urlencode(query)}" if query else ""
    return await client.request("GET", f"{V3}/rooms/{room_id}/context/{event_id}{suffix}", token=token,
                                expect=expect)


async def setup(client: MatrixTestClient, count: int = 9) -> tuple[str, str, list[str]]:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat", name="ctx")
    ids = [await client.send_message(alice, room_id, f"m{i}") for i in range(count)]
    return alice, room_id, ids


async def test_events_around_the_event(client: MatrixTestClient) -> None:
    alice, room_id, ids = await setup(client)
    body = await context(client, alice, room_id, ids[4], limit=4)
    assert body["event"]["event_id"] == ids[4]
    assert bodies(body["events_before"]) == ["m3", "m2"]  # reverse-chronological
    assert bodies(body["events_after"]) == ["m5", "m6"]  # chronological
    state_types = {e["type"] for e in body["state"]}
    assert {"m.room.create", "m.room.member", "m.room.name", "m.room.power_levels"} <= state_types
    # The tokens continue the timeline on either side with /messages.
    older = await messages(client, alice, room_id, limit=2, **{"from": body["start"]})
    assert bodies(older["chunk"]) == ["m1", "m0"]
    newer = await messages(client, alice, room_id, dir="f", limit=2, **{"from": body["end"]})
    assert bodies(newer["chunk"]) == ["m7", "m8"]


async def test_default_limit_and_limit_zero(client: MatrixTestClient) -> None:
    alice, room_id, ids = await setup(client, 14)
    body = await context(client, alice, room_id, ids[7])
    assert len(body["events_before"]) == 5 and len(body["events_after"]) == 5
    body = await context(client, alice, room_id, ids[7], limit=0)
    assert body["event"]["event_id"] == ids[7]
    assert body["events_before"] == [] and body["events_after"] == []
    newer = await messages(client, alice, room_id, dir="f", limit=1, **{"from": body["end"]})
    assert bodies(newer["chunk"]) == ["m8"]


async def test_state_is_at_the_last_event_returned(client: MatrixTestClient) -> None:
    alice, room_id, ids = await setup(client, 2)
    await client.send_state(alice, room_id, "m.room.name", {"name": "renamed"})
    await client.send_message(alice, room_id, "after rename")

    def names(body: Any) -> list[str]:
        return [e["content"]["name"] for e in body["state"] if e["type"] == "m.room.name"]

    one_after = await context(client, alice, room_id, ids[0], limit=2)  # after: m1
    assert bodies(one_after["events_after"]) == ["m1"]
    assert names(one_after) == ["ctx"]
    two_after = await context(client, alice, room_id, ids[0], limit=4)  # after: m1, the rename
    assert two_after["events_after"][-1]["type"] == "m.room.name"
    assert names(two_after) == ["renamed"]
    assert names(await context(client, alice, room_id, ids[0], limit=0)) == ["ctx"]


async def test_filter_applies_to_neighbours_and_state_not_the_event(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    _, carol = await client.user("carol")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await client.send_message(alice, room_id, "a0")
    await client.send_message(bob, room_id, "b0")
    target = await client.send_state(alice, room_id, "m.room.topic", {"topic": "t"})
    await client.send_message(bob, room_id, "b1")
    flt = {"types": ["m.room.message"], "senders": [bob_id]}
    body = await context(client, alice, room_id, target, limit=4, filter=flt)
    assert body["event"]["event_id"] == target
    assert bodies(body["events_before"]) == ["b0"]
    assert bodies(body["events_after"]) == ["b1"]
    assert body["state"] == []  # no state event is an m.room.message from bob
    lazy = await context(client, alice, room_id, target, limit=4,
                         filter={"lazy_load_members": True, "types": ["m.room.message", "m.room.member"]})
    members = {e["state_key"] for e in lazy["state"] if e["type"] == "m.room.member"}
    assert members == {alice_id, bob_id}  # carol sent nothing shown


async def test_unknown_or_invisible_events_are_not_found(client: MatrixTestClient) -> None:
    alice, room_id, ids = await setup(client, 1)
    _, bob = await client.user("bob")
    resp = await context(client, alice, room_id, "$nope", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    await context(client, alice, "!unknown:test.local", ids[0], expect=404)
    # An event of another room is not found in this one.
    client.hs.clock.advance(1)  # type: ignore[attr-defined]  # v12 room IDs hash the create event
    other = await client.create_room(alice)
    await context(client, alice, other, ids[0], expect=404)
    # Joined later in a "joined" room: earlier events are not there for bob.
    await set_visibility(client, alice, room_id, "joined")
    hidden = await client.send_message(alice, room_id, "hidden")
    await join(client, bob, room_id)
    await context(client, bob, room_id, hidden, expect=404)
    await context(client, bob, room_id, ids[0], limit=-1, expect=400)


async def test_context_does_not_show_events_after_leaving(client: MatrixTestClient) -> None:
    alice, room_id, ids = await setup(client, 2)
    _, bob = await client.user("bob")
    await join(client, bob, room_id)
    await client.request("POST", f"{V3}/rooms/{room_id}/leave", token=bob, json={})
    await client.send_message(alice, room_id, "after bob left")
    body = await context(client, bob, room_id, ids[1], limit=10)
    assert "after bob left" not in bodies(body["events_after"])
    assert body["events_after"][-1]["type"] == "m.room.member"
