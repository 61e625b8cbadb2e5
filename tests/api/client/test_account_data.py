"""/user/{userId}/account_data/{type} and /user/{userId}/rooms/{roomId}/account_data/{type}."""

from __future__ import annotations

import pytest

from hearth.storage.account_data import AccountDataStore
from hearth.storage.streams import StreamPositions
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import make_user

ROOM = "!abcdef:test.local"


def _global(user_id: str, type_: str) -> str:
    return f"/_matrix/client/v3/user/{user_id}/account_data/{type_}"


def _room(user_id: str, type_: str, room_id: str = ROOM) -> str:
    return f"/_matrix/client/v3/user/{user_id}/rooms/{room_id}/account_data/{type_}"


async def test_put_and_get_global(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    content = {"theme": "dark", "nested": {"list": [1, 2, 3]}, "text": "héllo 🦊"}
    assert await client.request("PUT", _global(alice.user_id, "org.example.settings"),
                                token=alice.token, json=content) == {}
    assert await client.request("GET", _global(alice.user_id, "org.example.settings"),
                                token=alice.token) == content


async def test_put_replaces(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "org.example.settings")
    await client.request("PUT", url, token=alice.token, json={"a": 1})
    await client.request("PUT", url, token=alice.token, json={"b": 2})
    assert await client.request("GET", url, token=alice.token) == {"b": 2}


async def test_empty_object_is_valid_content(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "m.ignored_user_list")
    await client.request("PUT", url, token=alice.token, json={})
    assert await client.request("GET", url, token=alice.token) == {}


async def test_put_and_get_room(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("PUT", _room(alice.user_id, "m.tag"), token=alice.token,
                         json={"tags": {"u.work": {"order": 0.5}}})
    body = await client.request("GET", _room(alice.user_id, "m.tag"), token=alice.token)
    assert body == {"tags": {"u.work": {"order": 0.5}}}


async def test_room_and_global_data_are_separate(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("PUT", _room(alice.user_id, "org.example.x"), token=alice.token, json={"r": 1})
    resp = await client.request("GET", _global(alice.user_id, "org.example.x"), token=alice.token,
                                expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    await client.request("GET", _room(alice.user_id, "org.example.x", "!other:test.local"),
                         token=alice.token, expect=404)


async def test_v12_style_room_id_is_accepted(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    room_id = "!" + "A" * 43
    await client.request("PUT", _room(alice.user_id, "org.example.x", room_id), token=alice.token, json={})


async def test_r0_paths(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = f"/_matrix/client/r0/user/{alice.user_id}/account_data/org.example.x"
    await client.request("PUT", url, token=alice.token, json={"a": 1})
    assert await client.request("GET", url, token=alice.token) == {"a": 1}
    room_url = f"/_matrix/client/r0/user/{alice.user_id}/rooms/{ROOM}/account_data/org.example.x"
    await client.request("PUT", room_url, token=alice.token, json={"b": 1})
    assert await client.request("GET", room_url, token=alice.token) == {"b": 1}


async def test_each_write_takes_a_new_stream_position(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob")
    await client.request("PUT", _global(alice.user_id, "a.one"), token=alice.token, json={})
    await client.request("PUT", _room(bob.user_id, "b.two"), token=bob.token, json={})
    await client.request("PUT", _global(alice.user_id, "a.one"), token=alice.token, json={"x": 1})
    store = AccountDataStore(client.hs.db, await StreamPositions.load(client.hs.db))
    assert store.current_position() == 3
    changes = await store.changed_since(alice.user_id, 0)
    assert [(c.type, c.stream_id, c.content) for c in changes] == [("a.one", 3, {"x": 1})]


@pytest.mark.parametrize("path", ["global", "room"])
async def test_unknown_type_is_404(client: MatrixTestClient, path: str) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "org.example.none") if path == "global" else _room(
        alice.user_id, "org.example.none")
    resp = await client.request("GET", url, token=alice.token, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("path", ["global", "room"])
async def test_other_users_data_is_forbidden(client: MatrixTestClient, method: str, path: str) -> None:
    alice = await make_user(client.hs, "alice")
    mallory = await make_user(client.hs, "mallory")
    url = _global(alice.user_id, "org.example.x") if path == "global" else _room(
        alice.user_id, "org.example.x")
    await client.request("PUT", url, token=alice.token, json={"secret": 1})
    resp = await client.request(method, url, token=mallory.token, json={"evil": 1}, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert await client.request("GET", url, token=alice.token) == {"secret": 1}


@pytest.mark.parametrize("type_", ["m.fully_read", "m.push_rules"])
@pytest.mark.parametrize("path", ["global", "room"])
async def test_server_managed_types_are_refused(client: MatrixTestClient, type_: str, path: str) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, type_) if path == "global" else _room(alice.user_id, type_)
    resp = await client.request("PUT", url, token=alice.token, json={"event_id": "$x"}, expect=405)
    assert resp["errcode"] == "M_BAD_JSON"


@pytest.mark.parametrize("room_id", ["notaroom", "@alice:test.local", "!nodomain", "!room:bad_server!"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_invalid_room_id(client: MatrixTestClient, room_id: str, method: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request(method, _room(alice.user_id, "org.example.x", room_id), token=alice.token,
                                json={}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
async def test_content_must_be_an_object(client: MatrixTestClient, body: bytes) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", _global(alice.user_id, "org.example.x"), token=alice.token,
                                data=body, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"


@pytest.mark.parametrize("body", [b"", b"{oops", b"{\"a\": NaN}"])
async def test_content_not_json(client: MatrixTestClient, body: bytes) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", _global(alice.user_id, "org.example.x"), token=alice.token,
                                data=body, expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


async def test_content_with_nul_round_trips(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "org.example.x")
    await client.request("PUT", url, token=alice.token, data=b'{"a": "nul\\u0000 \\u00e9"}')
    assert await client.request("GET", url, token=alice.token) == {"a": "nul\u0000 \u00e9"}


async def test_content_with_lone_surrogate_is_bad_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "org.example.x")
    resp = await client.request("PUT", url, token=alice.token, data=b'{"b": ["\\ud800"]}', expect=400)
    assert resp["errcode"] == "M_BAD_JSON"


async def test_type_too_long(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", _global(alice.user_id, "x" * 256), token=alice.token, json={},
                                expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_huge_body_is_too_large(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    huge = b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.request("PUT", _global(alice.user_id, "org.example.x"), token=alice.token,
                                data=huge, expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("path", ["global", "room"])
async def test_needs_a_token(client: MatrixTestClient, method: str, path: str) -> None:
    url = _global("@alice:test.local", "x.y") if path == "global" else _room("@alice:test.local", "x.y")
    resp = await client.request(method, url, json={}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
    resp = await client.request(method, url, token="hat_unknown", json={}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = _global(alice.user_id, "org.example.x") + f"?access_token={alice.token}"
    await client.request("PUT", url, json={"q": 1})
    assert await client.request("GET", url) == {"q": 1}
