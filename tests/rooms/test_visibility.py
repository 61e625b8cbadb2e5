"""History visibility: who sees which events, judged by the state at each event."""

from __future__ import annotations

import pytest

from hearth.rooms.visibility import Facts, decide
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import (
    V3,
    all_messages,
    bodies,
    get_event,
    invite,
    join,
    leave,
    messages,
    set_visibility,
)


@pytest.mark.parametrize(
    ("visibility", "membership", "verdict"),
    [
        ("world_readable", None, True),
        ("world_readable", "leave", True),
        ("shared", "join", True),
        ("shared", None, None),
        ("shared", "invite", None),
        ("invited", "invite", True),
        ("invited", "join", True),
        ("invited", "leave", False),
        ("invited", None, False),
        ("joined", "join", True),
        ("joined", "invite", False),
        ("joined", None, False),
    ],
)
def test_rules(visibility: str, membership: str | None, verdict: bool | None) -> None:
    # None: only "shared, and the user joined later" could still allow it.
    assert decide(Facts(visibility, membership)) is verdict


async def test_shared_history_is_visible_after_joining_and_stops_at_leave(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")  # shared
    early = await client.send_message(alice, room_id, "before bob")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, "with bob")
    await leave(client, bob, room_id)
    late = await client.send_message(alice, room_id, "after bob")

    seen = await all_messages(client, bob, room_id)
    assert bodies(seen) == ["with bob", "before bob"]
    assert seen[0]["type"] == "m.room.member" and seen[0]["content"]["membership"] == "leave"
    await get_event(client, bob, room_id, early)
    assert (await get_event(client, bob, room_id, late, expect=404))["errcode"] == "M_NOT_FOUND"
    # Alice, joined throughout, sees everything.
    assert bodies(await all_messages(client, alice, room_id)) == ["after bob", "with bob", "before bob"]


async def test_joined_visibility_hides_history_before_the_join(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    before = await client.send_message(alice, room_id, "private past")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, "hello bob")

    seen = await all_messages(client, bob, room_id, limit=3)
    assert bodies(seen) == ["hello bob"]
    # Bob sees his own join, and the join is the oldest thing after the history he may not read,
    # apart from the room's very first events (sent while visibility was still the default "shared").
    own = [e for e in seen if e["type"] == "m.room.member" and e["state_key"] == bob_id]
    assert [e["content"]["membership"] for e in own] == ["join"]
    assert own[0]["unsigned"]["membership"] == "join"
    assert not any(e["type"] == "m.room.message" and e["event_id"] == before for e in seen)
    await get_event(client, bob, room_id, before, expect=404)


async def test_invited_visibility_starts_at_the_invite(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="private_chat")
    await set_visibility(client, alice, room_id, "invited")
    await client.send_message(alice, room_id, "before invite")
    await invite(client, alice, room_id, bob_id)
    await client.send_message(alice, room_id, "while invited")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, "joined")
    assert bodies(await all_messages(client, bob, room_id)) == ["joined", "while invited"]


async def test_world_readable_rooms_can_be_read_without_joining(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, carol = await client.user("carol")
    room_id = await client.create_room(alice, preset="public_chat", name="Lobby")
    await set_visibility(client, alice, room_id, "world_readable")
    public = await client.send_message(alice, room_id, "for everyone")

    assert bodies(await all_messages(client, carol, room_id)) == ["for everyone"]
    await get_event(client, carol, room_id, public)
    name = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.name/", token=carol)
    assert name == {"name": "Lobby"}

    # Closing the room: the change itself stays visible (the state before it allowed it),
    # what follows is not, and paging through the room is refused now.
    closing = await set_visibility(client, alice, room_id, "joined")
    secret = await client.send_message(alice, room_id, "members only")
    await messages(client, carol, room_id, expect=403)
    await get_event(client, carol, room_id, closing)
    await get_event(client, carol, room_id, public)
    await get_event(client, carol, room_id, secret, expect=404)
    await client.request("GET", f"{V3}/rooms/{room_id}/state", token=carol, expect=403)


async def test_visibility_change_events_are_visible_on_either_side(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    await client.send_message(alice, room_id, "hidden")
    opening = await set_visibility(client, alice, room_id, "world_readable")
    await client.send_message(alice, room_id, "open")
    closing = await set_visibility(client, alice, room_id, "joined")
    await client.send_message(alice, room_id, "hidden again")
    await join(client, bob, room_id)

    seen = await all_messages(client, bob, room_id)
    assert bodies(seen) == ["open"]
    ids = {e["event_id"] for e in seen}
    assert {opening, closing} <= ids  # joined -> world_readable and back: visible either way


async def test_never_member_of_a_shared_room_is_refused(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, eve = await client.user("eve")
    room_id = await client.create_room(alice, preset="public_chat")
    event_id = await client.send_message(alice, room_id, "x")
    assert (await messages(client, eve, room_id, expect=403))["errcode"] == "M_FORBIDDEN"
    await get_event(client, eve, room_id, event_id, expect=404)
    await client.request("GET", f"{V3}/rooms/{room_id}/state", token=eve, expect=403)
    await client.request("GET", f"{V3}/rooms/{room_id}/members", token=eve, expect=403)
    await client.request("GET", f"{V3}/rooms/{room_id}/context/{event_id}", token=eve, expect=403)


async def test_left_user_stops_seeing_new_events_but_rejoining_shows_shared_history(
    client: MatrixTestClient,
) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await leave(client, bob, room_id)
    gap = await client.send_message(alice, room_id, "while away")
    await get_event(client, bob, room_id, gap, expect=404)
    # Forwards pagination also stops at the leave.
    forwards = await all_messages(client, bob, room_id, dir="f")
    assert "while away" not in bodies(forwards)
    await join(client, bob, room_id)
    await get_event(client, bob, room_id, gap)  # shared: joined again after it


async def test_unsigned_membership_is_the_users_membership_at_each_event(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    before = await client.send_message(alice, room_id, "before")
    await join(client, bob, room_id)
    after = await client.send_message(alice, room_id, "after")
    assert (await get_event(client, bob, room_id, before))["unsigned"]["membership"] == "leave"
    assert (await get_event(client, bob, room_id, after))["unsigned"]["membership"] == "join"


async def test_filter_reuses_snapshot_facts(client: MatrixTestClient) -> None:
    """One snapshot serves many events: the visibility check reads each snapshot's keys once."""
    hs = client.hs
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    for i in range(20):
        await client.send_message(alice, room_id, f"m{i}")
    room = await hs.room_store.get(room_id)
    assert room is not None
    calls = 0
    original = hs.timeline_store.entries_at

    async def counting(*args: object, **kwargs: object) -> dict[int, dict[int, int]]:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    hs.timeline_store.entries_at = counting  # type: ignore[method-assign]
    async with hs.db.read() as conn:
        rows = await hs.timeline_store.page(
            conn, room.room_nid, after=None, upto=None, backwards=True, limit=20
        )
        events = await hs.event_store.by_nids(conn, [r.event_nid for r in rows])
        viewer = await hs.visibility.viewer(conn, room, "@alice:test.local")
        visible = await viewer.filter(conn, list(events.values()))
        again = await viewer.filter(conn, list(events.values()))
    assert len(visible) == len(again) == 20
    assert calls <= 1
