"""/account/whoami, /account/password and /account/deactivate, plus the shared request errors."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.errors import MatrixError
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import PASSWORD, UserSession, login_device, make_user, password_auth

WHOAMI = "/_matrix/client/v3/account/whoami"
PASSWORD_URL = "/_matrix/client/v3/account/password"
DEACTIVATE = "/_matrix/client/v3/account/deactivate"


async def _password_ok(client: MatrixTestClient, user_id: str, password: str) -> bool:
    try:
        await client.hs.login.check_password({"type": "m.id.user", "user": user_id}, password)
    except MatrixError:
        return False
    return True


async def _start_uia(client: MatrixTestClient, path: str, token: str | None, body: dict[str, Any]) -> str:
    """Send the request without auth; check the 401 lists the password flow; return the session."""
    challenge = await client.request("POST", path, token=token, json=body, expect=401)
    assert {"stages": ["m.login.password"]} in challenge["flows"]
    assert "errcode" not in challenge
    assert isinstance(challenge["session"], str)
    return str(challenge["session"])


# --- whoami -----------------------------------------------------------------------


async def test_whoami_names_user_and_device(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", WHOAMI, token=alice.token)
    assert body == {"user_id": alice.user_id, "device_id": alice.device_id, "is_guest": False}


async def test_whoami_on_r0_path(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", "/_matrix/client/r0/account/whoami", token=alice.token)
    assert body["user_id"] == alice.user_id


async def test_whoami_accepts_deprecated_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", f"{WHOAMI}?access_token={alice.token}")
    assert body["user_id"] == alice.user_id


async def test_whoami_without_token_is_missing_token(client: MatrixTestClient) -> None:
    body = await client.request("GET", WHOAMI, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


async def test_whoami_with_unknown_token(client: MatrixTestClient) -> None:
    body = await client.request("GET", WHOAMI, token="hat_nonsense", expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_whoami_with_non_bearer_header_is_missing_token(client: MatrixTestClient) -> None:
    body = await client.request("GET", WHOAMI, headers={"Authorization": "Basic abc"}, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


# --- password change ----------------------------------------------------------------


async def test_change_password_with_uia(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = {"new_password": "new secret words"}
    session = await _start_uia(client, PASSWORD_URL, alice.token, body)
    await client.request("POST", PASSWORD_URL, token=alice.token,
                         json={**body, "auth": password_auth(alice.user_id, session)})
    assert await _password_ok(client, alice.user_id, "new secret words")
    assert not await _password_ok(client, alice.user_id, PASSWORD)


async def test_change_password_logs_out_other_devices_but_not_this_one(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    phone = await login_device(client.hs, alice.user_id)
    await client.request("GET", WHOAMI, token=phone.token)  # cached in the token cache
    await client.request("POST", PASSWORD_URL, token=alice.token, json={
        "new_password": "new secret words", "auth": password_auth(alice.user_id, None)})
    body = await client.request("GET", WHOAMI, token=phone.token, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    await client.request("GET", WHOAMI, token=alice.token)
    assert [d.device_id for d in await client.hs.devices.list_for_user(alice.user_id)] == [alice.device_id]


async def test_change_password_can_keep_other_devices(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    phone = await login_device(client.hs, alice.user_id)
    await client.request("POST", PASSWORD_URL, token=alice.token, json={
        "new_password": "new secret words", "logout_devices": False,
        "auth": password_auth(alice.user_id, None)})
    await client.request("GET", WHOAMI, token=phone.token)


async def test_change_password_wrong_password_is_forbidden_in_uia_body(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = {"new_password": "new secret words"}
    session = await _start_uia(client, PASSWORD_URL, alice.token, body)
    failed = await client.request("POST", PASSWORD_URL, token=alice.token, json={
        **body, "auth": password_auth(alice.user_id, session, password="wrong")}, expect=401)
    assert failed["errcode"] == "M_FORBIDDEN"
    assert failed["session"] == session
    assert failed["flows"]
    assert await _password_ok(client, alice.user_id, PASSWORD)


async def test_change_password_cannot_use_someone_elses_password(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob")
    failed = await client.request("POST", PASSWORD_URL, token=alice.token, json={
        "new_password": "pwned", "auth": password_auth(bob.user_id, None)}, expect=401)
    assert failed["errcode"] == "M_FORBIDDEN"
    assert await _password_ok(client, alice.user_id, PASSWORD)
    assert await _password_ok(client, bob.user_id, PASSWORD)


async def test_change_password_without_token_uses_identified_user(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = {"new_password": "new secret words"}
    session = await _start_uia(client, PASSWORD_URL, None, body)
    await client.request("POST", PASSWORD_URL, json={**body, "auth": password_auth(alice.user_id, session)})
    assert await _password_ok(client, alice.user_id, "new secret words")
    # No device asked, so every device is logged out.
    resp = await client.request("GET", WHOAMI, token=alice.token, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_change_password_requires_new_password(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("POST", PASSWORD_URL, token=alice.token,
                                json={"auth": password_auth(alice.user_id, None)}, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"
    assert "new_password" in body["error"]


@pytest.mark.parametrize("field,value", [("new_password", 12345), ("logout_devices", "yes")])
async def test_change_password_wrong_types_name_the_field(client: MatrixTestClient, field: str,
                                                          value: Any) -> None:
    alice = await make_user(client.hs, "alice")
    body: dict[str, Any] = {"new_password": "new secret words", field: value}
    resp = await client.request("POST", PASSWORD_URL, token=alice.token, json=body, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert field in resp["error"]


@pytest.mark.parametrize("password", ["", "x" * 513])
async def test_change_password_rejects_unusable_passwords(client: MatrixTestClient, password: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", PASSWORD_URL, token=alice.token,
                                json={"new_password": password}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_change_password_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", PASSWORD_URL, token=alice.token, data=b"{not json",
                                expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


async def test_change_password_with_unknown_token(client: MatrixTestClient) -> None:
    resp = await client.request("POST", PASSWORD_URL, token="hat_bogus",
                                json={"new_password": "x"}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_change_password_session_cannot_be_used_for_deactivation(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    session = await _start_uia(client, PASSWORD_URL, alice.token, {"new_password": "abc def"})
    resp = await client.request("POST", DEACTIVATE, token=alice.token,
                                json={"auth": password_auth(alice.user_id, session)}, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    await client.request("GET", WHOAMI, token=alice.token)


async def test_huge_body_is_too_large(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    huge = b'{"new_password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.request("POST", PASSWORD_URL, token=alice.token, data=huge, expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


# --- deactivation -------------------------------------------------------------------


async def test_deactivate_with_uia_kills_every_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    phone = await login_device(client.hs, alice.user_id)
    await client.request("GET", WHOAMI, token=phone.token)
    session = await _start_uia(client, DEACTIVATE, alice.token, {})
    body = await client.request("POST", DEACTIVATE, token=alice.token,
                                json={"auth": password_auth(alice.user_id, session)})
    assert body == {"id_server_unbind_result": "success"}
    for token in (alice.token, phone.token):
        resp = await client.request("GET", WHOAMI, token=token, expect=401)
        assert resp["errcode"] == "M_UNKNOWN_TOKEN"
    account = await client.hs.users.get(alice.user_id)
    assert account is not None and account.deactivated and account.password_hash is None
    assert await client.hs.devices.list_for_user(alice.user_id) == []


async def test_deactivated_user_cannot_log_in(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("POST", DEACTIVATE, token=alice.token,
                         json={"auth": password_auth(alice.user_id, None)})
    assert not await _password_ok(client, alice.user_id, PASSWORD)
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD}
    resp = await client.request("POST", "/_matrix/client/v3/login", json=body, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"


async def test_deactivate_wrong_password_changes_nothing(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", DEACTIVATE, token=alice.token, json={
        "auth": password_auth(alice.user_id, None, password="wrong")}, expect=401)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert resp["flows"] == [{"stages": ["m.login.password"]}]
    await client.request("GET", WHOAMI, token=alice.token)


async def test_deactivate_without_erase_keeps_data_but_hides_profile(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.hs.account_data.put(alice.user_id, alice.user_id, "org.example.settings", {"a": 1})
    await client.request("POST", DEACTIVATE, token=alice.token,
                         json={"auth": password_auth(alice.user_id, None)})
    resp = await client.request("GET", f"/_matrix/client/v3/profile/{alice.user_id}", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    stored = await client.hs.account_data.get(alice.user_id, alice.user_id, "org.example.settings")
    assert stored == {"a": 1}
    profile = await client.hs.users.get_profile(alice.user_id, include_deactivated=True)
    assert profile is not None and profile.displayname == "alice"
    assert not await client.hs.users.is_erased(alice.user_id)


async def test_deactivate_with_erase_removes_profile_account_data_and_filters(
        client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.hs.profiles.set_field(alice.user_id, alice.user_id, "avatar_url", "mxc://test.local/abc")
    await client.hs.account_data.put(alice.user_id, alice.user_id, "org.example.settings", {"a": 1})
    await client.hs.account_data.put(alice.user_id, alice.user_id, "m.tag", {"tags": {}},
                                     room_id="!room:test.local")
    filter_id = await client.hs.filters.create(alice.user_id, alice.user_id, {"room": {}})
    await client.request("POST", DEACTIVATE, token=alice.token,
                         json={"auth": password_auth(alice.user_id, None), "erase": True})
    profile = await client.hs.users.get_profile(alice.user_id, include_deactivated=True)
    assert profile is not None and profile.displayname is None and profile.avatar_url is None
    assert await client.hs.users.is_erased(alice.user_id)
    with pytest.raises(MatrixError):
        await client.hs.account_data.get(alice.user_id, alice.user_id, "org.example.settings")
    with pytest.raises(MatrixError):
        await client.hs.filters.get_json(alice.user_id, alice.user_id, filter_id)


async def test_deactivate_without_token_uses_identified_user(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("POST", DEACTIVATE, json={"auth": password_auth(alice.user_id, None)})
    account = await client.hs.users.get(alice.user_id)
    assert account is not None and account.deactivated


async def test_deactivate_without_auth_and_without_token_asks_for_password(client: MatrixTestClient) -> None:
    challenge = await client.request("POST", DEACTIVATE, json={}, expect=401)
    assert challenge["flows"] == [{"stages": ["m.login.password"]}]


@pytest.mark.parametrize("field,value", [("erase", "yes"), ("id_server", 5)])
async def test_deactivate_wrong_types_name_the_field(client: MatrixTestClient, field: str,
                                                     value: Any) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", DEACTIVATE, token=alice.token, json={field: value}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert field in resp["error"]
    await client.request("GET", WHOAMI, token=alice.token)


async def test_deactivate_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", DEACTIVATE, token=alice.token, data=b"nope", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


async def test_deactivate_with_unknown_token(client: MatrixTestClient) -> None:
    resp = await client.request("POST", DEACTIVATE, token="hat_bogus", json={}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


# --- deactivation: rooms and pushers ----------------------------------------------------


async def _membership(client: MatrixTestClient, token: str, room_id: str, user_id: str) -> str:
    body = await client.request(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.member/{user_id}", token=token)
    return str(body["membership"])


async def _rooms_of_bob(client: MatrixTestClient) -> tuple[UserSession, UserSession, dict[str, str]]:
    """Alice's rooms: Bob joined to two (one a v10), invited to one, knocking on one."""
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob")
    rooms = {
        "joined": await client.create_room(alice.token, preset="public_chat"),
        "joined_v10": await client.create_room(alice.token, preset="public_chat", room_version="10"),
        "invited": await client.create_room(alice.token),
        "knocked": await client.create_room(alice.token),
        "untouched": await client.create_room(alice.token, preset="public_chat"),
    }
    for key in ("joined", "joined_v10"):
        await client.request("POST", f"/_matrix/client/v3/join/{rooms[key]}", token=bob.token, json={})
    await client.request("POST", f"/_matrix/client/v3/rooms/{rooms['invited']}/invite", token=alice.token,
                         json={"user_id": bob.user_id})
    await client.send_state(alice.token, rooms["knocked"], "m.room.join_rules", {"join_rule": "knock"})
    await client.request("POST", f"/_matrix/client/v3/knock/{rooms['knocked']}", token=bob.token, json={})
    return alice, bob, rooms


async def test_deactivation_leaves_rooms_rejects_invites_and_retracts_knocks(
        client: MatrixTestClient) -> None:
    alice, bob, rooms = await _rooms_of_bob(client)
    bob_id = bob.user_id
    await client.request("POST", DEACTIVATE, token=bob.token, json={"auth": password_auth(bob_id, None)})
    for key in ("joined", "joined_v10", "invited", "knocked"):
        assert await _membership(client, alice.token, rooms[key], bob_id) == "leave", key
    for key in ("joined", "joined_v10"):
        joined = await client.request(
            "GET", f"/_matrix/client/v3/rooms/{rooms[key]}/joined_members", token=alice.token)
        assert list(joined["joined"]) == [alice.user_id]
    # The leave is Bob's own, with no profile in it.
    state = await client.request("GET", f"/_matrix/client/v3/rooms/{rooms['joined']}/state",
                                 token=alice.token)
    leave = next(e for e in state if e["type"] == "m.room.member" and e["state_key"] == bob_id)
    assert leave["sender"] == bob_id and leave["content"] == {"membership": "leave"}
    for membership in ("join", "invite", "knock"):
        assert await client.hs.room_store.rooms_for_user(bob_id, membership) == []
    # Alice's rooms are otherwise unchanged.
    assert await _membership(client, alice.token, rooms["untouched"], alice.user_id) == "join"


async def test_deactivation_with_erase_leaves_rooms_and_clears_profile(client: MatrixTestClient) -> None:
    alice, bob, rooms = await _rooms_of_bob(client)
    bob_id = bob.user_id
    await client.request("PUT", f"/_matrix/client/v3/profile/{bob_id}/avatar_url", token=bob.token,
                         json={"avatar_url": "mxc://test.local/bob"})
    await client.request("POST", DEACTIVATE, token=bob.token,
                         json={"auth": password_auth(bob_id, None), "erase": True})
    assert await client.hs.room_store.rooms_for_user(bob_id, "join") == []
    assert await _membership(client, alice.token, rooms["joined"], bob_id) == "leave"
    profile = await client.hs.users.get_profile(bob_id, include_deactivated=True)
    assert profile is not None and profile.displayname is None and profile.avatar_url is None
    resp = await client.request("GET", f"/_matrix/client/v3/profile/{bob_id}", expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


async def test_deactivation_skips_a_room_that_fails(
        client: MatrixTestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, rooms = await _rooms_of_bob(client)
    bob_id = bob.user_id
    real_leave = client.hs.membership.leave

    async def leave(user_id: str, room_id: str, **kwargs: Any) -> str | None:
        if room_id == rooms["joined"]:
            raise RuntimeError("disk on fire")
        return await real_leave(user_id, room_id, **kwargs)

    monkeypatch.setattr(client.hs.membership, "leave", leave)
    body = await client.request("POST", DEACTIVATE, token=bob.token,
                                json={"auth": password_auth(bob_id, None)})
    assert body == {"id_server_unbind_result": "success"}
    assert await _membership(client, alice.token, rooms["joined"], bob_id) == "join"
    for key in ("joined_v10", "invited", "knocked"):
        assert await _membership(client, alice.token, rooms[key], bob_id) == "leave", key
    account = await client.hs.users.get(bob_id)
    assert account is not None and account.deactivated


async def test_deactivation_deletes_pushers(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob")
    for pushkey in ("key-1", "key-2"):
        await client.request("POST", "/_matrix/client/v3/pushers/set", token=bob.token, json={
            "kind": "http", "app_id": "com.example.app", "pushkey": pushkey, "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "append": True,
            "data": {"url": "https://push.example.com/_matrix/push/v1/notify"},
        })
    await client.request("POST", "/_matrix/client/v3/pushers/set", token=alice.token, json={
        "kind": "http", "app_id": "com.example.app", "pushkey": "alice-key", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en",
        "data": {"url": "https://push.example.com/_matrix/push/v1/notify"},
    })
    pushers = client.hs.pushers
    assert len(await pushers.pushers_of(bob.user_id)) == 2
    assert pushers.has_http_pushers(bob.user_id)

    await client.request("POST", DEACTIVATE, token=bob.token,
                         json={"auth": password_auth(bob.user_id, None)})
    assert await pushers.pushers_of(bob.user_id) == []
    assert not pushers.has_http_pushers(bob.user_id)
    # Someone else's pusher is untouched.
    assert [p["pushkey"] for p in await pushers.pushers_of(alice.user_id)] == ["alice-key"]
    assert pushers.has_http_pushers(alice.user_id)


async def _crash_after_marking(client: MatrixTestClient, user_id: str) -> None:
    """What a crash right after deactivation's first transaction leaves: the account marked, nothing else."""
    async with client.hs.db.write() as conn:
        await client.hs.users.deactivate(conn, user_id, erase=False)


async def test_resume_finishes_a_deactivation_cut_short(client: MatrixTestClient) -> None:
    alice, bob, rooms = await _rooms_of_bob(client)
    bob_id = bob.user_id
    await client.request("POST", "/_matrix/client/v3/pushers/set", token=bob.token, json={
        "kind": "http", "app_id": "com.example.app", "pushkey": "bob-key", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en",
        "data": {"url": "https://push.example.com/_matrix/push/v1/notify"},
    })
    await _crash_after_marking(client, bob_id)
    assert await _membership(client, alice.token, rooms["joined"], bob_id) == "join"

    assert await client.hs.deactivation.resume() == [bob_id]
    for key in ("joined", "joined_v10", "invited", "knocked"):
        assert await _membership(client, alice.token, rooms[key], bob_id) == "leave", key
    assert await client.hs.pushers.pushers_of(bob_id) == []
    # Nothing is left to finish; Alice, still active, was never touched.
    assert await client.hs.deactivation.resume() == []
    assert await _membership(client, alice.token, rooms["untouched"], alice.user_id) == "join"


async def test_resume_finds_an_account_left_with_only_pushers(client: MatrixTestClient) -> None:
    carol = await make_user(client.hs, "carol")
    await client.request("POST", "/_matrix/client/v3/pushers/set", token=carol.token, json={
        "kind": "http", "app_id": "com.example.app", "pushkey": "carol-key", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en",
        "data": {"url": "https://push.example.com/_matrix/push/v1/notify"},
    })
    await _crash_after_marking(client, carol.user_id)
    assert await client.hs.deactivation.resume() == [carol.user_id]
    assert await client.hs.pushers.pushers_of(carol.user_id) == []
    assert not client.hs.pushers.has_http_pushers(carol.user_id)
