"""The published room directory: /publicRooms (GET, POST) and /directory/list/room/{roomId}."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import SERVER_NAME, MatrixTestClient

V3 = "/_matrix/client/v3"


async def new_room(client: MatrixTestClient, token: str, **body: Any) -> str:
    """createRoom; the clock moves first so identical v12 create events cannot collide."""
    client.hs.clock.advance(1)  # type: ignore[attr-defined]
    return await client.create_room(token, **body)


async def join(client: MatrixTestClient, token: str, room_id: str) -> None:
    await client.request("POST", f"{V3}/rooms/{room_id}/join", token=token, json={})


def ids(body: dict[str, Any]) -> list[str]:
    return [entry["room_id"] for entry in body["chunk"]]


async def test_public_room_is_listed_with_its_details(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(
        client,
        token,
        visibility="public",
        preset="public_chat",
        name="Tea",
        topic="All about tea",
        room_alias_name="tea",
        initial_state=[
            {"type": "m.room.avatar", "content": {"url": "mxc://test.local/tea"}},
            {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
            {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}},
        ],
    )
    await new_room(client, token, name="Secret")  # private: not listed
    body = await client.request("GET", f"{V3}/publicRooms")  # no access token needed
    assert body == {
        "chunk": [
            {
                "room_id": room_id,
                "name": "Tea",
                "topic": "All about tea",
                "canonical_alias": f"#tea:{SERVER_NAME}",
                "avatar_url": "mxc://test.local/tea",
                "num_joined_members": 1,
                "world_readable": True,
                "guest_can_join": True,
                "join_rule": "public",
            }
        ],
        "total_room_count_estimate": 1,
    }


async def test_visibility_get_and_set(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token)
    path = f"{V3}/directory/list/room/{room_id}"
    assert await client.request("GET", path) == {"visibility": "private"}
    assert await client.request("PUT", path, token=token, json={"visibility": "public"}) == {}
    assert await client.request("GET", path) == {"visibility": "public"}
    assert ids(await client.request("GET", f"{V3}/publicRooms")) == [room_id]
    # visibility defaults to public; private unlists.
    await client.request("PUT", path, token=token, json={"visibility": "private"})
    assert ids(await client.request("GET", f"{V3}/publicRooms")) == []
    await client.request("PUT", path, token=token, json={})
    assert await client.request("GET", path) == {"visibility": "public"}


async def test_visibility_errors_and_permissions(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    carol_id, carol = await client.user("carol")
    room_id = await new_room(client, alice, preset="public_chat")
    path = f"{V3}/directory/list/room/{room_id}"
    unknown = f"{V3}/directory/list/room/!unknown:{SERVER_NAME}"
    assert (await client.request("GET", unknown, expect=404))["errcode"] == "M_NOT_FOUND"
    body = await client.request("PUT", unknown, token=alice, json={"visibility": "public"}, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("PUT", path, token=alice, json={"visibility": "hidden"}, expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    await client.request("PUT", path, json={"visibility": "public"}, expect=401)
    # Not in the room, then in it without power: refused.
    body = await client.request("PUT", path, token=bob, json={"visibility": "public"}, expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    await join(client, bob, room_id)
    await client.request("PUT", path, token=bob, json={"visibility": "public"}, expect=403)
    assert await client.request("GET", path) == {"visibility": "private"}
    # A server admin may, member or not.
    await client.hs.users.set_admin(carol_id, True)
    await client.request("PUT", path, token=carol, json={"visibility": "public"})
    assert await client.request("GET", path) == {"visibility": "public"}


async def three_public_rooms(client: MatrixTestClient) -> list[str]:
    """Public rooms with 3, 2 and 1 joined members, most first."""
    tokens = [(await client.user(name))[1] for name in ("alice", "bob", "carol")]
    rooms = [await new_room(client, tokens[0], visibility="public", preset="public_chat") for _ in range(3)]
    for room_id, joiners in zip(rooms, (tokens[1:], tokens[1:2], []), strict=True):
        for token in joiners:
            await join(client, token, room_id)
    return rooms


async def test_ordered_by_members_and_paginated(client: MatrixTestClient) -> None:
    rooms = await three_public_rooms(client)
    body = await client.request("GET", f"{V3}/publicRooms")
    assert ids(body) == rooms
    assert [e["num_joined_members"] for e in body["chunk"]] == [3, 2, 1]
    assert "next_batch" not in body and "prev_batch" not in body

    first = await client.request("GET", f"{V3}/publicRooms?limit=2")
    assert ids(first) == rooms[:2]
    assert first["total_room_count_estimate"] == 3
    assert "prev_batch" not in first
    second = await client.request("GET", f"{V3}/publicRooms?limit=2&since={first['next_batch']}")
    assert ids(second) == rooms[2:]
    assert "next_batch" not in second
    back = await client.request("GET", f"{V3}/publicRooms?limit=2&since={second['prev_batch']}")
    assert ids(back) == rooms[:2]
    assert "prev_batch" not in back and "next_batch" in back

    _, token = await client.user("dave")
    page = await client.request("POST", f"{V3}/publicRooms", token=token, json={"limit": 1})
    assert ids(page) == rooms[:1]
    page = await client.request(
        "POST", f"{V3}/publicRooms", token=token, json={"limit": 1, "since": page["next_batch"]}
    )
    assert ids(page) == rooms[1:2]


async def test_pages_stay_consistent_when_a_room_is_published(client: MatrixTestClient) -> None:
    rooms = await three_public_rooms(client)
    first = await client.request("GET", f"{V3}/publicRooms?limit=2")
    # A bigger room published meanwhile sorts before the page boundary: the next page does not shift.
    _, token = await client.user("erin")
    bigger = await new_room(client, token, visibility="public", preset="public_chat")
    for name in ("alice", "bob", "carol"):
        await join(client, (await client.login(name))["access_token"], bigger)
    second = await client.request("GET", f"{V3}/publicRooms?limit=2&since={first['next_batch']}")
    assert ids(second) == rooms[2:]
    assert ids(await client.request("GET", f"{V3}/publicRooms?limit=1")) == [bigger]


async def test_search_term_and_room_types(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    tea = await new_room(client, token, visibility="public", name="Tea Room")
    coffee = await new_room(client, token, visibility="public", topic="Coffee and TEA tasting")
    alias = await new_room(client, token, visibility="public", room_alias_name="teapot")
    space = await new_room(
        client, token, visibility="public", name="Drinks", creation_content={"type": "m.space"}
    )

    async def search(body: dict[str, Any]) -> list[str]:
        return sorted(ids(await client.request("POST", f"{V3}/publicRooms", token=token, json=body)))

    assert await search({"filter": {"generic_search_term": "tea"}}) == sorted([tea, coffee, alias])
    assert await search({"filter": {"generic_search_term": "  COFFEE "}}) == [coffee]
    assert await search({"filter": {"generic_search_term": "nothing"}}) == []
    assert await search({"filter": {"room_types": ["m.space"]}}) == [space]
    assert await search({"filter": {"room_types": [None]}}) == sorted([tea, coffee, alias])
    assert await search({"filter": {"room_types": []}}) == sorted([tea, coffee, alias, space])
    assert await search({}) == sorted([tea, coffee, alias, space])
    body = await client.request(
        "POST", f"{V3}/publicRooms", token=token, json={"filter": {"generic_search_term": "tea"}, "limit": 1}
    )
    assert body["total_room_count_estimate"] == 3


async def test_listing_follows_state_changes(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token, visibility="public", name="Before")
    assert (await client.request("GET", f"{V3}/publicRooms"))["chunk"][0]["name"] == "Before"
    event_id = await client.send_state(token, room_id, "m.room.name", {"name": "After"})
    assert (await client.request("GET", f"{V3}/publicRooms"))["chunk"][0]["name"] == "After"
    # A redaction does not change the state snapshot; the listing still follows it.
    await client.request(
        "PUT", f"{V3}/rooms/{room_id}/redact/{event_id}/r1", token=token, json={"reason": "spam"}
    )
    assert "name" not in (await client.request("GET", f"{V3}/publicRooms"))["chunk"][0]


async def test_other_servers_and_networks(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await new_room(client, token, visibility="public")
    assert ids(await client.request("GET", f"{V3}/publicRooms?server={SERVER_NAME}")) == [room_id]
    body = await client.request("GET", f"{V3}/publicRooms?server=other.example", expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("GET", f"{V3}/publicRooms?server=bad%20name", expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request(
        "POST", f"{V3}/publicRooms", token=token, json={"third_party_instance_id": "irc"}
    )
    assert body == {"chunk": [], "total_room_count_estimate": 0}
    body = await client.request(
        "POST",
        f"{V3}/publicRooms",
        token=token,
        json={"third_party_instance_id": "irc", "include_all_networks": True},
        expect=400,
    )
    assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("POST", f"{V3}/publicRooms", token=token, json={"include_all_networks": True})
    assert ids(body) == [room_id]


@pytest.mark.parametrize(
    ("method", "query", "body", "errcode"),
    [
        ("GET", "?since=garbage", None, "M_INVALID_PARAM"),
        ("GET", "?limit=-1", None, "M_INVALID_PARAM"),
        ("GET", "?limit=many", None, "M_INVALID_PARAM"),
        ("POST", "", {"since": "garbage"}, "M_INVALID_PARAM"),
        ("POST", "", {"limit": -1}, "M_INVALID_PARAM"),
        ("POST", "", {"limit": "ten"}, "M_BAD_JSON"),
        ("POST", "", {"filter": {"room_types": "m.space"}}, "M_BAD_JSON"),
    ],
)
async def test_bad_requests(
    client: MatrixTestClient, method: str, query: str, body: dict[str, Any] | None, errcode: str
) -> None:
    _, token = await client.user("alice")
    resp = await client.request(method, f"{V3}/publicRooms{query}", token=token, json=body, expect=400)
    assert resp["errcode"] == errcode


async def test_post_needs_a_token(client: MatrixTestClient) -> None:
    body = await client.request("POST", f"{V3}/publicRooms", json={}, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
    # A token, if given to GET, must be valid.
    body = await client.request("GET", f"{V3}/publicRooms", token="nonsense", expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
