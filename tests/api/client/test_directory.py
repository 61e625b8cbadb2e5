"""Room aliases: /directory/room/{roomAlias}, /rooms/{roomId}/aliases, canonical alias checks,
and createRoom's room_alias_name."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from hearth.storage.aliases import AliasesStore
from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V3 = "/_matrix/client/v3"


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom; the clock moves first so identical v12 create events cannot collide."""
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    return await client.create_room(token, **body)


def alias_path(alias: str) -> str:
    return f"{V3}/directory/room/{quote(alias, safe='')}"


async def put_alias(
    client: MatrixTestClient, token: str, alias: str, room_id: str, expect: int = 200
) -> dict[str, Any]:
    return await client.request(  # type: ignore[no-any-return]
        "PUT", alias_path(alias), token=token, json={"room_id": room_id}, expect=expect
    )


async def state_content(
    client: MatrixTestClient, room_id: str, event_type: str, state_key: str = ""
) -> dict[str, Any] | None:
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    state = client.hs.state_store
    async with client.hs.db.read() as conn:
        key = (await state.key_nids(conn, [(event_type, state_key)], create=False)).get(
            (event_type, state_key)
        )
        nids = await state.current_event_nids(conn, room.room_nid, [key]) if key is not None else {}
        events = await client.hs.event_store.by_nids(conn, nids.values())
    return next((dict(e.event.content) for e in events.values()), None)


# --- create and resolve ------------------------------------------------------------


async def test_create_and_resolve_alias(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    alias = f"#lounge:{SERVER_NAME}"
    assert await put_alias(client, token, alias, room_id) == {}
    # Resolving needs no access token.
    body = await client.request("GET", alias_path(alias))
    assert body == {"room_id": room_id, "servers": [SERVER_NAME]}
    assert await client.hs.aliases.resolve(alias) == room_id
    # r0 path too.
    body = await client.request("GET", f"/_matrix/client/r0/directory/room/{quote(alias, safe='')}")
    assert body["room_id"] == room_id


async def test_alias_in_use_is_409(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    first = await new_room(client, token)
    second = await new_room(client, token)
    alias = f"#taken:{SERVER_NAME}"
    await put_alias(client, token, alias, first)
    body = await put_alias(client, token, alias, second, expect=409)
    assert body["errcode"] == "M_ROOM_IN_USE"
    assert (await client.request("GET", alias_path(alias)))["room_id"] == first


@pytest.mark.parametrize(
    "alias",
    [
        "#elsewhere:other.server",
        "no-sigil:test.local",
        "#nodomain",
        "#with space:test.local",
        f"#:{SERVER_NAME}",
    ],
)
async def test_create_refuses_bad_or_foreign_aliases(client: MatrixTestClient, alias: str) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    body = await put_alias(client, token, alias, room_id, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_create_body_errors(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    alias = f"#x:{SERVER_NAME}"
    body = await client.request("PUT", alias_path(alias), token=token, json={}, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"
    body = await client.request("PUT", alias_path(alias), token=token, json={"room_id": "nope"}, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("PUT", alias_path(alias), json={"room_id": "!a:b"}, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


async def test_only_members_may_create(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    body = await put_alias(client, bob, f"#bobs:{SERVER_NAME}", room_id, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await put_alias(client, bob, f"#bobs:{SERVER_NAME}", f"!unknown:{SERVER_NAME}", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    # Once joined, any member may.
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=bob, json={})
    await put_alias(client, bob, f"#bobs:{SERVER_NAME}", room_id)


async def test_unknown_and_remote_aliases_are_404(client: MatrixTestClient) -> None:
    body = await client.request("GET", alias_path(f"#ghost:{SERVER_NAME}"), expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    # Remote aliases need federation, not available yet.
    body = await client.request("GET", alias_path("#room:elsewhere.example"), expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("GET", alias_path("bad-alias"), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_join_by_alias_uses_the_alias_service(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    alias = f"#joinme:{SERVER_NAME}"
    await put_alias(client, alice, alias, room_id)
    body = await client.request("POST", f"{V3}/join/{quote(alias, safe='')}", token=bob, json={})
    assert body["room_id"] == room_id
    assert (await state_content(client, room_id, "m.room.member", bob_id)) is not None


# --- delete ------------------------------------------------------------------------


async def test_creator_may_delete(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    alias = f"#gone:{SERVER_NAME}"
    await put_alias(client, token, alias, room_id)
    assert await client.request("DELETE", alias_path(alias), token=token) == {}
    await client.request("GET", alias_path(alias), expect=404)
    body = await client.request("DELETE", alias_path(alias), token=token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_delete_permissions(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    carol_id, carol = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=bob, json={})
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=carol, json={})
    alias = f"#bobs:{SERVER_NAME}"
    await put_alias(client, bob, alias, room_id)
    # Carol neither made it nor has the power to change the canonical alias.
    body = await client.request("DELETE", alias_path(alias), token=carol, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    # Alice (room creator, infinite power in v12) may.
    await client.request("DELETE", alias_path(alias), token=alice)
    # A server admin may delete any alias, room member or not.
    await put_alias(client, bob, alias, room_id)
    await client.hs.users.set_admin(carol_id, True)
    await client.request("DELETE", alias_path(alias), token=carol)
    await client.request("GET", alias_path(alias), expect=404)


async def test_delete_drops_the_alias_from_the_canonical_alias_event(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    main, alt = f"#main:{SERVER_NAME}", f"#alt:{SERVER_NAME}"
    await put_alias(client, token, main, room_id)
    await put_alias(client, token, alt, room_id)
    await client.send_state(token, room_id, "m.room.canonical_alias", {"alias": main, "alt_aliases": [alt]})
    await client.request("DELETE", alias_path(alt), token=token)
    assert await state_content(client, room_id, "m.room.canonical_alias") == {
        "alias": main,
        "alt_aliases": [],
    }
    await client.request("DELETE", alias_path(main), token=token)
    assert await state_content(client, room_id, "m.room.canonical_alias") == {"alt_aliases": []}


async def test_delete_stands_even_when_canonical_alias_cannot_be_edited(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=bob, json={})
    alias = f"#bobs:{SERVER_NAME}"
    await put_alias(client, bob, alias, room_id)
    await client.send_state(alice, room_id, "m.room.canonical_alias", {"alias": alias})
    # Bob created the alias, so he may delete it, but he may not edit the canonical alias.
    await client.request("DELETE", alias_path(alias), token=bob)
    await client.request("GET", alias_path(alias), expect=404)
    assert await state_content(client, room_id, "m.room.canonical_alias") == {"alias": alias}


# --- local aliases of a room -------------------------------------------------------


async def test_room_aliases_visible_to_members(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice)
    for name in ("b", "a"):
        await put_alias(client, alice, f"#{name}:{SERVER_NAME}", room_id)
    body = await client.request("GET", f"{V3}/rooms/{room_id}/aliases", token=alice)
    assert body == {"aliases": [f"#a:{SERVER_NAME}", f"#b:{SERVER_NAME}"]}
    body = await client.request("GET", f"{V3}/rooms/{room_id}/aliases", token=bob, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await client.request("GET", f"{V3}/rooms/!unknown:{SERVER_NAME}/aliases", token=bob, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await client.request("GET", f"{V3}/rooms/not-a-room/aliases", token=bob, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_room_aliases_of_world_readable_room_visible_to_all(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(
        client,
        alice,
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}
        ],
    )
    await put_alias(client, alice, f"#open:{SERVER_NAME}", room_id)
    body = await client.request("GET", f"{V3}/rooms/{room_id}/aliases", token=bob)
    assert body == {"aliases": [f"#open:{SERVER_NAME}"]}


# --- canonical alias validation ------------------------------------------------------


async def send_canonical(
    client: MatrixTestClient, token: str, room_id: str, content: dict[str, Any], expect: int
) -> dict[str, Any]:
    return await client.request(  # type: ignore[no-any-return]
        "PUT", f"{V3}/rooms/{room_id}/state/m.room.canonical_alias/", token=token, json=content, expect=expect
    )


async def test_canonical_alias_must_point_to_the_room(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    other = await new_room(client, token)
    mine, theirs = f"#mine:{SERVER_NAME}", f"#theirs:{SERVER_NAME}"
    await put_alias(client, token, mine, room_id)
    await put_alias(client, token, theirs, other)
    await send_canonical(client, token, room_id, {"alias": mine, "alt_aliases": [mine]}, 200)
    for content in (
        {"alias": f"#missing:{SERVER_NAME}"},
        {"alias": theirs},
        {"alias": mine, "alt_aliases": [theirs]},
        {"alt_aliases": ["#remote:elsewhere.example"]},
    ):
        body = await send_canonical(client, token, room_id, content, 400)
        assert body["errcode"] == "M_BAD_ALIAS", content
    assert await state_content(client, room_id, "m.room.canonical_alias") == {
        "alias": mine,
        "alt_aliases": [mine],
    }
    # Removing the canonical alias is always fine.
    await send_canonical(client, token, room_id, {}, 200)
    await send_canonical(client, token, room_id, {"alias": None}, 200)


@pytest.mark.parametrize(
    "content",
    [{"alias": "not-an-alias"}, {"alias": 5}, {"alt_aliases": "#a:test.local"}, {"alt_aliases": ["nope"]}],
)
async def test_malformed_canonical_alias_is_invalid_param(
    client: MatrixTestClient, content: dict[str, Any]
) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    body = await send_canonical(client, token, room_id, content, 400)
    assert body["errcode"] == "M_INVALID_PARAM"


# --- createRoom room_alias_name --------------------------------------------------------


async def test_create_room_with_alias(client: MatrixTestClient) -> None:
    alice_id, token = await client.user("alice")
    resp = await client.request("POST", f"{V3}/createRoom", token=token, json={"room_alias_name": "party"})
    alias = f"#party:{SERVER_NAME}"
    assert resp["room_alias"] == alias
    room_id = resp["room_id"]
    assert (await client.request("GET", alias_path(alias)))["room_id"] == room_id
    assert await state_content(client, room_id, "m.room.canonical_alias") == {"alias": alias}
    entry = await AliasesStore(client.hs.db).get(alias)
    assert entry is not None and entry.creator == alice_id


async def test_create_room_with_taken_alias_makes_no_room(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    await new_room(client, token, room_alias_name="dup")
    before = await client.request("GET", f"{V3}/joined_rooms", token=token)
    body = await client.request(
        "POST", f"{V3}/createRoom", token=token, json={"room_alias_name": "dup"}, expect=400
    )
    assert body["errcode"] == "M_ROOM_IN_USE"
    assert await client.request("GET", f"{V3}/joined_rooms", token=token) == before


@pytest.mark.parametrize("name", ["has:colon", "has space", ""])
async def test_create_room_with_invalid_alias_name(client: MatrixTestClient, name: str) -> None:
    _, token = await client.user("alice")
    body = await client.request(
        "POST", f"{V3}/createRoom", token=token, json={"room_alias_name": name}, expect=400
    )
    assert body["errcode"] == "M_INVALID_PARAM"
    assert (await client.request("GET", f"{V3}/joined_rooms", token=token))["joined_rooms"] == []
