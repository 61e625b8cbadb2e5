"""GET /v1/rooms/{roomId}/hierarchy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"
VIA = {"via": [SERVER_NAME]}


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom; the clock moves first so identical v12 create events cannot collide."""
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    return await client.create_room(token, **body)


async def new_space(client: MatrixTestClient, token: str, **body: Any) -> str:
    return await new_room(client, token, preset="public_chat", creation_content={"type": "m.space"}, **body)


async def add_child(client: MatrixTestClient, token: str, space: str, child: str, **content: Any) -> None:
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    await client.send_state(token, space, "m.space.child", {**VIA, **content}, child)


async def hierarchy(
    client: MatrixTestClient, token: str, room_id: str, query: str = "", expect: int = 200
) -> dict[str, Any]:
    return await client.request(  # type: ignore[no-any-return]
        "GET", f"{V1}/rooms/{room_id}/hierarchy{query}", token=token, expect=expect
    )


def ids(body: dict[str, Any]) -> list[str]:
    return [room["room_id"] for room in body["rooms"]]


async def test_depth_first_walk_in_spec_order(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    root = await new_space(client, token, name="Root")
    sub = await new_space(client, token, name="Sub")
    a = await new_room(client, token, preset="public_chat", name="A")
    b = await new_room(client, token, preset="public_chat", name="B")
    c = await new_room(client, token, preset="public_chat", name="C")
    # Children without `order` follow ordered ones, by timestamp.
    await add_child(client, token, root, c)
    await add_child(client, token, root, sub, order="b")
    await add_child(client, token, root, a, order="a")
    await add_child(client, token, sub, b)
    body = await hierarchy(client, token, root)
    assert ids(body) == [root, a, sub, b, c]
    assert "next_batch" not in body
    first = body["rooms"][0]
    assert first["name"] == "Root" and first["room_type"] == "m.space"
    assert first["num_joined_members"] == 1 and first["join_rule"] == "public"
    assert [e["state_key"] for e in first["children_state"]] == [a, sub, c]
    child_event = first["children_state"][0]
    assert child_event["type"] == "m.space.child"
    assert child_event["sender"] == alice
    assert child_event["content"] == {**VIA, "order": "a"}
    assert isinstance(child_event["origin_server_ts"], int)
    # Rooms that are not spaces have no children listed.
    assert body["rooms"][1]["children_state"] == []


async def test_max_depth_and_suggested_only(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    root = await new_space(client, token)
    sub = await new_space(client, token)
    a = await new_room(client, token, preset="public_chat")
    b = await new_room(client, token, preset="public_chat")
    await add_child(client, token, root, sub, suggested=True)
    await add_child(client, token, root, a)
    await add_child(client, token, sub, b, suggested=True)
    assert ids(await hierarchy(client, token, root, "?max_depth=1")) == [root, sub, a]
    assert ids(await hierarchy(client, token, root, "?max_depth=0")) == [root]
    body = await hierarchy(client, token, root, "?suggested_only=true")
    assert ids(body) == [root, sub, b]
    assert [e["state_key"] for e in body["rooms"][0]["children_state"]] == [sub]


async def test_pagination(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    root = await new_space(client, token)
    children = [await new_room(client, token, preset="public_chat") for _ in range(4)]
    for child in children:
        await add_child(client, token, root, child)
    first = await hierarchy(client, token, root, "?limit=2")
    assert ids(first) == [root, children[0]]
    second = await hierarchy(client, token, root, f"?limit=2&from={first['next_batch']}")
    assert ids(second) == children[1:3]
    third = await hierarchy(client, token, root, f"?limit=2&from={second['next_batch']}")
    assert ids(third) == children[3:]
    assert "next_batch" not in third
    # A token may be used again (pages are immutable), but not with other settings.
    again = await hierarchy(client, token, root, f"?limit=2&from={first['next_batch']}")
    assert ids(again) == children[1:3]
    for query in ("&suggested_only=true", "&max_depth=1"):
        body = await hierarchy(client, token, root, f"?from={first['next_batch']}{query}", expect=400)
        assert body["errcode"] == "M_INVALID_PARAM"
    body = await hierarchy(client, token, root, "?from=nonsense", expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    # Another user cannot continue someone else's walk.
    _, bob = await client.user("bob")
    await hierarchy(client, bob, root, f"?from={first['next_batch']}", expect=400)


async def test_pagination_token_expires(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    root = await new_space(client, token)
    for _ in range(2):
        await add_child(client, token, root, await new_room(client, token, preset="public_chat"))
    first = await hierarchy(client, token, root, "?limit=1")
    client.hs.clock.advance(10 * 60 * 1000)  # type: ignore[attr-defined]
    body = await hierarchy(client, token, root, f"?limit=1&from={first['next_batch']}", expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_loops_end_and_rooms_appear_once(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    a = await new_space(client, token)
    b = await new_space(client, token)
    room = await new_room(client, token, preset="public_chat")
    await add_child(client, token, a, b)
    await add_child(client, token, b, a)
    await add_child(client, token, a, room)
    await add_child(client, token, b, room)
    assert ids(await hierarchy(client, token, a)) == [a, b, room]


async def test_only_rooms_the_user_may_see(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    root = await new_space(client, alice)
    private = await new_room(client, alice)
    invited = await new_room(client, alice)
    public = await new_room(client, alice, preset="public_chat")
    restricted = await new_room(
        client,
        alice,
        initial_state=[
            {
                "type": "m.room.join_rules",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": root}],
                },
            }
        ],
    )
    for child in (private, invited, public, restricted, f"!elsewhere:{SERVER_NAME}"):
        await add_child(client, alice, root, child)
    await add_child(client, alice, root, await new_room(client, alice, preset="public_chat"), via=[])
    await client.request("POST", f"{V3}/rooms/{invited}/invite", token=alice, json={"user_id": bob_id})
    # Bob is not in the (public) space yet: the restricted room is hidden from him.
    assert ids(await hierarchy(client, bob, root)) == [root, invited, public]
    await client.request("POST", f"{V3}/rooms/{root}/join", token=bob, json={})
    assert ids(await hierarchy(client, bob, root)) == [root, invited, public, restricted]
    # Alice sees every room she is in; unknown rooms and children without `via` are skipped.
    assert ids(await hierarchy(client, alice, root)) == [root, private, invited, public, restricted]


async def test_root_errors(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    private = await new_space(client, alice, visibility="private")
    await client.send_state(alice, private, "m.room.join_rules", {"join_rule": "invite"})
    body = await hierarchy(client, bob, private, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await hierarchy(client, bob, f"!unknown:{SERVER_NAME}", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    body = await hierarchy(client, bob, "not-a-room", expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    await client.request("GET", f"{V1}/rooms/{private}/hierarchy", expect=401)


@pytest.mark.parametrize("query", ["?limit=0", "?limit=x", "?max_depth=-1", "?suggested_only=maybe"])
async def test_bad_parameters(client: MatrixTestClient, query: str) -> None:
    _, token = await client.user("alice")
    root = await new_space(client, token)
    body = await hierarchy(client, token, root, query, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_non_space_root_is_returned_alone(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room = await new_room(client, token, preset="public_chat")
    other = await new_room(client, token, preset="public_chat")
    await add_child(client, token, room, other)
    body = await hierarchy(client, token, room)
    assert ids(body) == [room]
    assert body["rooms"][0]["children_state"] == []
