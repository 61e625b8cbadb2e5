"""POST /register, GET /register/available and the registration token validity check."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.config import RateLimit, RateLimitsConfig
from hearth.errors import MatrixError
from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

REGISTER = "/_matrix/client/v3/register"
AVAILABLE = "/_matrix/client/v3/register/available"
VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"
PASSWORD = "correct horse battery"


def _body(username: str | None = "alice", auth: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"password": PASSWORD, **extra}
    if username is not None:
        body["username"] = username
    if auth is not None:
        body["auth"] = auth
    return body


async def _whoami(client: MatrixTestClient, token: str) -> dict[str, Any]:
    return await client.request("GET", "/_matrix/client/v3/account/whoami", token=token)  # type: ignore[no-any-return]


# --- open registration with m.login.dummy -----------------------------------------

async def test_register_with_dummy_auth_logs_in(client: MatrixTestClient) -> None:
    body = await client.register("alice")
    assert body["user_id"] == "@alice:test.local"
    assert body["home_server"] == "test.local"
    assert body["device_id"]
    assert "refresh_token" not in body and "expires_in_ms" not in body
    me = await _whoami(client, body["access_token"])
    assert me["user_id"] == "@alice:test.local"
    assert me["device_id"] == body["device_id"]


async def test_register_on_r0_path(client: MatrixTestClient) -> None:
    body = await client.request("POST", "/_matrix/client/r0/register",
                                json=_body("alice", {"type": "m.login.dummy"}))
    assert body["user_id"] == "@alice:test.local"


async def test_register_without_auth_returns_the_flows(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER, json=_body(), expect=401)
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert body["completed"] == []
    assert body["session"]
    assert "errcode" not in body


async def test_register_in_two_steps_with_the_session(client: MatrixTestClient) -> None:
    session = (await client.request("POST", REGISTER, json=_body(), expect=401))["session"]
    body = await client.request("POST", REGISTER,
                                json=_body(auth={"type": "m.login.dummy", "session": session}))
    assert body["user_id"] == "@alice:test.local"
    # The completed session is consumed: replaying it does not register anyone else.
    again = await client.request("POST", REGISTER,
                                 json=_body("bob", {"type": "m.login.dummy", "session": session}),
                                 expect=400)
    assert again["errcode"] == "M_UNKNOWN"


async def test_unsupported_stage_is_refused_in_the_401(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER, json=_body(auth={"type": "m.login.recaptcha"}),
                                expect=401)
    assert body["errcode"] == "M_UNRECOGNIZED"
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]


async def test_username_is_lowercased(client: MatrixTestClient) -> None:
    body = await client.register("Alice")
    assert body["user_id"] == "@alice:test.local"


async def test_missing_username_gets_a_generated_one(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER, json=_body(None, {"type": "m.login.dummy"}))
    localpart = body["user_id"][1:].split(":")[0]
    assert localpart and localpart == localpart.lower()
    other = await client.request("POST", REGISTER, json=_body(None, {"type": "m.login.dummy"}))
    assert other["user_id"] != body["user_id"]


async def test_taken_username_is_user_in_use(client: MatrixTestClient) -> None:
    await client.register("alice")
    for name in ("alice", "ALICE"):
        body = await client.request("POST", REGISTER, json=_body(name, {"type": "m.login.dummy"}),
                                    expect=400)
        assert body["errcode"] == "M_USER_IN_USE"


async def test_taken_username_is_refused_before_auth(client: MatrixTestClient) -> None:
    await client.register("alice")
    body = await client.request("POST", REGISTER, json=_body("alice"), expect=400)
    assert body["errcode"] == "M_USER_IN_USE"


@pytest.mark.parametrize("name", ["al ice", "al:ice", "émile", "a" * 300, ""])
async def test_invalid_username(client: MatrixTestClient, name: str) -> None:
    body = await client.request("POST", REGISTER, json=_body(name, {"type": "m.login.dummy"}), expect=400)
    assert body["errcode"] == "M_INVALID_USERNAME"


async def test_reserved_username_is_exclusive(make_client: ClientFactory) -> None:
    client = await make_client(reserved_usernames=["admin"])
    body = await client.request("POST", REGISTER, json=_body("admin", {"type": "m.login.dummy"}),
                                expect=400)
    assert body["errcode"] == "M_EXCLUSIVE"


async def test_password_is_required(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER,
                                json={"username": "alice", "auth": {"type": "m.login.dummy"}}, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"


async def test_empty_and_overlong_passwords_are_refused(client: MatrixTestClient) -> None:
    empty = await client.request("POST", REGISTER, json=_body(auth={"type": "m.login.dummy"}, password=""),
                                 expect=400)
    assert empty["errcode"] == "M_WEAK_PASSWORD"
    long = await client.request("POST", REGISTER,
                                json=_body(auth={"type": "m.login.dummy"}, password="x" * 513), expect=400)
    assert long["errcode"] == "M_INVALID_PARAM"


async def test_the_password_is_the_accounts_password(client: MatrixTestClient) -> None:
    await client.register("alice", password="my own password")
    body = await client.login("alice", password="my own password")
    assert body["user_id"] == "@alice:test.local"


async def test_wrongly_typed_fields_are_bad_json(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER, json={"username": 5, "password": PASSWORD,
                                                        "auth": {"type": "m.login.dummy"}}, expect=400)
    assert body["errcode"] == "M_BAD_JSON"
    body = await client.request("POST", REGISTER, json=_body(auth={"type": "m.login.dummy"},
                                                             inhibit_login="yes"), expect=400)
    assert body["errcode"] == "M_BAD_JSON"


async def test_non_json_body_is_not_json(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER, data=b"{nope", expect=400)
    assert body["errcode"] == "M_NOT_JSON"


async def test_inhibit_login_returns_no_token(client: MatrixTestClient) -> None:
    body = await client.register("alice", inhibit_login=True)
    assert body["user_id"] == "@alice:test.local"
    assert "access_token" not in body and "device_id" not in body and "refresh_token" not in body
    assert await client.hs.devices.list_for_user("@alice:test.local") == []


async def test_device_id_and_display_name_are_used(client: MatrixTestClient) -> None:
    body = await client.register("alice", device_id="MYPHONE", initial_device_display_name="Phone")
    assert body["device_id"] == "MYPHONE"
    device = await client.hs.devices.get("@alice:test.local", "MYPHONE")
    assert device is not None and device.display_name == "Phone"


async def test_overlong_device_id_is_refused(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER,
                                json=_body(auth={"type": "m.login.dummy"}, device_id="D" * 256), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_refresh_token_requested(client: MatrixTestClient) -> None:
    body = await client.register("alice", refresh_token=True)
    assert body["refresh_token"]
    assert body["expires_in_ms"] == client.hs.config.refreshable_access_token_lifetime_ms


async def test_guest_registration_is_forbidden(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER + "?kind=guest", json={}, expect=403)
    assert body["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


async def test_unknown_kind_is_invalid(client: MatrixTestClient) -> None:
    body = await client.request("POST", REGISTER + "?kind=robot", json=_body(), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_closed_registration_is_forbidden(make_client: ClientFactory) -> None:
    client = await make_client(enable_registration=False)
    body = await client.request("POST", REGISTER, json=_body(auth={"type": "m.login.dummy"}), expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
    assert not await client.hs.users.exists("@alice:test.local")


async def test_registration_is_rate_limited_per_address(make_client: ClientFactory,
                                                        fake_clock: FakeClock) -> None:
    limits = RateLimitsConfig(registration_per_address=RateLimit(per_second=0.1, burst=2))
    client = await make_client(rate_limits=limits)
    await client.register("alice")
    await client.register("bob")
    resp = await client.http.post(REGISTER, json=_body("carol", {"type": "m.login.dummy"}))
    body = await resp.json()
    assert resp.status == 429
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    assert body["retry_after_ms"] > 0
    assert "Retry-After" in resp.headers
    assert not await client.hs.users.exists("@carol:test.local")
    fake_clock.advance(body["retry_after_ms"])
    assert (await client.register("carol"))["user_id"] == "@carol:test.local"


# --- registration tokens ----------------------------------------------------------

async def _token_client(make_client: ClientFactory) -> MatrixTestClient:
    return await make_client(registration_requires_token=True)


def _token_auth(token: str, session: str | None = None) -> dict[str, Any]:
    auth = {"type": "m.login.registration_token", "token": token}
    if session:
        auth["session"] = session
    return auth


async def test_token_flow_is_advertised(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    body = await client.request("POST", REGISTER, json=_body(), expect=401)
    assert body["flows"] == [{"stages": ["m.login.registration_token"]}]


async def test_dummy_is_not_enough_when_tokens_are_required(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    body = await client.request("POST", REGISTER, json=_body(auth={"type": "m.login.dummy"}), expect=401)
    assert body["errcode"] == "M_UNRECOGNIZED"
    assert not await client.hs.users.exists("@alice:test.local")


async def test_register_with_a_token(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    await client.hs.registration_tokens.create("letmein", uses_allowed=2, expiry_ts=None)
    session = (await client.request("POST", REGISTER, json=_body(), expect=401))["session"]
    body = await client.request("POST", REGISTER, json=_body(auth=_token_auth("letmein", session)))
    assert body["user_id"] == "@alice:test.local"
    token = await client.hs.registration_tokens.get("letmein")
    assert token is not None and (token.pending, token.completed) == (0, 1)


async def test_used_up_token_is_refused(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    await client.hs.registration_tokens.create("once", uses_allowed=1, expiry_ts=None)
    await client.request("POST", REGISTER, json=_body("alice", _token_auth("once")))
    body = await client.request("POST", REGISTER, json=_body("bob", _token_auth("once")), expect=401)
    assert body["errcode"] == "M_UNAUTHORIZED"
    assert body["completed"] == []
    assert not await client.hs.users.exists("@bob:test.local")


async def test_expired_token_is_refused(make_client: ClientFactory, fake_clock: FakeClock) -> None:
    client = await _token_client(make_client)
    await client.hs.registration_tokens.create("soon", uses_allowed=None,
                                               expiry_ts=fake_clock.time_ms() + 1000)
    fake_clock.advance(1000)
    body = await client.request("POST", REGISTER, json=_body(auth=_token_auth("soon")), expect=401)
    assert body["errcode"] == "M_UNAUTHORIZED"


async def test_unknown_token_is_refused(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    body = await client.request("POST", REGISTER, json=_body(auth=_token_auth("nosuch")), expect=401)
    assert body["errcode"] == "M_UNAUTHORIZED"


async def test_token_use_is_given_back_when_the_account_cannot_be_created(
        make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await _token_client(make_client)
    await client.hs.registration_tokens.create("once", uses_allowed=1, expiry_ts=None)

    async def taken_meanwhile(*_: Any, **__: Any) -> str:
        raise MatrixError(400, "M_USER_IN_USE", "User ID already taken")

    monkeypatch.setattr(client.hs.accounts, "create_account", taken_meanwhile)
    body = await client.request("POST", REGISTER, json=_body(auth=_token_auth("once")), expect=400)
    assert body["errcode"] == "M_USER_IN_USE"
    token = await client.hs.registration_tokens.get("once")
    assert token is not None and (token.pending, token.completed) == (0, 0)


async def test_validity_of_tokens(make_client: ClientFactory, fake_clock: FakeClock) -> None:
    client = await _token_client(make_client)
    tokens = client.hs.registration_tokens
    await tokens.create("fresh", uses_allowed=None, expiry_ts=None)
    await tokens.create("once", uses_allowed=1, expiry_ts=None)
    await tokens.create("soon", uses_allowed=None, expiry_ts=fake_clock.time_ms() + 1000)
    for name, valid in (("fresh", True), ("once", True), ("soon", True), ("nosuch", False)):
        body = await client.request("GET", f"{VALIDITY}?token={name}")
        assert body == {"valid": valid}, name
    await client.request("POST", REGISTER, json=_body("alice", _token_auth("once")))
    fake_clock.advance(1000)
    for name, valid in (("fresh", True), ("once", False), ("soon", False)):
        body = await client.request("GET", f"{VALIDITY}?token={name}")
        assert body == {"valid": valid}, name


async def test_a_pending_use_makes_a_single_use_token_invalid(make_client: ClientFactory) -> None:
    client = await _token_client(make_client)
    await client.hs.registration_tokens.create("once", uses_allowed=1, expiry_ts=None)
    # A registration that passed the token stage but has not finished holds a
    # pending use; the UIA engine takes one the same way.
    await client.hs.uia.authenticate(_token_auth("once"), purpose="elsewhere",
                                     flows=[["m.login.registration_token"]])
    assert await client.request("GET", f"{VALIDITY}?token=once") == {"valid": False}


async def test_validity_needs_a_token_param(client: MatrixTestClient) -> None:
    body = await client.request("GET", VALIDITY, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"


async def test_validity_when_registration_is_closed(make_client: ClientFactory) -> None:
    client = await make_client(enable_registration=False)
    body = await client.request("GET", f"{VALIDITY}?token=abc", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"


async def test_validity_is_rate_limited(make_client: ClientFactory) -> None:
    limits = RateLimitsConfig(registration_per_address=RateLimit(per_second=0.1, burst=1))
    client = await make_client(rate_limits=limits)
    await client.request("GET", f"{VALIDITY}?token=abc")
    body = await client.request("GET", f"{VALIDITY}?token=abd", expect=429)
    assert body["errcode"] == "M_LIMIT_EXCEEDED"


# --- /register/available -------------------------------------------------------

async def test_available_username(client: MatrixTestClient) -> None:
    assert await client.request("GET", f"{AVAILABLE}?username=alice") == {"available": True}
    assert await client.request("GET", "/_matrix/client/r0/register/available?username=alice") == {
        "available": True}


async def test_taken_username_is_not_available(client: MatrixTestClient) -> None:
    await client.register("alice")
    for name in ("alice", "Alice"):
        body = await client.request("GET", f"{AVAILABLE}?username={name}", expect=400)
        assert body["errcode"] == "M_USER_IN_USE"


async def test_invalid_username_is_not_available(client: MatrixTestClient) -> None:
    body = await client.request("GET", f"{AVAILABLE}?username=no%20spaces", expect=400)
    assert body["errcode"] == "M_INVALID_USERNAME"


async def test_reserved_username_is_not_available(make_client: ClientFactory) -> None:
    client = await make_client(reserved_usernames=["admin"])
    body = await client.request("GET", f"{AVAILABLE}?username=admin", expect=400)
    assert body["errcode"] == "M_EXCLUSIVE"


async def test_available_needs_a_username(client: MatrixTestClient) -> None:
    body = await client.request("GET", AVAILABLE, expect=400)
    assert body["errcode"] == "M_MISSING_PARAM"


async def test_available_when_registration_is_closed(make_client: ClientFactory) -> None:
    client = await make_client(enable_registration=False)
    body = await client.request("GET", f"{AVAILABLE}?username=alice", expect=403)
    assert body["errcode"] == "M_FORBIDDEN"
