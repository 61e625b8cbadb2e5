"""GET /v1/room_summary/{roomIdOrAlias}."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom; the clock moves first so identical v12 create events cannot collide."""
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    return await client.create_room(token, **body)


def path(target: str) -> str:
    return f"{V1}/room_summary/{quote(target, safe='')}"


async def test_public_room_summary_without_token(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(
        client,
        token,
        preset="public_chat",
        name="Cheese",
        topic="Tasty",
        room_alias_name="cheese",
        creation_content={"type": "m.space"},
        initial_state=[{"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    )
    body = await client.request("GET", path(room_id))
    assert body == {
        "room_id": room_id,
        "name": "Cheese",
        "topic": "Tasty",
        "canonical_alias": f"#cheese:{SERVER_NAME}",
        "num_joined_members": 1,
        "world_readable": False,
        "guest_can_join": False,
        "join_rule": "public",
        "room_type": "m.space",
        "room_version": "12",
        "encryption": "m.megolm.v1.aes-sha2",
    }
    # By alias, and with a token (membership is then reported).
    assert (await client.request("GET", path(f"#cheese:{SERVER_NAME}")))["room_id"] == room_id
    body = await client.request("GET", path(room_id), token=token)
    assert body["membership"] == "join"
    _, bob = await client.user("bob")
    assert (await client.request("GET", path(room_id), token=bob))["membership"] == "leave"


async def test_private_room_is_not_found_for_outsiders(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await new_room(client, alice, name="Private")
    for token in (None, bob):
        body = await client.request("GET", path(room_id), token=token, expect=404)
        assert body["errcode"] == "M_NOT_FOUND"
    # An invited user may preview it.
    await client.request("POST", f"{V3}/rooms/{room_id}/invite", token=alice, json={"user_id": bob_id})
    body = await client.request("GET", path(room_id), token=bob)
    assert body["name"] == "Private" and body["membership"] == "invite"
    assert body["join_rule"] == "invite"


async def test_world_readable_room_is_visible(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await new_room(
        client,
        alice,
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}
        ],
    )
    body = await client.request("GET", path(room_id))
    assert body["world_readable"] is True and "membership" not in body


async def test_restricted_room_visible_through_allowed_room(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    _, carol = await client.user("carol")
    lobby = await new_room(client, alice, preset="public_chat")
    room_id = await new_room(
        client,
        alice,
        initial_state=[
            {
                "type": "m.room.join_rules",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": lobby}],
                },
            }
        ],
    )
    await client.request("POST", f"{V3}/rooms/{lobby}/join", token=bob, json={})
    body = await client.request("GET", path(room_id), token=bob)
    assert body["join_rule"] == "restricted"
    assert body["allowed_room_ids"] == [lobby]
    await client.request("GET", path(room_id), token=carol, expect=404)
    await client.request("GET", path(room_id), expect=404)


async def test_knockable_room_is_visible(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await new_room(
        client, alice, initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]
    )
    assert (await client.request("GET", path(room_id)))["join_rule"] == "knock"


async def test_unknown_and_invalid_targets(client: MatrixTestClient) -> None:
    body = await client.request("GET", path(f"!unknown:{SERVER_NAME}"), expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("GET", path(f"#unknown:{SERVER_NAME}"), expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("GET", path("neither"), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("GET", path("#"), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("GET", path(f"!unknown:{SERVER_NAME}"), token="bogus", expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_summary_follows_membership_changes(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await new_room(client, alice, preset="public_chat")
    assert (await client.request("GET", path(room_id)))["num_joined_members"] == 1
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=bob, json={})
    assert (await client.request("GET", path(room_id)))["num_joined_members"] == 2
