"""GET state, members, joined_members and single events."""

from __future__ import annotations

from typing import Any

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, get_event, invite, join, leave, messages, set_visibility


def by_type(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["type"], e["state_key"]): e for e in events}


async def test_full_state_for_members(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat", name="Room", topic="About")
    state = await client.request("GET", f"{V3}/rooms/{room_id}/state", token=alice)
    keyed = by_type(state)
    assert {("m.room.create", ""), ("m.room.member", alice_id), ("m.room.power_levels", ""),
            ("m.room.join_rules", ""), ("m.room.history_visibility", ""), ("m.room.name", ""),
            ("m.room.topic", "")} <= keyed.keys()
    assert keyed[("m.room.name", "")]["content"] == {"name": "Room"}
    assert all(e["room_id"] == room_id and "event_id" in e and "sender" in e for e in state)


async def test_single_state_event_content_and_event_formats(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat", name="Room")
    for path in ("m.room.name/", "m.room.name"):
        body = await client.request("GET", f"{V3}/rooms/{room_id}/state/{path}", token=alice)
        assert body == {"name": "Room"}
    full = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.name/?format=event", token=alice)
    assert full["type"] == "m.room.name" and full["state_key"] == "" and full["content"] == {"name": "Room"}
    await client.send_state(alice, room_id, "org.example.keyed", {"k": 1}, state_key="some key")
    path = f"{V3}/rooms/{room_id}/state/org.example.keyed/some%20key"
    body = await client.request("GET", path, token=alice)
    assert body == {"k": 1}
    resp = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.topic/", token=alice, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    await client.request("GET", f"{V3}/rooms/{room_id}/state/org.example.keyed/other", token=alice,
                         expect=404)
    resp = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.name/?format=xml", token=alice,
                                expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_left_user_sees_state_as_of_leaving(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat", name="Old")
    await join(client, bob, room_id)
    await leave(client, bob, room_id)
    await client.send_state(alice, room_id, "m.room.name", {"name": "New"})
    name_path = f"{V3}/rooms/{room_id}/state/m.room.name"
    assert await client.request("GET", name_path, token=bob) == {"name": "Old"}
    state = by_type(await client.request("GET", f"{V3}/rooms/{room_id}/state", token=bob))
    assert state[("m.room.name", "")]["content"] == {"name": "Old"}
    assert state[("m.room.member", bob_id)]["content"]["membership"] == "leave"
    members = await client.request("GET", f"{V3}/rooms/{room_id}/members", token=bob)
    assert {e["state_key"]: e["content"]["membership"] for e in members["chunk"]}[bob_id] == "leave"
    assert await client.request("GET", name_path, token=alice) == {"name": "New"}


async def test_outsiders_are_forbidden_unless_world_readable(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="private_chat", name="Secret")
    for path in ("state", "state/m.room.name", "members", "joined_members"):
        resp = await client.request("GET", f"{V3}/rooms/{room_id}/{path}", token=bob, expect=403)
        assert resp["errcode"] == "M_FORBIDDEN"
    # An invite alone does not show the state (clients get stripped state with the invite).
    await invite(client, alice, room_id, bob_id)
    await client.request("GET", f"{V3}/rooms/{room_id}/state", token=bob, expect=403)
    # Rejecting the invite does not either: bob was never in the room.
    await leave(client, bob, room_id)
    await client.request("GET", f"{V3}/rooms/{room_id}/state", token=bob, expect=403)
    await client.request("GET", f"{V3}/rooms/!unknown:test.local/state", token=bob, expect=403)
    await set_visibility(client, alice, room_id, "world_readable")
    name = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.name", token=bob)
    assert name == {"name": "Secret"}
    await client.request("GET", f"{V3}/rooms/{room_id}/members", token=bob)
    await client.request("GET", f"{V3}/rooms/{room_id}/joined_members", token=bob, expect=403)


async def test_members_filters(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, _ = await client.user("carol")
    dave_id, dave = await client.user("dave")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await invite(client, alice, room_id, carol_id)
    await join(client, dave, room_id)
    await leave(client, dave, room_id)

    async def members(query: str = "") -> dict[str, str]:
        body = await client.request("GET", f"{V3}/rooms/{room_id}/members{query}", token=alice)
        return {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}

    everyone = {alice_id: "join", bob_id: "join", carol_id: "invite", dave_id: "leave"}
    assert await members() == everyone
    assert await members("?membership=join") == {alice_id: "join", bob_id: "join"}
    assert await members("?not_membership=join") == {carol_id: "invite", dave_id: "leave"}
    # Both given: membership is X *or* is not Y.
    assert await members("?membership=invite&not_membership=join") == {carol_id: "invite", dave_id: "leave"}
    assert await members("?membership=join&not_membership=leave") == {
        alice_id: "join", bob_id: "join", carol_id: "invite"}
    resp = await client.request("GET", f"{V3}/rooms/{room_id}/members?membership=joined", token=alice,
                                expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_members_at_a_pagination_token(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await client.send_message(alice, room_id, "before bob")
    page = await messages(client, alice, room_id, limit=1)
    await join(client, bob, room_id)
    then = await client.request("GET", f"{V3}/rooms/{room_id}/members?at={page['start']}", token=alice)
    assert [e["state_key"] for e in then["chunk"]] == [alice_id]
    now = await client.request("GET", f"{V3}/rooms/{room_id}/members", token=alice)
    assert {e["state_key"] for e in now["chunk"]} == {alice_id, bob_id}
    resp = await client.request("GET", f"{V3}/rooms/{room_id}/members?at=garbage", token=alice, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_joined_members_profiles(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    await client.request("PUT", f"{V3}/profile/{bob_id}/avatar_url", token=bob,
                         json={"avatar_url": "mxc://test.local/bob"})
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    body = await client.request("GET", f"{V3}/rooms/{room_id}/joined_members", token=alice)
    # Profiles come from the member events (room creation does not put one in the creator's).
    assert set(body["joined"]) == {alice_id, bob_id}
    assert body["joined"][bob_id] == {"display_name": "bob", "avatar_url": "mxc://test.local/bob"}
    await leave(client, bob, room_id)
    await client.request("GET", f"{V3}/rooms/{room_id}/joined_members", token=bob, expect=403)
    body = await client.request("GET", f"{V3}/rooms/{room_id}/joined_members", token=alice)
    assert list(body["joined"]) == [alice_id]


async def test_get_single_event(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    event_id = await client.send_message(alice, room_id, "hello", txn_id="tx")
    body = await get_event(client, alice, room_id, event_id)
    assert body["event_id"] == event_id and body["room_id"] == room_id
    assert body["content"] == {"msgtype": "m.text", "body": "hello"}
    assert body["unsigned"]["transaction_id"] == "tx"
    assert (await get_event(client, alice, room_id, "$missing", expect=404))["errcode"] == "M_NOT_FOUND"
    await get_event(client, alice, "!unknown:test.local", event_id, expect=404)
    client.hs.clock.advance(1)  # type: ignore[attr-defined]  # v12 room IDs hash the create event
    other = await client.create_room(alice)
    await get_event(client, alice, other, event_id, expect=404)
    await client.request("GET", f"{V3}/rooms/bad/event/{event_id}", token=alice, expect=400)
