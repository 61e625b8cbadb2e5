"""POST /createRoom."""

from __future__ import annotations

import asyncio

import pytest

from hearth.core.events import Event
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient


async def room_state(client: MatrixTestClient, room_id: str) -> dict[tuple[str, str], dict[str, object]]:
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    async with client.hs.db.read() as conn:
        nids = await client.hs.state_store.current_event_nids(conn, room.room_nid)
        keys = await client.hs.state_store.keys_for_nids(conn, nids)
        evs = await client.hs.event_store.by_nids(conn, nids.values())
    return {keys[k]: dict(evs[e].event.content) for k, e in nids.items()}


async def _create_event(client: MatrixTestClient, room_id: str) -> Event:
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    async with client.hs.db.read() as conn:
        nids = await client.hs.state_store.current_event_nids(conn, room.room_nid)
        keys = await client.hs.state_store.keys_for_nids(conn, nids)
        create_nid = next(e for k, e in nids.items() if keys[k] == ("m.room.create", ""))
        evs = await client.hs.event_store.by_nids(conn, [create_nid])
    return evs[create_nid].event


async def test_create_room_defaults_to_v12_private(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    room_id = await client.create_room(token)
    state = await room_state(client, room_id)
    assert state[("m.room.create", "")]["room_version"] == "12"
    assert state[("m.room.join_rules", "")] == {"join_rule": "invite"}
    assert state[("m.room.history_visibility", "")] == {"history_visibility": "shared"}
    # The creator's join carries their profile (registration sets the localpart as name).
    assert state[("m.room.member", alice)] == {"membership": "join", "displayname": "alice"}
    # v12: the creator has infinite power and is not listed in users.
    assert alice not in state[("m.room.power_levels", "")]["users"]  # type: ignore[operator]


async def test_public_preset_name_topic_and_initial_state(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(
        token,
        preset="public_chat",
        name="Pub",
        topic="Drinks",
        initial_state=[{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}],
    )
    state = await room_state(client, room_id)
    assert state[("m.room.join_rules", "")] == {"join_rule": "public"}
    assert state[("m.room.name", "")] == {"name": "Pub"}
    assert state[("m.room.topic", "")] == {
        "topic": "Drinks",
        "m.topic": {"m.text": [{"mimetype": "text/plain", "body": "Drinks"}]},
    }
    # initial_state overrides the preset's guest access.
    assert state[("m.room.guest_access", "")] == {"guest_access": "can_join"}


async def test_older_room_version_lists_creator_in_power_levels(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    room_id = await client.create_room(token, room_version="10", power_level_content_override={"ban": 75})
    state = await room_state(client, room_id)
    assert state[("m.room.create", "")]["creator"] == alice
    pl = state[("m.room.power_levels", "")]
    assert pl["users"] == {alice: 100}
    assert pl["ban"] == 75


async def test_invitees_get_invites(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    bob, _ = await client.user("bob")
    room_id = await client.create_room(token, invite=[bob], is_direct=True, preset="trusted_private_chat")
    state = await room_state(client, room_id)
    assert state[("m.room.member", bob)] == {"membership": "invite", "is_direct": True}
    assert bob in state[("m.room.create", "")]["additional_creators"]  # type: ignore[operator]


async def test_unsupported_room_version(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    body = await client.request(
        "POST", "/_matrix/client/v3/createRoom", token=token, json={"room_version": "999"}, expect=400
    )
    assert body["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"preset": "party"}, "M_BAD_JSON"),
        ({"invite": ["not-a-user"]}, "M_INVALID_PARAM"),
        ({"name": 5}, "M_BAD_JSON"),
        ({"initial_state": [{"type": "m.room.create", "content": {}}]}, "M_INVALID_ROOM_STATE"),
        ({"power_level_content_override": {"users_default": "lots"}}, "M_INVALID_ROOM_STATE"),
        ({"power_level_content_override": {"users": {"@x:test.local": 1.5}}}, "M_INVALID_ROOM_STATE"),
    ],
)
async def test_bad_requests(client: MatrixTestClient, body: dict[str, object], errcode: str) -> None:
    _, token = await client.user("alice")
    resp = await client.request("POST", "/_matrix/client/v3/createRoom", token=token, json=body, expect=400)
    assert resp["errcode"] == errcode


async def test_requires_auth(client: MatrixTestClient) -> None:
    resp = await client.request("POST", "/_matrix/client/v3/createRoom", json={}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"


async def test_identical_v12_rooms_in_the_same_millisecond_are_distinct(
    client: MatrixTestClient, fake_clock: FakeClock,
) -> None:
    # v12 room IDs are the create event's reference hash; with the clock frozen
    # two identical requests would build the same create event.
    alice, token = await client.user("alice")
    first = await client.create_room(token, name="Same")
    second = await client.create_room(token, name="Same")
    third, fourth = await asyncio.gather(client.create_room(token, name="Same"),
                                         client.create_room(token, name="Same"))
    room_ids = [first, second, third, fourth]
    assert len(set(room_ids)) == 4
    for room_id in room_ids:
        create = await _create_event(client, room_id)
        # Still a valid v12 create event: no room_id of its own, and the room ID
        # is its event ID with the other sigil.
        assert "room_id" not in create.pdu
        assert room_id == "!" + create.event_id[1:]
        assert create.content == {"room_version": "12"}
        assert abs(create.origin_server_ts - fake_clock.time_ms()) < 1000
        state = await room_state(client, room_id)
        assert state[("m.room.member", alice)]["membership"] == "join"
        assert state[("m.room.name", "")] == {"name": "Same"}
        await client.send_message(token, room_id, "still works")


async def test_identical_v12_rooms_beyond_the_retry_bound_are_rate_limited(
    client: MatrixTestClient, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("hearth.rooms.create._CLAIM_ATTEMPTS", 2)
    _, token = await client.user("alice")
    await client.create_room(token)
    await client.create_room(token)
    body = await client.request("POST", "/_matrix/client/v3/createRoom", token=token, json={}, expect=429)
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    # Nothing half-made: a later millisecond creates the room normally.
    fake_clock.advance(1)
    await client.create_room(token)


async def test_creator_join_carries_current_profile(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    profile = f"/_matrix/client/v3/profile/{alice}"
    await client.request("PUT", f"{profile}/displayname", token=token, json={"displayname": "Alice A."})
    await client.request("PUT", f"{profile}/avatar_url", token=token,
                         json={"avatar_url": "mxc://test.local/alice"})
    room_id = await client.create_room(token, room_version="10")
    member = await client.request(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.member/{alice}", token=token)
    assert member == {"membership": "join", "displayname": "Alice A.", "avatar_url": "mxc://test.local/alice"}
    joined = await client.request("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members", token=token)
    assert joined["joined"][alice] == {"display_name": "Alice A.", "avatar_url": "mxc://test.local/alice"}


async def test_creator_join_without_profile_fields_has_only_membership(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    await client.request("PUT", f"/_matrix/client/v3/profile/{alice}/displayname", token=token,
                         json={"displayname": ""})
    room_id = await client.create_room(token)
    state = await room_state(client, room_id)
    assert state[("m.room.member", alice)] == {"membership": "join"}


async def test_topic_event_from_create_room_matches_the_schema(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token, topic="Plans for **today**")
    topic = await client.request(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.topic/", token=token)
    # m.room.topic.yaml: `topic` plus the v1.15 TopicContentBlock (`m.text` list).
    assert topic == {
        "topic": "Plans for **today**",
        "m.topic": {"m.text": [{"mimetype": "text/plain", "body": "Plans for **today**"}]},
    }
    summary = await client.request("GET", f"/_matrix/client/v1/room_summary/{room_id}", token=token)
    assert summary["topic"] == "Plans for **today**"
