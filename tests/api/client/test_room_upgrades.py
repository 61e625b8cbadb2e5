"""POST /rooms/{roomId}/upgrade."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from hearth.storage.aliases import AliasesStore
from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V3 = "/_matrix/client/v3"
State = dict[tuple[str, str], dict[str, Any]]


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom; the clock moves first so identical v12 create events cannot collide."""
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    return await client.create_room(token, **body)


async def room_state(client: MatrixTestClient, room_id: str) -> State:
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    async with client.hs.db.read() as conn:
        nids = await client.hs.state_store.current_event_nids(conn, room.room_nid)
        keys = await client.hs.state_store.keys_for_nids(conn, nids)
        evs = await client.hs.event_store.by_nids(conn, nids.values())
    return {keys[k]: dict(evs[e].event.content) for k, e in nids.items()}


async def upgrade(
    client: MatrixTestClient, token: str, room_id: str, expect: int = 200, **body: Any
) -> dict[str, Any]:
    return await client.request(  # type: ignore[no-any-return]
        "POST", f"{V3}/rooms/{room_id}/upgrade", token=token, json=body, expect=expect
    )


async def test_upgrade_copies_state_and_retires_the_old_room(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    alias = f"#main:{SERVER_NAME}"
    old = await new_room(
        client,
        token,
        room_version="10",
        preset="public_chat",
        visibility="public",
        name="Old",
        topic="Topic",
        room_alias_name="main",
        initial_state=[
            {"type": "m.room.avatar", "content": {"url": "mxc://test.local/a"}},
            {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
            {"type": "m.room.server_acl", "content": {"allow": ["*"], "deny": ["bad.example"]}},
            {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
            {"type": "org.example.custom", "content": {"not": "copied"}},
        ],
    )
    await client.send_message(token, old, "last words")
    new = (await upgrade(client, token, old, new_version="12"))["replacement_room"]
    assert new != old
    state = await room_state(client, new)
    old_state = await room_state(client, old)

    create = state[("m.room.create", "")]
    assert create["room_version"] == "12"
    assert create["predecessor"]["room_id"] == old
    assert create["predecessor"]["event_id"].startswith("$")
    for key in (
        ("m.room.name", ""),
        ("m.room.topic", ""),
        ("m.room.avatar", ""),
        ("m.room.encryption", ""),
        ("m.room.server_acl", ""),
        ("m.room.join_rules", ""),
        ("m.room.history_visibility", ""),
        ("m.room.guest_access", ""),
    ):
        assert state[key] == old_state[key], key
    assert ("org.example.custom", "") not in state
    # v12: the creator has infinite power and must not be listed.
    assert alice not in state[("m.room.power_levels", "")]["users"]
    assert state[("m.room.member", alice)]["membership"] == "join"

    # Aliases, canonical alias and directory listing moved.
    assert state[("m.room.canonical_alias", "")] == {"alias": alias}
    assert old_state[("m.room.canonical_alias", "")] == {}
    assert (await client.request("GET", f"{V3}/directory/room/{quote(alias, safe='')}"))["room_id"] == new
    assert (await client.request("GET", f"{V3}/directory/list/room/{new}")) == {"visibility": "public"}
    assert (await client.request("GET", f"{V3}/directory/list/room/{old}")) == {"visibility": "private"}

    # The old room is tombstoned and quietened.
    assert old_state[("m.room.tombstone", "")]["replacement_room"] == new
    old_pl = old_state[("m.room.power_levels", "")]
    assert old_pl["events_default"] == 50 and old_pl["invite"] == 50


async def test_upgrade_keeps_absent_settings_absent_in_meaning(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    old = await new_room(client, token, room_version="11")
    # The private preset gave guest_access can_join; change it so the copy is visible.
    await client.send_state(token, old, "m.room.guest_access", {"guest_access": "forbidden"})
    new = (await upgrade(client, token, old, new_version="11"))["replacement_room"]
    state = await room_state(client, new)
    assert state[("m.room.join_rules", "")] == {"join_rule": "invite"}
    assert state[("m.room.guest_access", "")] == {"guest_access": "forbidden"}
    assert ("m.room.canonical_alias", "") not in state
    assert "type" not in state[("m.room.create", "")]


async def test_upgrade_needs_tombstone_power(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    body = await upgrade(client, bob, room_id, new_version="12", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=bob, json={})
    body = await upgrade(client, bob, room_id, new_version="12", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await upgrade(client, bob, f"!unknown:{SERVER_NAME}", new_version="12", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert ("m.room.tombstone", "") not in await room_state(client, room_id)


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"new_version": "999"}, "M_UNSUPPORTED_ROOM_VERSION"),
        ({}, "M_MISSING_PARAM"),
        ({"new_version": 12}, "M_BAD_JSON"),
        ({"new_version": "12", "additional_creators": ["not-a-user"]}, "M_INVALID_PARAM"),
    ],
)
async def test_bad_requests(client: MatrixTestClient, body: dict[str, Any], errcode: str) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    resp = await upgrade(client, token, room_id, expect=400, **body)
    assert resp["errcode"] == errcode


async def test_additional_creators_in_v12(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    bob, bob_token = await client.user("bob")
    old = await new_room(client, token, room_version="11", preset="public_chat")
    await client.request("POST", f"{V3}/rooms/{old}/join", token=bob_token, json={})
    await client.send_state(token, old, "m.room.power_levels", {"users": {alice: 100, bob: 50}})
    new = (await upgrade(client, token, old, new_version="12", additional_creators=[bob]))["replacement_room"]
    state = await room_state(client, new)
    assert state[("m.room.create", "")]["additional_creators"] == [bob]
    assert state[("m.room.power_levels", "")]["users"] == {}


async def test_v12_to_v11_gives_the_creators_a_level(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    old = await new_room(client, token, room_version="12", name="Twelve")
    new = (await upgrade(client, token, old, new_version="11"))["replacement_room"]
    state = await room_state(client, new)
    assert state[("m.room.create", "")]["room_version"] == "11"
    assert state[("m.room.power_levels", "")]["users"][alice] == 150  # the highest level in use (tombstone)
    assert state[("m.room.name", "")] == {"name": "Twelve"}


async def test_stringy_power_levels_become_integers(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    old = await new_room(client, token, room_version="9", power_level_content_override={"ban": "60"})
    new = (await upgrade(client, token, old, new_version="10"))["replacement_room"]
    pl = (await room_state(client, new))[("m.room.power_levels", "")]
    assert pl["ban"] == 60
    assert pl["users"] == {alice: 100}


async def test_moderator_with_tombstone_power_can_copy_admin_state(client: MatrixTestClient) -> None:
    alice, alice_token = await client.user("alice")
    bob, bob_token = await client.user("bob")
    old = await new_room(client, alice_token, room_version="10", preset="public_chat")
    await client.request("POST", f"{V3}/rooms/{old}/join", token=bob_token, json={})
    pl = (await room_state(client, old))[("m.room.power_levels", "")]
    pl["users"] = {alice: 100, bob: 50}
    pl["events"]["m.room.tombstone"] = 50
    await client.send_state(alice_token, old, "m.room.power_levels", pl)
    await client.send_state(
        alice_token, old, "m.room.history_visibility", {"history_visibility": "world_readable"}
    )
    new = (await upgrade(client, bob_token, old, new_version="10"))["replacement_room"]
    state = await room_state(client, new)
    # history_visibility needs 100; bob had it only while copying.
    assert state[("m.room.history_visibility", "")] == {"history_visibility": "world_readable"}
    assert state[("m.room.power_levels", "")]["users"] == {alice: 100, bob: 50}
    assert state[("m.room.create", "")]["creator"] == bob


async def test_bans_and_space_children_are_carried_over(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    mallory, mallory_token = await client.user("mallory")
    space = await new_room(client, token, preset="public_chat", creation_content={"type": "m.space"})
    child = await new_room(client, token)
    await client.send_state(token, space, "m.space.child", {"via": [SERVER_NAME], "order": "a"}, child)
    await client.send_state(token, space, "m.space.child", {}, f"!removed:{SERVER_NAME}")
    await client.request("POST", f"{V3}/rooms/{space}/join", token=mallory_token, json={})
    await client.request("POST", f"{V3}/rooms/{space}/ban", token=token, json={"user_id": mallory})
    new = (await upgrade(client, token, space, new_version="12"))["replacement_room"]
    state = await room_state(client, new)
    assert state[("m.room.create", "")]["type"] == "m.space"
    assert state[("m.space.child", child)] == {"via": [SERVER_NAME], "order": "a"}
    assert ("m.space.child", f"!removed:{SERVER_NAME}") not in state
    assert state[("m.room.member", mallory)]["membership"] == "ban"
    body = await client.request("POST", f"{V3}/rooms/{new}/join", token=mallory_token, json={}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"


async def test_canonical_alias_keeps_only_aliases_that_move(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    old = await new_room(client, token, room_alias_name="keep")
    other = await new_room(client, token, room_alias_name="other")
    keep, gone = f"#keep:{SERVER_NAME}", f"#gone:{SERVER_NAME}"
    await client.request(
        "PUT", f"{V3}/directory/room/{quote(gone, safe='')}", token=token, json={"room_id": old}
    )
    await client.send_state(token, old, "m.room.canonical_alias", {"alias": keep, "alt_aliases": [gone]})
    # #gone is re-pointed elsewhere behind the room's back: it must not follow the upgrade.
    store = AliasesStore(client.hs.db)
    assert await store.delete(gone)
    assert await store.create(gone, other, "@alice:test.local", 0)
    new = (await upgrade(client, token, old, new_version="12"))["replacement_room"]
    assert (await room_state(client, new))[("m.room.canonical_alias", "")] == {
        "alias": keep,
        "alt_aliases": [],
    }
    assert await client.hs.aliases.resolve(gone) == other
    assert await client.hs.aliases.resolve(keep) == new
