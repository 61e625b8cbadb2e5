"""Membership endpoints: join, knock, invite, leave, forget, kick, ban, unban, joined_rooms."""

from __future__ import annotations

from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from sqlalchemy import insert, select

from hearth.storage.tables import room_aliases, room_members, rooms
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V3 = "/_matrix/client/v3"


def room_path(room_id: str, action: str) -> str:
    return f"{V3}/rooms/{room_id}/{action}"


async def member_event(client: MatrixTestClient, room_id: str, user_id: str) -> tuple[str, dict[str, Any]]:
    """(sender, content) of the user's current m.room.member event."""
    hs = client.hs
    room = await hs.room_store.get(room_id)
    assert room is not None
    current = await hs.room_store.membership(room.room_nid, user_id)
    assert current is not None, f"{user_id} has no membership in {room_id}"
    async with hs.db.read() as conn:
        stored = (await hs.event_store.by_nids(conn, [current[1]]))[current[1]]
    return stored.event.sender, dict(stored.event.content)


async def membership(client: MatrixTestClient, room_id: str, user_id: str) -> str | None:
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    current = await client.hs.room_store.membership(room.room_nid, user_id)
    return current[0] if current else None


async def joined_rooms(client: MatrixTestClient, token: str) -> list[str]:
    body = await client.request("GET", f"{V3}/joined_rooms", token=token)
    return body["joined_rooms"]  # type: ignore[no-any-return]


async def post(client: MatrixTestClient, room_id: str, action: str, token: str,
               body: dict[str, Any] | None = None, expect: int = 200) -> Any:
    return await client.request("POST", room_path(room_id, action), token=token,
                                json=body if body is not None else {}, expect=expect)


async def add_alias(client: MatrixTestClient, alias: str, room_id: str, creator: str) -> None:
    async with client.hs.db.write() as conn:
        await conn.execute(insert(room_aliases).values(alias=alias, room_id=room_id, creator=creator,
                                                        created_ts=0))


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom, a millisecond apart: v12 room IDs hash the create event, timestamp included."""
    clock = client.hs.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1)
    return await client.create_room(token, **body)


# --- join ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "10", "12"])
async def test_join_public_room_then_leave_and_rejoin(client: MatrixTestClient, version: str) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat", room_version=version)

    body = await post(client, room_id, "join", bob, {"reason": "hello"})
    assert body == {"room_id": room_id}
    assert await joined_rooms(client, bob) == [room_id]
    sender, content = await member_event(client, room_id, bob_id)
    assert sender == bob_id
    assert content == {"membership": "join", "displayname": "bob", "reason": "hello"}

    assert await post(client, room_id, "leave", bob, {"reason": "bye"}) == {}
    assert await joined_rooms(client, bob) == []
    assert (await member_event(client, room_id, bob_id))[1] == {"membership": "leave", "reason": "bye"}

    await post(client, room_id, "join", bob)
    assert await joined_rooms(client, bob) == [room_id]
    await client.send_message(bob, room_id, "back again")


async def test_join_carries_current_profile(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    await client.request("PUT", f"{V3}/profile/{bob_id}/displayname", token=bob,
                         json={"displayname": "Bobby"})
    await client.request("PUT", f"{V3}/profile/{bob_id}/avatar_url", token=bob,
                         json={"avatar_url": "mxc://test.local/abc"})
    await post(client, room_id, "join", bob)
    _, content = await member_event(client, room_id, bob_id)
    assert content == {"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://test.local/abc"}


async def test_join_twice_is_idempotent(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    await post(client, room_id, "join", bob)
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    first = await client.hs.room_store.membership(room.room_nid, bob_id)
    await post(client, room_id, "join", bob)
    assert await client.hs.room_store.membership(room.room_nid, bob_id) == first


async def test_join_accepts_an_empty_body(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    await client.request("POST", room_path(room_id, "join"), token=bob, data=b"")
    assert await joined_rooms(client, bob) == [room_id]
    await client.request("POST", room_path(room_id, "leave"), token=bob, data=b"")
    assert await joined_rooms(client, bob) == []


@pytest.mark.parametrize("version", ["1", "10", "12"])
async def test_invite_only_room_needs_an_invite(client: MatrixTestClient, version: str) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat", room_version=version)

    body = await post(client, room_id, "join", bob, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert await membership(client, room_id, bob_id) is None

    assert await post(client, room_id, "invite", alice, {"user_id": bob_id, "reason": "join us"}) == {}
    sender, content = await member_event(client, room_id, bob_id)
    assert sender == alice_id
    assert content == {"membership": "invite", "displayname": "bob", "reason": "join us"}

    await post(client, room_id, "join", bob)
    assert await membership(client, room_id, bob_id) == "join"
    assert await joined_rooms(client, bob) == [room_id]


async def test_join_by_alias_and_by_room_id(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    _, bob = await client.user("bob")
    _, carol = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    alias = f"#lobby:{SERVER_NAME}"
    await add_alias(client, alias, room_id, alice_id)

    body = await client.request("POST", f"{V3}/join/{alias.replace('#', '%23')}", token=bob, json={})
    assert body == {"room_id": room_id}
    body = await client.request("POST", f"/_matrix/client/r0/join/{room_id}?via=elsewhere.example",
                                token=carol, json={})
    assert body == {"room_id": room_id}
    assert await joined_rooms(client, bob) == await joined_rooms(client, carol) == [room_id]


async def test_join_unknown_alias_or_room(client: MatrixTestClient) -> None:
    _, bob = await client.user("bob")
    for target in (f"%23nowhere:{SERVER_NAME}", "%23remote:elsewhere.example", "!unknown:elsewhere.example"):
        body = await client.request("POST", f"{V3}/join/{target}", token=bob, json={}, expect=404)
        assert body["errcode"] == "M_NOT_FOUND"
    body = await post(client, f"!unknown:{SERVER_NAME}", "join", bob, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    for bad in ("%23no-domain", "nonsense"):
        body = await client.request("POST", f"{V3}/join/{bad}", token=bob, json={}, expect=400)
        assert body["errcode"] == "M_INVALID_PARAM"


async def test_join_body_errors(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    body = await client.request("POST", room_path(room_id, "join"), token=bob, data=b"{nope", expect=400)
    assert body["errcode"] == "M_NOT_JSON"
    body = await post(client, room_id, "join", bob, {"reason": 5}, expect=400)
    assert body["errcode"] == "M_BAD_JSON"
    body = await post(client, room_id, "join", bob, {"third_party_signed": {"token": "x"}}, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"
    body = await client.request("POST", room_path("not-a-room", "join"), token=bob, json={}, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("POST", room_path(room_id, "join"), json={}, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
    assert await joined_rooms(client, bob) == []


async def test_join_with_third_party_signed(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat")
    key = generate_signing_key("0")
    await client.send_state(alice, room_id, "m.room.third_party_invite", {
        "display_name": "b...@example.org",
        "key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
        "public_key": encode_verify_key_base64(get_verify_key(key)),
    }, state_key="tok")
    # The identity server may sign fields we do not know; they must reach the event intact.
    signed = sign_json({"mxid": bob_id, "sender": alice_id, "token": "tok", "ts": 1}, "id.example", key)
    body = {"third_party_signed": {**signed, "mxid": "@eve:test.local"}}
    assert (await post(client, room_id, "join", bob, body, expect=403))["errcode"] == "M_FORBIDDEN"
    await post(client, room_id, "join", bob, {"third_party_signed": signed})
    assert await joined_rooms(client, bob) == [room_id]


# --- invite ----------------------------------------------------------------------


async def test_invite_then_reject(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat")
    await post(client, room_id, "invite", alice, {"user_id": bob_id})
    await post(client, room_id, "leave", bob, {"reason": "no thanks"})
    sender, content = await member_event(client, room_id, bob_id)
    assert (sender, content) == (bob_id, {"membership": "leave", "reason": "no thanks"})
    assert await joined_rooms(client, bob) == []
    # A rejected invite is spent: joining needs a new one.
    assert (await post(client, room_id, "join", bob, expect=403))["errcode"] == "M_FORBIDDEN"


async def test_invite_errors(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    _, carol = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    await post(client, room_id, "join", bob)

    # Already a member.
    assert (await post(client, room_id, "invite", alice, {"user_id": bob_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    # The inviter is not in the room; the room is unknown.
    dave = f"@dave:{SERVER_NAME}"
    await client.user("dave")
    assert (await post(client, room_id, "invite", carol, {"user_id": dave}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    body = await post(client, f"!nope:{SERVER_NAME}", "invite", alice, {"user_id": dave}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    # Power: public_chat needs 50 to invite; bob has 0.
    assert (await post(client, room_id, "invite", bob, {"user_id": dave}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    # A local user who does not exist.
    body = await post(client, room_id, "invite", alice, {"user_id": f"@ghost:{SERVER_NAME}"}, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    # Body problems.
    assert (await post(client, room_id, "invite", alice, {"user_id": "bob"}, expect=400))["errcode"] == \
        "M_INVALID_PARAM"
    assert (await post(client, room_id, "invite", alice, {}, expect=400))["errcode"] == "M_MISSING_PARAM"
    assert (await post(client, room_id, "invite", alice, {"user_id": 7}, expect=400))["errcode"] == \
        "M_BAD_JSON"
    body = await client.request("POST", room_path(room_id, "invite"), token=alice, data=b"", expect=400)
    assert body["errcode"] == "M_NOT_JSON"
    assert await membership(client, room_id, dave) is None


async def test_invite_twice_is_ok(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, _ = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat")
    await post(client, room_id, "invite", alice, {"user_id": bob_id})
    await post(client, room_id, "invite", alice, {"user_id": bob_id})
    await post(client, room_id, "invite", alice, {"user_id": bob_id, "reason": "really"})
    assert (await member_event(client, room_id, bob_id))[1]["reason"] == "really"


async def test_invite_remote_user_is_stored(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await new_room(client, alice, preset="private_chat")
    remote = "@someone:elsewhere.example"
    await post(client, room_id, "invite", alice, {"user_id": remote})
    assert await member_event(client, room_id, remote) == (
        f"@alice:{SERVER_NAME}", {"membership": "invite"}
    )


# --- leave and forget ---------------------------------------------------------------


async def test_leave_errors_and_repeats(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    assert (await post(client, room_id, "leave", bob, expect=403))["errcode"] == "M_FORBIDDEN"
    assert (await post(client, f"!nope:{SERVER_NAME}", "leave", bob, expect=403))["errcode"] == "M_FORBIDDEN"
    assert (await post(client, room_id, "leave", bob, {"reason": []}, expect=400))["errcode"] == "M_BAD_JSON"
    await post(client, room_id, "join", bob)
    await post(client, room_id, "leave", bob)
    await post(client, room_id, "leave", bob)  # already left: nothing to do


async def test_forget(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")

    assert (await post(client, room_id, "forget", bob, expect=404))["errcode"] == "M_NOT_FOUND"
    assert (await post(client, f"!nope:{SERVER_NAME}", "forget", bob, expect=404))["errcode"] == "M_NOT_FOUND"
    await post(client, room_id, "join", bob)
    assert (await post(client, room_id, "forget", bob, expect=400))["errcode"] == "M_UNKNOWN"

    await post(client, room_id, "leave", bob)
    assert await client.hs.room_store.rooms_for_user(bob_id, "leave") == [room_id]
    assert await client.request("POST", room_path(room_id, "forget"), token=bob) == {}
    assert await forgotten(client, room_id, bob_id) is True
    assert await client.hs.room_store.rooms_for_user(bob_id, "leave") == []

    # Coming back clears it.
    await post(client, room_id, "join", bob)
    assert await forgotten(client, room_id, bob_id) is False
    assert await joined_rooms(client, bob) == [room_id]


async def test_forget_pending_invite_is_refused(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat")
    await post(client, room_id, "invite", alice, {"user_id": bob_id})
    assert (await post(client, room_id, "forget", bob, expect=400))["errcode"] == "M_UNKNOWN"


async def forgotten(client: MatrixTestClient, room_id: str, user_id: str) -> bool:
    async with client.hs.db.read() as conn:
        value = (await conn.execute(
            select(room_members.c.forgotten)
            .select_from(room_members.join(rooms, rooms.c.room_nid == room_members.c.room_nid))
            .where(rooms.c.room_id == room_id, room_members.c.user_id == user_id)
        )).scalar_one()
    return bool(value)


# --- kick, ban, unban ------------------------------------------------------------------


async def test_kick_then_rejoin(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    await post(client, room_id, "join", bob)
    assert await post(client, room_id, "kick", alice, {"user_id": bob_id, "reason": "spam"}) == {}
    kicked = (alice_id, {"membership": "leave", "reason": "spam"})
    assert await member_event(client, room_id, bob_id) == kicked
    assert await joined_rooms(client, bob) == []
    await post(client, room_id, "join", bob)
    assert await joined_rooms(client, bob) == [room_id]


async def test_kick_errors(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, _ = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    await post(client, room_id, "join", bob)
    # Without power, against someone not in the room, in an unknown room, bad bodies.
    assert (await post(client, room_id, "kick", bob, {"user_id": alice_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    assert (await post(client, room_id, "kick", alice, {"user_id": carol_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    body = await post(client, f"!nope:{SERVER_NAME}", "kick", alice, {"user_id": bob_id}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert (await post(client, room_id, "kick", alice, {"reason": "x"}, expect=400))["errcode"] == \
        "M_MISSING_PARAM"
    assert (await post(client, room_id, "kick", alice, {"user_id": "@"}, expect=400))["errcode"] == \
        "M_INVALID_PARAM"
    assert await membership(client, room_id, alice_id) == "join"
    assert await membership(client, room_id, carol_id) is None


@pytest.mark.parametrize("version", ["1", "10", "12"])
async def test_ban_blocks_join_until_unban(client: MatrixTestClient, version: str) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat", room_version=version)
    await post(client, room_id, "join", bob)

    assert await post(client, room_id, "ban", alice, {"user_id": bob_id, "reason": "rude"}) == {}
    assert await member_event(client, room_id, bob_id) == (alice_id, {"membership": "ban", "reason": "rude"})
    assert await joined_rooms(client, bob) == []
    assert (await post(client, room_id, "join", bob, expect=403))["errcode"] == "M_FORBIDDEN"
    assert (await post(client, room_id, "invite", alice, {"user_id": bob_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    assert (await post(client, room_id, "kick", alice, {"user_id": bob_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    assert (await post(client, room_id, "leave", bob, expect=403))["errcode"] == "M_FORBIDDEN"

    assert await post(client, room_id, "unban", alice, {"user_id": bob_id, "reason": "ok"}) == {}
    assert await member_event(client, room_id, bob_id) == (alice_id, {"membership": "leave", "reason": "ok"})
    await post(client, room_id, "join", bob)
    assert await joined_rooms(client, bob) == [room_id]


async def test_ban_and_unban_errors(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, _ = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    await post(client, room_id, "join", bob)
    assert (await post(client, room_id, "ban", bob, {"user_id": alice_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    assert (await post(client, room_id, "unban", alice, {"user_id": bob_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    body = await post(client, f"!nope:{SERVER_NAME}", "ban", alice, {"user_id": bob_id}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await post(client, f"!nope:{SERVER_NAME}", "unban", alice, {"user_id": bob_id}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert (await post(client, room_id, "ban", alice, {}, expect=400))["errcode"] == "M_MISSING_PARAM"
    assert (await post(client, room_id, "unban", alice, {"user_id": "x"}, expect=400))["errcode"] == \
        "M_INVALID_PARAM"
    # Banning someone who never joined is allowed (pre-emptive ban); unban needs a ban.
    await post(client, room_id, "ban", alice, {"user_id": carol_id})
    assert await membership(client, room_id, carol_id) == "ban"
    await post(client, room_id, "ban", alice, {"user_id": carol_id})
    # Someone without ban power cannot unban.
    assert (await post(client, room_id, "unban", bob, {"user_id": carol_id}, expect=403))["errcode"] == \
        "M_FORBIDDEN"
    assert await membership(client, room_id, bob_id) == "join"


# --- knock -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["10", "12"])
async def test_knock_invite_join(client: MatrixTestClient, version: str) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat", room_version=version)
    await client.send_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"})

    body = await client.request("POST", f"{V3}/knock/{room_id}", token=bob, json={"reason": "let me in"})
    assert body == {"room_id": room_id}
    assert await member_event(client, room_id, bob_id) == (
        bob_id, {"membership": "knock", "displayname": "bob", "reason": "let me in"}
    )
    assert await joined_rooms(client, bob) == []
    # Knocking does not let you join.
    assert (await post(client, room_id, "join", bob, expect=403))["errcode"] == "M_FORBIDDEN"

    await post(client, room_id, "invite", alice, {"user_id": bob_id})
    assert (await member_event(client, room_id, bob_id))[0] == alice_id
    await post(client, room_id, "join", bob)
    assert await joined_rooms(client, bob) == [room_id]
    # Members cannot knock.
    body = await client.request("POST", f"{V3}/knock/{room_id}", token=bob, json={}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"


async def test_knock_retract_and_deny(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="private_chat", room_version="10")
    await client.send_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"})
    alias = f"#knock:{SERVER_NAME}"
    await add_alias(client, alias, room_id, alice_id)

    body = await client.request("POST", f"/_matrix/client/r0/knock/%23knock:{SERVER_NAME}", token=bob,
                                data=b"")
    assert body == {"room_id": room_id}
    await post(client, room_id, "leave", bob)  # retract
    assert await membership(client, room_id, bob_id) == "leave"
    await client.request("POST", f"{V3}/knock/{room_id}", token=bob, json={})
    await post(client, room_id, "kick", alice, {"user_id": bob_id, "reason": "no"})  # deny
    assert await member_event(client, room_id, bob_id) == (alice_id, {"membership": "leave", "reason": "no"})


async def test_knock_errors(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    invite_only = await new_room(client, alice, preset="private_chat", room_version="10")
    old = await new_room(client, alice, preset="private_chat", room_version="6")
    public = await new_room(client, alice, preset="public_chat", room_version="10")
    for room_id in (invite_only, old, public):
        body = await client.request("POST", f"{V3}/knock/{room_id}", token=bob, json={}, expect=403)
        assert body["errcode"] == "M_FORBIDDEN"
    for target in (f"!nope:{SERVER_NAME}", f"%23nope:{SERVER_NAME}"):
        body = await client.request("POST", f"{V3}/knock/{target}", token=bob, json={}, expect=404)
        assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("POST", f"{V3}/knock/{public}", token=bob, json={"reason": 1}, expect=400)
    assert body["errcode"] == "M_BAD_JSON"
    body = await client.request("POST", f"{V3}/knock/bogus", token=bob, json={}, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


# --- restricted joins ----------------------------------------------------------------------


@pytest.mark.parametrize(("version", "rule"), [("10", "restricted"), ("10", "knock_restricted"),
                                               ("12", "restricted")])
async def test_restricted_join(client: MatrixTestClient, version: str, rule: str) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, carol = await client.user("carol")
    space = await new_room(client, alice, preset="public_chat", room_version=version)
    room_id = await new_room(client, alice, preset="private_chat", room_version=version)
    await client.send_state(alice, room_id, "m.room.join_rules", {
        "join_rule": rule,
        "allow": [{"type": "m.room_membership", "room_id": "!elsewhere:elsewhere.example"},
                  {"type": "m.room_membership", "room_id": space}],
    })
    await post(client, space, "join", bob)

    await post(client, room_id, "join", bob)
    sender, content = await member_event(client, room_id, bob_id)
    assert sender == bob_id
    assert content == {
        "membership": "join", "displayname": "bob", "join_authorised_via_users_server": alice_id,
    }
    assert room_id in await joined_rooms(client, bob)

    body = await post(client, room_id, "join", carol, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert await membership(client, room_id, carol_id) is None
    if rule == "knock_restricted":
        await client.request("POST", f"{V3}/knock/{room_id}", token=carol, json={})
        assert await membership(client, room_id, carol_id) == "knock"


async def test_restricted_rule_needs_a_supporting_room_version(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    space = await new_room(client, alice, preset="public_chat", room_version="7")
    room_id = await new_room(client, alice, preset="private_chat", room_version="7")
    await client.send_state(alice, room_id, "m.room.join_rules", {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}],
    })
    await post(client, space, "join", bob)
    assert (await post(client, room_id, "join", bob, expect=403))["errcode"] == "M_FORBIDDEN"


# --- joined_rooms --------------------------------------------------------------------------


async def test_joined_rooms_tracks_membership(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    assert await joined_rooms(client, bob) == []
    first = await new_room(client, alice, preset="public_chat")
    second = await new_room(client, alice, preset="private_chat")
    own = await new_room(client, bob)
    await post(client, first, "join", bob)
    await post(client, second, "invite", alice, {"user_id": bob_id})
    assert await joined_rooms(client, bob) == sorted([first, own])
    await post(client, second, "join", bob)
    assert await joined_rooms(client, bob) == sorted([first, second, own])
    await post(client, first, "leave", bob)
    assert await joined_rooms(client, bob) == sorted([second, own])
    body = await client.request("GET", "/_matrix/client/r0/joined_rooms", token=bob)
    assert body == {"joined_rooms": sorted([second, own])}
    assert (await client.request("GET", f"{V3}/joined_rooms", expect=401))["errcode"] == "M_MISSING_TOKEN"
