"""/profile/{userId} and its displayname and avatar_url fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import make_user

PROFILE = "/_matrix/client/v3/profile"


async def test_new_user_profile_has_localpart_as_displayname(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    assert await client.request("GET", f"{PROFILE}/{alice.user_id}") == {"displayname": "alice"}


async def test_profile_get_needs_no_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", f"/_matrix/client/r0/profile/{alice.user_id}/displayname")
    assert body == {"displayname": "alice"}


async def test_set_displayname(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                         json={"displayname": "Alice Liddell"})
    assert await client.request("GET", f"{PROFILE}/{alice.user_id}/displayname") == {
        "displayname": "Alice Liddell"}
    assert (await client.request("GET", f"{PROFILE}/{alice.user_id}"))["displayname"] == "Alice Liddell"


async def test_set_avatar_url(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    url = "mxc://example.org:8448/SEsfnsuifSDFSSEF_-9"
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/avatar_url", token=alice.token,
                         json={"avatar_url": url})
    assert await client.request("GET", f"{PROFILE}/{alice.user_id}/avatar_url") == {"avatar_url": url}
    assert await client.request("GET", f"{PROFILE}/{alice.user_id}") == {
        "displayname": "alice", "avatar_url": url}


@pytest.mark.parametrize("field,value", [
    ("displayname", "Alice"), ("avatar_url", "mxc://test.local/abc"),
])
@pytest.mark.parametrize("cleared", ["", None])
async def test_empty_or_null_clears_a_field(client: MatrixTestClient, field: str, value: str,
                                            cleared: str | None) -> None:
    alice = await make_user(client.hs, "alice")
    url = f"{PROFILE}/{alice.user_id}/{field}"
    await client.request("PUT", url, token=alice.token, json={field: value})
    await client.request("PUT", url, token=alice.token, json={field: cleared})
    resp = await client.request("GET", url, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    assert field not in await client.request("GET", f"{PROFILE}/{alice.user_id}")


async def test_unset_avatar_is_404(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("GET", f"{PROFILE}/{alice.user_id}/avatar_url", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("path", ["", "/displayname", "/avatar_url"])
async def test_unknown_local_user_is_404(client: MatrixTestClient, path: str) -> None:
    resp = await client.request("GET", f"{PROFILE}/@nobody:test.local{path}", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("path", ["", "/displayname", "/avatar_url"])
async def test_remote_user_is_404(client: MatrixTestClient, path: str) -> None:
    resp = await client.request("GET", f"{PROFILE}/@someone:elsewhere.example{path}", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


async def test_user_on_a_server_name_with_our_suffix_is_not_local(client: MatrixTestClient) -> None:
    await make_user(client.hs, "alice")
    resp = await client.request("GET", f"{PROFILE}/@alice:eviltest.local", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("user_id", ["alice", "@alice", "!room:test.local"])
async def test_malformed_user_id_is_invalid_param(client: MatrixTestClient, user_id: str) -> None:
    resp = await client.request("GET", f"{PROFILE}/{user_id}", expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("field,value", [
    ("displayname", "Mallory"), ("avatar_url", "mxc://test.local/evil"),
])
async def test_cannot_change_someone_elses_profile(client: MatrixTestClient, field: str, value: str) -> None:
    await make_user(client.hs, "alice")
    mallory = await make_user(client.hs, "mallory")
    resp = await client.request("PUT", f"{PROFILE}/@alice:test.local/{field}", token=mallory.token,
                                json={field: value}, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert await client.request("GET", f"{PROFILE}/@alice:test.local") == {"displayname": "alice"}


async def test_forbidden_comes_before_body_checks(client: MatrixTestClient) -> None:
    await make_user(client.hs, "alice")
    mallory = await make_user(client.hs, "mallory")
    resp = await client.request("PUT", f"{PROFILE}/@alice:test.local/displayname", token=mallory.token,
                                data=b"not json", expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("url", [
    "https://example.org/cat.png", "mxc://", "mxc://test.local", "mxc://test.local/",
    "mxc://bad_server!/abc", "mxc://test.local/abc/def", "mxc://test.local/a b",
])
async def test_avatar_url_must_be_mxc(client: MatrixTestClient, url: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/avatar_url", token=alice.token,
                                json={"avatar_url": url}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_avatar_url_length_limit(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/avatar_url", token=alice.token,
                                json={"avatar_url": "mxc://test.local/" + "a" * 1000}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("name", ["x" * 257, "a\u0000b", "lone \udc00"])
async def test_displayname_limits(client: MatrixTestClient, name: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                                json={"displayname": name}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_displayname_at_the_limit_is_fine(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    name = "é" * 256
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                         json={"displayname": name})
    assert (await client.request("GET", f"{PROFILE}/{alice.user_id}"))["displayname"] == name


@pytest.mark.parametrize("field", ["displayname", "avatar_url"])
async def test_missing_field_in_body(client: MatrixTestClient, field: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/{field}", token=alice.token,
                                json={"other": "x"}, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"
    assert field in resp["error"]


@pytest.mark.parametrize("field,value", [
    ("displayname", 5), ("displayname", ["a"]), ("avatar_url", {"url": "mxc://a/b"}), ("avatar_url", True),
])
async def test_wrong_type_names_the_field(client: MatrixTestClient, field: str, value: Any) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/{field}", token=alice.token,
                                json={field: value}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert field in resp["error"]


async def test_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                                data=b"Alice", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


async def test_huge_body_is_too_large(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    huge = b'{"displayname": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                                data=huge, expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


@pytest.mark.parametrize("field", ["displayname", "avatar_url"])
async def test_put_needs_a_token(client: MatrixTestClient, field: str) -> None:
    alice = await make_user(client.hs, "alice")
    url = f"{PROFILE}/{alice.user_id}/{field}"
    resp = await client.request("PUT", url, json={field: ""}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
    resp = await client.request("PUT", url, token="hat_unknown", json={field: ""}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_put_accepts_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname?access_token={alice.token}",
                         json={"displayname": "Al"})
    assert (await client.request("GET", f"{PROFILE}/{alice.user_id}"))["displayname"] == "Al"


# --- changes reach the user's rooms ------------------------------------------------


async def _member(client: MatrixTestClient, token: str, room_id: str, user_id: str) -> Any:
    return await client.request(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.member/{user_id}", token=token)


async def _joined(client: MatrixTestClient, token: str, room_id: str) -> Any:
    body = await client.request("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members", token=token)
    return body["joined"]


async def test_displayname_change_reaches_every_joined_room(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob")
    own = await client.create_room(bob.token, room_version="10")
    others = [await client.create_room(alice.token, preset="public_chat") for _ in range(2)]
    left = await client.create_room(alice.token, preset="public_chat")
    for room_id in [*others, left]:
        await client.request("POST", f"/_matrix/client/v3/join/{room_id}", token=bob.token, json={})
    await client.request("POST", f"/_matrix/client/v3/rooms/{left}/leave", token=bob.token, json={})

    await client.request("PUT", f"{PROFILE}/{bob.user_id}/displayname", token=bob.token,
                         json={"displayname": "Robert"})

    for room_id in [own, *others]:
        assert await _member(client, bob.token, room_id, bob.user_id) == {
            "membership": "join", "displayname": "Robert"}
        # Another member sees the new name too.
        reader = bob.token if room_id == own else alice.token
        assert (await _joined(client, reader, room_id))[bob.user_id] == {"display_name": "Robert"}
    # A room Bob left keeps his leave.
    gone = await _member(client, alice.token, left, bob.user_id)
    assert gone["membership"] == "leave"
    assert bob.user_id not in await _joined(client, alice.token, left)


async def test_avatar_change_and_clear_reach_joined_rooms(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    room_id = await client.create_room(alice.token)
    url = "mxc://test.local/portrait"
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/avatar_url", token=alice.token,
                         json={"avatar_url": url})
    assert await _member(client, alice.token, room_id, alice.user_id) == {
        "membership": "join", "displayname": "alice", "avatar_url": url}
    assert (await _joined(client, alice.token, room_id))[alice.user_id] == {
        "display_name": "alice", "avatar_url": url}
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/avatar_url", token=alice.token,
                         json={"avatar_url": None})
    assert await _member(client, alice.token, room_id, alice.user_id) == {
        "membership": "join", "displayname": "alice"}


async def test_setting_the_same_displayname_sends_no_member_event(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    room_id = await client.create_room(alice.token)
    sync = await client.request("GET", "/_matrix/client/v3/sync", token=alice.token)
    await client.request("PUT", f"{PROFILE}/{alice.user_id}/displayname", token=alice.token,
                         json={"displayname": "alice"})
    after = await client.request("GET", f"/_matrix/client/v3/sync?since={sync['next_batch']}&timeout=0",
                                 token=alice.token)
    assert room_id not in after.get("rooms", {}).get("join", {})
