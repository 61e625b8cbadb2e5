"""POST /user_directory/search: who can be found, matching, ranking, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from hearth.app import build_app
from hearth.homeserver import Homeserver
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient, make_config
from tests.helpers.timeline import V3, join, leave

SEARCH = f"{V3}/user_directory/search"


async def search(client: MatrixTestClient, token: str, term: str, *, expect: int = 200, **extra: Any) -> Any:
    body = {"search_term": term, **extra}
    return await client.request("POST", SEARCH, token=token, json=body, expect=expect)


def user_ids(body: dict[str, Any]) -> list[str]:
    return [r["user_id"] for r in body["results"]]


async def set_name(client: MatrixTestClient, user_id: str, token: str, name: str) -> None:
    await client.request("PUT", f"{V3}/profile/{user_id}/displayname", token=token,
                         json={"displayname": name})


async def test_users_sharing_a_room_are_found(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, _ = await client.user("carol")
    room_id = await client.create_room(alice, preset="private_chat")
    # Carol shares no room with Alice: not found. Bob is found once he joins.
    assert user_ids(await search(client, alice, "carol")) == []
    assert user_ids(await search(client, alice, "bob")) == []
    await client.request("POST", f"{V3}/rooms/{room_id}/invite", token=alice, json={"user_id": bob_id})
    await join(client, bob, room_id)
    body = await search(client, alice, "bob")
    assert body == {"results": [{"user_id": bob_id, "display_name": "bob"}], "limited": False}
    assert user_ids(await search(client, bob, "ALICE")) == [alice_id]  # case-insensitive
    await leave(client, bob, room_id)
    assert user_ids(await search(client, alice, "bob")) == []
    assert carol_id


async def test_members_of_public_rooms_are_found_by_everyone(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    _, eve = await client.user("eve")
    public = await client.create_room(alice, preset="public_chat")
    assert user_ids(await search(client, eve, "alice")) == [alice_id]
    # Making the room invite-only takes its members out of everyone's directory...
    await client.send_state(alice, public, "m.room.join_rules", {"join_rule": "invite"})
    assert user_ids(await search(client, eve, "alice")) == []
    # ...and world-readable history puts them back.
    await client.send_state(alice, public, "m.room.history_visibility",
                            {"history_visibility": "world_readable"})
    assert user_ids(await search(client, eve, "alice")) == [alice_id]


async def test_display_names_match_and_are_returned(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    await client.create_room(alice, preset="public_chat")
    await set_name(client, alice_id, alice, "Wonder Woman")
    await client.request("PUT", f"{V3}/profile/{alice_id}/avatar_url", token=alice,
                         json={"avatar_url": "mxc://test.local/abc"})
    body = await search(client, bob, "woman")
    assert body["results"] == [{"user_id": alice_id, "display_name": "Wonder Woman",
                                "avatar_url": "mxc://test.local/abc"}]
    # Every word must match, in the name or the user ID.
    assert user_ids(await search(client, bob, "wonder alice")) == [alice_id]
    assert user_ids(await search(client, bob, "wonder bob")) == []
    # LIKE wildcards in the term are literal.
    assert user_ids(await search(client, bob, "%")) == []
    assert user_ids(await search(client, bob, "w_man")) == []
    assert bob_id


async def test_ranking_and_limit(client: MatrixTestClient) -> None:
    _, searcher = await client.user("searcher")
    room_id = await client.create_room(searcher, preset="public_chat")
    made: dict[str, str] = {}
    for name, display in (("zed", "Big Sam"), ("samwise", None), ("xsamx", None), ("amos", "Sam")):
        user_id, token = await client.user(name)
        if display:
            await set_name(client, user_id, token, display)
        await join(client, token, room_id)
        made[name] = user_id
    body = await search(client, searcher, "sam")
    # A prefix of the display name or localpart first, then a word start, then anywhere; ties by user ID.
    assert user_ids(body) == [made["amos"], made["samwise"], made["zed"], made["xsamx"]]
    limited = await search(client, searcher, "sam", limit=2)
    assert user_ids(limited) == [made["amos"], made["samwise"]] and limited["limited"] is True
    assert body["limited"] is False


async def test_deactivated_users_are_not_listed(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await client.request("POST", f"{V3}/account/deactivate", token=bob,
                         json={"auth": {"type": "m.login.password", "password": "correct horse battery",
                                        "identifier": {"type": "m.id.user", "user": "bob"}}})
    assert user_ids(await search(client, alice, "bob")) == []
    assert alice_id


async def test_bad_requests(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    assert (await search(client, alice, "x", limit=-1, expect=400))["errcode"] == "M_INVALID_PARAM"
    err = await client.request("POST", SEARCH, token=alice, json={"limit": 3}, expect=400)
    assert err["errcode"] == "M_MISSING_PARAM"
    err = await client.request("POST", SEARCH, token=alice, json={"search_term": 5}, expect=400)
    assert err["errcode"] == "M_BAD_JSON"
    assert await search(client, alice, "   ") == {"results": [], "limited": False}
    assert (await client.request("POST", SEARCH, json={"search_term": "a"}, expect=401))["errcode"] == \
        "M_MISSING_TOKEN"


async def test_search_all_local_users_option(
    tmp_path: Path, database_url: str, fake_clock: FakeClock, aiohttp_client: AiohttpClient
) -> None:
    config = make_config(tmp_path, database_url, user_directory_search_all_users=True)
    hs = await Homeserver.start(config, clock=fake_clock)
    try:
        client = MatrixTestClient(await aiohttp_client(build_app(hs)), hs)
        _, alice = await client.user("alice")
        loner_id, _ = await client.user("loner")
        assert user_ids(await search(client, alice, "loner")) == [loner_id]
    finally:
        await hs.close()
