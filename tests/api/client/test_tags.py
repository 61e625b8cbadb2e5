"""GET/PUT/DELETE /user/{userId}/rooms/{roomId}/tags[/{tag}]: room tags as m.tag account data."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from hearth.storage.account_data import AccountDataStore
from hearth.storage.streams import StreamPositions
from tests.helpers.homeserver import MatrixTestClient

ROOM = "!abcdef:test.local"


def url(user_id: str, room_id: str = ROOM, tag: str | None = None) -> str:
    base = f"/_matrix/client/v3/user/{user_id}/rooms/{room_id}/tags"
    return base if tag is None else f"{base}/{quote(tag, safe='')}"


async def test_add_list_and_remove_tags(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    assert await client.request("GET", url(alice_id), token=alice) == {"tags": {}}
    assert await client.request("PUT", url(alice_id, tag="m.favourite"), token=alice,
                                json={"order": 0.25}) == {}
    await client.request("PUT", url(alice_id, tag="u.Work"), token=alice, json={})
    await client.request("PUT", url(alice_id, tag="u.Work"), token=alice, json={"order": 1})
    await client.request("PUT", url(alice_id, tag="u.Ünïcode 🦊"), token=alice, json={"order": 0})
    tags = await client.request("GET", url(alice_id), token=alice)
    assert tags == {"tags": {"m.favourite": {"order": 0.25}, "u.Work": {"order": 1},
                             "u.Ünïcode 🦊": {"order": 0}}}
    assert await client.request("DELETE", url(alice_id, tag="u.Work"), token=alice) == {}
    await client.request("DELETE", url(alice_id, tag="u.never-set"), token=alice)
    remaining = (await client.request("GET", url(alice_id), token=alice))["tags"]
    assert set(remaining) == {"m.favourite", "u.Ünïcode 🦊"}
    # Other rooms have their own tags; r0 paths work too.
    assert await client.request("GET", url(alice_id, "!other:test.local"), token=alice) == {"tags": {}}
    r0 = f"/_matrix/client/r0/user/{alice_id}/rooms/{ROOM}/tags"
    assert "m.favourite" in (await client.request("GET", r0, token=alice))["tags"]


async def test_tags_are_the_m_tag_room_account_data(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    store = AccountDataStore(client.hs.db, await StreamPositions.load(client.hs.db))
    await client.request("PUT", url(alice_id, tag="m.lowpriority"), token=alice, json={"order": 0.5})
    account_data = f"/_matrix/client/v3/user/{alice_id}/rooms/{ROOM}/account_data/m.tag"
    stored = await client.request("GET", account_data, token=alice)
    assert stored == {"tags": {"m.lowpriority": {"order": 0.5}}}
    first = store.current_position()
    await client.request("DELETE", url(alice_id, tag="m.lowpriority"), token=alice)
    changed = await store.changed_since(alice_id, first)
    # Every change takes a new account-data stream position, so sync sees it.
    assert [(e.room_id, e.type, e.content) for e in changed] == [(ROOM, "m.tag", {"tags": {}})]
    # Tags set through room account data are served by the tags API.
    await client.request("PUT", account_data, token=alice, json={"tags": {"u.x": {"order": 0.1}}})
    assert await client.request("GET", url(alice_id), token=alice) == {"tags": {"u.x": {"order": 0.1}}}


async def test_concurrent_tag_changes_are_all_kept(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    await asyncio.gather(*(
        client.request("PUT", url(alice_id, tag=f"u.t{i}"), token=alice, json={"order": i / 10})
        for i in range(8)
    ))
    tags = (await client.request("GET", url(alice_id), token=alice))["tags"]
    assert tags == {f"u.t{i}": {"order": i / 10} for i in range(8)}


async def test_only_for_yourself(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    await client.request("PUT", url(alice_id, tag="m.favourite"), token=alice, json={})
    for method, path, body in (("GET", url(alice_id), None), ("PUT", url(alice_id, tag="x"), {}),
                               ("DELETE", url(alice_id, tag="m.favourite"), None)):
        err = await client.request(method, path, token=bob, json=body, expect=403)
        assert err["errcode"] == "M_FORBIDDEN"
    assert "m.favourite" in (await client.request("GET", url(alice_id), token=alice))["tags"]
    # Bob's own tags on the same room are his alone.
    await client.request("PUT", url(bob_id, tag="u.bob"), token=bob, json={})
    assert set((await client.request("GET", url(alice_id), token=alice))["tags"]) == {"m.favourite"}


@pytest.mark.parametrize(
    ("body", "errcode"),
    [({"order": 1.5}, "M_INVALID_PARAM"), ({"order": -0.1}, "M_INVALID_PARAM"),
     ({"order": "high"}, "M_INVALID_PARAM"), ({"order": True}, "M_INVALID_PARAM"),
     ([1, 2], "M_BAD_JSON")],
)
async def test_bad_bodies(client: MatrixTestClient, body: Any, errcode: str) -> None:
    alice_id, alice = await client.user("alice")
    err = await client.request("PUT", url(alice_id, tag="u.x"), token=alice, json=body, expect=400)
    assert err["errcode"] == errcode


async def test_bad_tags_and_rooms(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    err = await client.request("PUT", url(alice_id, tag="x" * 256), token=alice, json={}, expect=400)
    assert err["errcode"] == "M_INVALID_PARAM"
    await client.request("PUT", url(alice_id, tag="é" * 127), token=alice, json={})  # 254 bytes: fine
    err = await client.request("PUT", url(alice_id, tag="é" * 128), token=alice, json={}, expect=400)
    assert err["errcode"] == "M_INVALID_PARAM"
    err = await client.request("GET", url(alice_id, "not-a-room"), token=alice, expect=400)
    assert err["errcode"] == "M_INVALID_PARAM"
    err = await client.request("GET", url(alice_id), expect=401)
    assert err["errcode"] == "M_MISSING_TOKEN"
