"""GET/POST /login: password login, identifiers, errors without user enumeration, rate limits, logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import update

from hearth.config import RateLimit, RateLimitsConfig
from hearth.storage.tables import users
from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

LOGIN = "/_matrix/client/v3/login"
PASSWORD = "correct horse battery"
ALICE = "@alice:test.local"


def _login(user: str = "alice", password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": password, **extra}


async def test_login_flows(client: MatrixTestClient) -> None:
    for version in ("v3", "r0"):
        body = await client.request("GET", f"/_matrix/client/{version}/login")
        assert {"type": "m.login.password"} in body["flows"]


@pytest.mark.parametrize("user", ["alice", "ALICE", ALICE, "@Alice:test.local", "@alice:TEST.local"])
async def test_login_with_localpart_or_user_id_in_any_case(client: MatrixTestClient, user: str) -> None:
    await client.register("alice")
    body = await client.request("POST", LOGIN, json=_login(user))
    assert body["user_id"] == ALICE
    assert body["home_server"] == "test.local"
    assert body["well_known"]["m.homeserver"]["base_url"].startswith("http")
    assert "refresh_token" not in body and "expires_in_ms" not in body
    me = await client.request("GET", "/_matrix/client/v3/account/whoami", token=body["access_token"])
    assert (me["user_id"], me["device_id"]) == (ALICE, body["device_id"])


async def test_login_with_legacy_user_field(client: MatrixTestClient) -> None:
    await client.register("alice")
    body = await client.request("POST", "/_matrix/client/r0/login",
                                json={"type": "m.login.password", "user": "alice", "password": PASSWORD})
    assert body["user_id"] == ALICE


async def test_each_login_is_a_new_device(client: MatrixTestClient) -> None:
    registered = await client.register("alice")
    first = await client.login("alice")
    second = await client.login("alice")
    assert len({registered["device_id"], first["device_id"], second["device_id"]}) == 3
    assert len(await client.hs.devices.list_for_user(ALICE)) == 3


async def test_login_with_device_id_and_display_name(client: MatrixTestClient) -> None:
    await client.register("alice", inhibit_login=True)
    body = await client.login("alice", device_id="LAPTOP", initial_device_display_name="Laptop")
    assert body["device_id"] == "LAPTOP"
    device = await client.hs.devices.get(ALICE, "LAPTOP")
    assert device is not None and device.display_name == "Laptop"
    # Logging in again on the same device keeps it (and its name).
    again = await client.login("alice", device_id="LAPTOP", initial_device_display_name="Other")
    assert again["device_id"] == "LAPTOP"
    device = await client.hs.devices.get(ALICE, "LAPTOP")
    assert device is not None and device.display_name == "Laptop"


async def test_login_with_refresh_token(client: MatrixTestClient) -> None:
    await client.register("alice")
    body = await client.login("alice", refresh_token=True)
    assert body["refresh_token"]
    assert body["expires_in_ms"] == client.hs.config.refreshable_access_token_lifetime_ms


async def test_bad_credentials_all_look_the_same(client: MatrixTestClient) -> None:
    await client.register("alice")
    await client.register("zed")
    async with client.hs.db.write() as conn:
        await conn.execute(update(users).where(users.c.user_id == "@zed:test.local").values(deactivated=True))
    wrong = await client.request("POST", LOGIN, json=_login("alice", "wrong"), expect=403)
    unknown = await client.request("POST", LOGIN, json=_login("nobody"), expect=403)
    deactivated = await client.request("POST", LOGIN, json=_login("zed"), expect=403)
    other_server = await client.request("POST", LOGIN, json=_login("@alice:elsewhere.org"), expect=403)
    assert wrong == unknown == deactivated == other_server
    assert wrong["errcode"] == "M_FORBIDDEN"


async def test_unknown_login_type(client: MatrixTestClient) -> None:
    body = await client.request("POST", LOGIN, json={"type": "m.login.magic"}, expect=400)
    assert body["errcode"] == "M_UNKNOWN"


async def test_unknown_identifier_type(client: MatrixTestClient) -> None:
    body = await client.request("POST", LOGIN, json={
        "type": "m.login.password", "identifier": {"type": "m.id.carrier_pigeon"}, "password": "x"},
        expect=400)
    assert body["errcode"] == "M_UNKNOWN"


async def test_third_party_identifiers_are_unknown_to_this_server(client: MatrixTestClient) -> None:
    for body in ({"type": "m.login.password", "password": PASSWORD,
                  "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}},
                 {"type": "m.login.password", "password": PASSWORD, "medium": "email", "address": "a@b.c"}):
        resp = await client.request("POST", LOGIN, json=body, expect=403)
        assert resp["errcode"] == "M_FORBIDDEN"


async def test_missing_fields(client: MatrixTestClient) -> None:
    no_password = await client.request("POST", LOGIN, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}}, expect=400)
    assert no_password["errcode"] == "M_MISSING_PARAM"
    no_user = await client.request("POST", LOGIN, json={"type": "m.login.password", "password": "x"},
                                   expect=400)
    assert no_user["errcode"] == "M_MISSING_PARAM"
    no_type = await client.request("POST", LOGIN, json={"password": "x"}, expect=400)
    assert no_type["errcode"] == "M_MISSING_PARAM"
    empty_user = await client.request("POST", LOGIN, json=_login(""), expect=400)
    assert empty_user["errcode"] == "M_MISSING_PARAM"


async def test_malformed_bodies(client: MatrixTestClient) -> None:
    assert (await client.request("POST", LOGIN, data=b"not json", expect=400))["errcode"] == "M_NOT_JSON"
    assert (await client.request("POST", LOGIN, json=[1], expect=400))["errcode"] == "M_BAD_JSON"
    body = await client.request("POST", LOGIN, json=_login(password=123), expect=400)  # type: ignore[arg-type]
    assert body["errcode"] == "M_BAD_JSON"


async def test_overlong_device_id(client: MatrixTestClient) -> None:
    await client.register("alice")
    body = await client.request("POST", LOGIN, json=_login(device_id="D" * 256), expect=400)
    assert body["errcode"] == "M_INVALID_PARAM"


# --- rate limits -------------------------------------------------------------------

async def test_login_is_rate_limited_per_address(make_client: ClientFactory, fake_clock: FakeClock) -> None:
    client = await make_client(rate_limits=RateLimitsConfig(
        login_per_address=RateLimit(per_second=0.1, burst=2)))
    await client.register("alice")
    await client.login("alice")
    await client.request("POST", LOGIN, json=_login("nobody"), expect=403)
    resp = await client.http.post(LOGIN, json=_login())
    body = await resp.json()
    assert resp.status == 429
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    assert body["retry_after_ms"] > 0
    assert int(resp.headers["Retry-After"]) >= 1
    fake_clock.advance(body["retry_after_ms"])
    await client.login("alice")


async def test_login_is_rate_limited_per_account(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=RateLimitsConfig(
        login_per_account=RateLimit(per_second=0.1, burst=1),
        login_per_address=RateLimit(per_second=100, burst=100)))
    await client.register("alice")
    await client.register("bob")
    await client.login("alice")
    body = await client.request("POST", LOGIN, json=_login("ALICE"), expect=429)
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    await client.login("bob")


async def test_failed_logins_are_limited_per_account(make_client: ClientFactory,
                                                     fake_clock: FakeClock) -> None:
    client = await make_client(rate_limits=RateLimitsConfig(
        failed_login_per_account=RateLimit(per_second=0.1, burst=2),
        login_per_address=RateLimit(per_second=100, burst=100),
        login_per_account=RateLimit(per_second=100, burst=100)))
    await client.register("alice")
    await client.register("bob")
    for _ in range(2):
        await client.request("POST", LOGIN, json=_login("alice", "wrong"), expect=403)
    # Now even the right password is refused until the bucket refills...
    body = await client.request("POST", LOGIN, json=_login("alice"), expect=429)
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    # ...while other accounts are unaffected...
    await client.login("bob")
    # ...and successful logins never count as failures.
    for _ in range(3):
        await client.login("bob")
    fake_clock.advance(body["retry_after_ms"])
    await client.login("alice")


async def test_guessing_unknown_users_is_limited_too(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits=RateLimitsConfig(
        failed_login_per_account=RateLimit(per_second=0.1, burst=1),
        login_per_address=RateLimit(per_second=100, burst=100)))
    await client.request("POST", LOGIN, json=_login("ghost", "a"), expect=403)
    body = await client.request("POST", LOGIN, json=_login("GHOST", "b"), expect=429)
    assert body["errcode"] == "M_LIMIT_EXCEEDED"


# --- secrets stay out of the logs ----------------------------------------------------

async def test_tokens_and_passwords_never_appear_in_logs(client: MatrixTestClient,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registered = await client.register("alice", password="p4ssw0rd-secret", refresh_token=True)
    logged_in = await client.login("alice", password="p4ssw0rd-secret", refresh_token=True)
    await client.request("POST", LOGIN, json=_login("alice", "wrong-s3cret"), expect=403)
    refreshed = await client.request("POST", "/_matrix/client/v3/refresh",
                                     json={"refresh_token": logged_in["refresh_token"]})
    await client.request("POST", "/_matrix/client/v3/logout", token=refreshed["access_token"])
    await client.request("POST", "/_matrix/client/v3/logout", token=refreshed["access_token"], expect=401)
    secrets = ["p4ssw0rd-secret", "wrong-s3cret"]
    for body in (registered, logged_in, refreshed):
        secrets += [body["access_token"], body["refresh_token"]]
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in text
