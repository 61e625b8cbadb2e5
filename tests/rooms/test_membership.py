"""MembershipService: restricted-join authorisers, third-party invites, idempotent repeats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from hearth.core.events import Event
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.errors import MatrixError
from hearth.homeserver import Homeserver
from hearth.rooms.create import RoomSpec
from hearth.rooms.membership import ThirdPartySigned
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import SERVER_NAME

ALICE = f"@alice:{SERVER_NAME}"
BOB = f"@bob:{SERVER_NAME}"
CAROL = f"@carol:{SERVER_NAME}"
DAVE = f"@dave:{SERVER_NAME}"
ERIN = f"@erin:{SERVER_NAME}"


@pytest.fixture
async def users(hs: Homeserver) -> None:
    for user_id in (ALICE, BOB, CAROL, DAVE, ERIN):
        await hs.users.create(user_id, None, created_ts=0, displayname=user_id[1:].split(":")[0])


async def make_room(hs: Homeserver, fake_clock: FakeClock, preset: str = "public_chat", version: str = "10",
                    **kw: Any) -> str:
    fake_clock.advance(1)  # v12 room IDs hash the create event, timestamp included
    spec = RoomSpec(creator=ALICE, room_version=KNOWN_ROOM_VERSIONS[version], preset=preset, **kw)
    return await hs.room_creator.create(spec)


async def event(hs: Homeserver, event_id: str) -> Event:
    async with hs.db.read() as conn:
        return (await hs.event_store.by_ids(conn, [event_id]))[event_id].event


async def member_event_id(hs: Homeserver, room_id: str, user_id: str) -> str | None:
    room = await hs.room_store.get(room_id)
    assert room is not None
    current = await hs.room_store.membership(room.room_nid, user_id)
    if current is None:
        return None
    async with hs.db.read() as conn:
        return (await hs.event_store.by_nids(conn, [current[1]]))[current[1]].event_id


async def restricted_room(hs: Homeserver, fake_clock: FakeClock, *, version: str = "10",
                          power: dict[str, Any] | None = None) -> tuple[str, str]:
    """(space, room): joining `room` is allowed to members of the public `space`."""
    space = await make_room(hs, fake_clock, version=version)
    room_id = await make_room(hs, fake_clock, preset="private_chat", version=version,
                              power_level_override=power)
    await hs.room_sender.send(room_id, ALICE, "m.room.join_rules", {
        "join_rule": "restricted",
        "allow": ["junk", {"type": "m.other", "room_id": space},
                  {"type": "m.room_membership", "room_id": space}],
    }, state_key="")
    return space, room_id


async def authoriser_of(hs: Homeserver, event_id: str) -> str | None:
    return (await event(hs, event_id)).content.get("join_authorised_via_users_server")


# --- restricted joins ---------------------------------------------------------------------


@pytest.mark.usefixtures("users")
async def test_authoriser_is_the_strongest_joined_local(hs: Homeserver, fake_clock: FakeClock) -> None:
    power = {"invite": 50, "users": {ALICE: 100, CAROL: 60, DAVE: 80, "@x:elsewhere.example": 100}}
    space, room_id = await restricted_room(hs, fake_clock, power=power)
    for user in (BOB, CAROL, ERIN):
        await hs.membership.join(user, space)
    await hs.membership.invite(ALICE, room_id, CAROL)
    await hs.membership.join(CAROL, room_id)  # invited: no authoriser needed
    carol_join = await member_event_id(hs, room_id, CAROL)
    assert carol_join is not None
    assert await authoriser_of(hs, carol_join) is None

    join = await hs.membership.join(BOB, room_id)
    assert await authoriser_of(hs, join) == ALICE  # DAVE has more power than CAROL but is not joined

    await hs.membership.leave(ALICE, room_id)
    join = await hs.membership.join(ERIN, room_id)
    assert await authoriser_of(hs, join) == CAROL


@pytest.mark.usefixtures("users")
async def test_authoriser_from_users_default(hs: Homeserver, fake_clock: FakeClock) -> None:
    # private_chat: invite level 0, so any member may vouch once the creator is gone.
    space, room_id = await restricted_room(hs, fake_clock)
    await hs.membership.join(BOB, space)
    await hs.membership.join(CAROL, space)
    assert await authoriser_of(hs, await hs.membership.join(BOB, room_id)) == ALICE
    await hs.membership.leave(ALICE, room_id)
    assert await authoriser_of(hs, await hs.membership.join(CAROL, room_id)) == BOB


@pytest.mark.usefixtures("users")
async def test_v12_creator_authorises(hs: Homeserver, fake_clock: FakeClock) -> None:
    space, room_id = await restricted_room(hs, fake_clock, version="12", power={"invite": 100})
    await hs.membership.join(BOB, space)
    assert await authoriser_of(hs, await hs.membership.join(BOB, room_id)) == ALICE


@pytest.mark.usefixtures("users")
async def test_restricted_join_refused_without_an_authoriser(hs: Homeserver, fake_clock: FakeClock) -> None:
    space, room_id = await restricted_room(hs, fake_clock, power={"invite": 100})
    await hs.membership.join(BOB, space)
    await hs.membership.join(CAROL, space)
    await hs.membership.join(BOB, room_id)
    await hs.membership.leave(ALICE, room_id)
    with pytest.raises(MatrixError) as err:
        await hs.membership.join(CAROL, room_id)
    assert (err.value.status, err.value.errcode) == (403, "M_FORBIDDEN")


@pytest.mark.usefixtures("users")
async def test_restricted_join_needs_an_allowed_room(hs: Homeserver, fake_clock: FakeClock) -> None:
    space, room_id = await restricted_room(hs, fake_clock)
    for membership_change in ("none", "invited", "left"):
        if membership_change == "invited":
            await hs.membership.invite(ALICE, space, BOB)
        elif membership_change == "left":
            await hs.membership.join(BOB, space)
            await hs.membership.leave(BOB, space)
        with pytest.raises(MatrixError) as err:
            await hs.membership.join(BOB, room_id)
        assert err.value.errcode == "M_FORBIDDEN"
    assert await member_event_id(hs, room_id, BOB) is None


# --- third-party invites -----------------------------------------------------------------


async def third_party_room(hs: Homeserver, fake_clock: FakeClock) -> tuple[str, Any]:
    room_id = await make_room(hs, fake_clock, preset="private_chat")
    key = generate_signing_key("0")
    await hs.room_sender.send(room_id, ALICE, "m.room.third_party_invite", {
        "display_name": "b...@example.org",
        "key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
        "public_key": encode_verify_key_base64(get_verify_key(key)),
    }, state_key="tok")
    return room_id, key


def signed_for(key: Any, mxid: str, *, sender: str = ALICE, token: str = "tok") -> ThirdPartySigned:
    signed = sign_json({"mxid": mxid, "sender": sender, "token": token, "extra": 1}, "id.example", key)
    return ThirdPartySigned(sender, mxid, token, signed)


@pytest.mark.usefixtures("users")
async def test_join_with_third_party_signed(hs: Homeserver, fake_clock: FakeClock) -> None:
    room_id, key = await third_party_room(hs, fake_clock)
    join_id = await hs.membership.join(BOB, room_id, third_party_signed=signed_for(key, BOB))
    join = await event(hs, join_id)
    assert join.membership == "join"
    invite = await event(hs, join.prev_event_ids[0])
    assert (invite.sender, invite.state_key, invite.membership) == (ALICE, BOB, "invite")
    assert invite.content["third_party_invite"]["display_name"] == "b...@example.org"
    assert invite.content["third_party_invite"]["signed"]["mxid"] == BOB


@pytest.mark.usefixtures("users")
async def test_third_party_signed_must_match(hs: Homeserver, fake_clock: FakeClock) -> None:
    room_id, key = await third_party_room(hs, fake_clock)
    other_key = generate_signing_key("0")
    bad = [
        signed_for(other_key, BOB),  # signature by a key the invite does not list
        signed_for(key, CAROL),  # proof for someone else
        signed_for(key, BOB, token="other"),  # no such invite
        signed_for(key, BOB, sender=CAROL),  # not who sent the invite
    ]
    for signed in bad:
        with pytest.raises(MatrixError) as err:
            await hs.membership.join(BOB, room_id, third_party_signed=signed)
        assert err.value.errcode == "M_FORBIDDEN"
    assert await member_event_id(hs, room_id, BOB) is None


# --- repeats, races, profiles -------------------------------------------------------------------


@pytest.mark.usefixtures("users")
async def test_repeats_return_the_current_event(hs: Homeserver, fake_clock: FakeClock) -> None:
    room_id = await make_room(hs, fake_clock)
    first = await hs.membership.join(BOB, room_id)
    assert await hs.membership.join(BOB, room_id) == first
    await hs.profiles.set_field(BOB, BOB, "displayname", "Robert")
    renamed = await hs.membership.join(BOB, room_id)
    assert renamed != first
    assert (await event(hs, renamed)).content["displayname"] == "Robert"

    ban = await hs.membership.ban(ALICE, room_id, CAROL, reason="spam")
    assert await hs.membership.ban(ALICE, room_id, CAROL, reason="spam") == ban
    assert await hs.membership.ban(ALICE, room_id, CAROL) != ban

    await hs.membership.leave(BOB, room_id)
    assert await hs.membership.leave(BOB, room_id) is None


@pytest.mark.usefixtures("users")
async def test_concurrent_joins_send_one_event(hs: Homeserver, fake_clock: FakeClock) -> None:
    room_id = await make_room(hs, fake_clock)
    first, second = await asyncio.gather(hs.membership.join(BOB, room_id), hs.membership.join(BOB, room_id))
    assert first == second
    assert await hs.membership.joined_rooms(BOB) == [room_id]


@pytest.mark.usefixtures("users")
async def test_invite_carries_local_invitee_profile_only(hs: Homeserver, fake_clock: FakeClock) -> None:
    room_id = await make_room(hs, fake_clock, preset="private_chat")
    invite = await event(hs, await hs.membership.invite(ALICE, room_id, CAROL, reason="hi"))
    assert dict(invite.content) == {"membership": "invite", "displayname": "carol", "reason": "hi"}
    remote = await event(hs, await hs.membership.invite(ALICE, room_id, "@z:elsewhere.example"))
    assert dict(remote.content) == {"membership": "invite"}
    await hs.deactivation.deactivate(ERIN, erase=False)
    with pytest.raises(MatrixError) as err:
        await hs.membership.invite(ALICE, room_id, ERIN)
    assert err.value.errcode == "M_NOT_FOUND"


@pytest.mark.usefixtures("users")
async def test_forget_only_hides_left_rooms(hs: Homeserver, fake_clock: FakeClock) -> None:
    kept = await make_room(hs, fake_clock)
    gone = await make_room(hs, fake_clock)
    banned = await make_room(hs, fake_clock)
    for room_id in (kept, gone, banned):
        await hs.membership.join(BOB, room_id)
    await hs.membership.leave(BOB, kept)
    await hs.membership.leave(BOB, gone)
    await hs.membership.ban(ALICE, banned, BOB)
    await hs.membership.forget(BOB, gone)
    await hs.membership.forget(BOB, banned)
    assert await hs.room_store.rooms_for_user(BOB, "leave") == [kept]
    assert await hs.room_store.rooms_for_user(BOB, "ban") == []
    assert await hs.room_store.rooms_for_user(ALICE) == sorted([kept, gone, banned])


@pytest.mark.usefixtures("users")
async def test_propagate_profile(hs: Homeserver, fake_clock: FakeClock) -> None:
    first = await make_room(hs, fake_clock)
    second = await make_room(hs, fake_clock)
    left = await make_room(hs, fake_clock)
    for room_id in (first, second, left):
        await hs.membership.join(BOB, room_id, reason="hi")
    await hs.membership.leave(BOB, left)
    assert await hs.membership.propagate_profile(BOB) != []  # the reason is dropped
    assert await hs.membership.propagate_profile(BOB) == []  # nothing changed since

    # A profile change propagates by itself; calling again finds nothing to do.
    before_left = await member_event_id(hs, left, BOB)
    await hs.profiles.set_field(BOB, BOB, "avatar_url", "mxc://test.local/new")
    assert await hs.membership.propagate_profile(BOB) == []
    for room_id in (first, second):
        event_id = await member_event_id(hs, room_id, BOB)
        assert event_id is not None
        assert dict((await event(hs, event_id)).content) == {
            "membership": "join", "displayname": "bob", "avatar_url": "mxc://test.local/new",
        }
    assert await hs.membership.joined_rooms(BOB) == sorted([first, second])
    assert await member_event_id(hs, left, BOB) == before_left


@pytest.mark.usefixtures("users")
async def test_propagate_profile_skips_rooms_that_fail(
    hs: Homeserver, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One room refuses the event (a Matrix error), another breaks (a bug):
    # the profile change stands and the other rooms still get the news.
    rooms = [await make_room(hs, fake_clock) for _ in range(4)]
    for room_id in rooms:
        await hs.membership.join(BOB, room_id)
    real_send = hs.room_sender.send_locked

    async def send_locked(room: Any, *args: Any, **kwargs: Any) -> Any:
        if room.room_id == rooms[1]:
            raise MatrixError(403, "M_FORBIDDEN", "refused")
        if room.room_id == rooms[2]:
            raise RuntimeError("disk on fire")
        return await real_send(room, *args, **kwargs)

    monkeypatch.setattr(hs.room_sender, "send_locked", send_locked)
    await hs.profiles.set_field(BOB, BOB, "displayname", "Bobby")
    assert (await hs.profiles.get(BOB)).displayname == "Bobby"
    names = []
    for room_id in rooms:
        event_id = await member_event_id(hs, room_id, BOB)
        assert event_id is not None
        names.append((await event(hs, event_id)).content["displayname"])
    assert names == ["Bobby", "bob", "bob", "Bobby"]
