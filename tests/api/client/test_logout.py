"""POST /logout and /logout/all."""

from __future__ import annotations

from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

LOGOUT = "/_matrix/client/v3/logout"
LOGOUT_ALL = "/_matrix/client/v3/logout/all"
WHOAMI = "/_matrix/client/v3/account/whoami"
ALICE = "@alice:test.local"


async def test_logout_kills_the_token_and_the_device(client: MatrixTestClient) -> None:
    session = await client.register("alice")
    token = session["access_token"]
    await client.request("GET", WHOAMI, token=token)
    assert await client.request("POST", LOGOUT, token=token) == {}
    body = await client.request("GET", WHOAMI, token=token, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert await client.hs.devices.get(ALICE, session["device_id"]) is None
    again = await client.request("POST", LOGOUT, token=token, expect=401)
    assert again["errcode"] == "M_UNKNOWN_TOKEN"


async def test_logout_leaves_other_sessions_alone(client: MatrixTestClient) -> None:
    first = await client.register("alice")
    second = await client.login("alice")
    await client.request("POST", "/_matrix/client/r0/logout", token=first["access_token"])
    await client.request("GET", WHOAMI, token=second["access_token"])


async def test_logout_also_kills_the_refresh_token(client: MatrixTestClient) -> None:
    session = await client.register("alice", refresh_token=True)
    await client.request("POST", LOGOUT, token=session["access_token"])
    body = await client.request("POST", "/_matrix/client/v3/refresh",
                                json={"refresh_token": session["refresh_token"]}, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_logout_works_with_an_expired_token(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    session = await client.register("alice", refresh_token=True)
    fake_clock.advance(session["expires_in_ms"])
    await client.request("POST", LOGOUT, token=session["access_token"])
    assert await client.hs.devices.get(ALICE, session["device_id"]) is None


async def test_logout_needs_a_token(client: MatrixTestClient) -> None:
    body = await client.request("POST", LOGOUT, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
    body = await client.request("POST", LOGOUT_ALL, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


async def test_logout_all_kills_every_session_of_the_user(client: MatrixTestClient) -> None:
    sessions = [await client.register("alice"), await client.login("alice"), await client.login("alice")]
    bob = await client.register("bob")
    assert await client.request("POST", LOGOUT_ALL, token=sessions[1]["access_token"]) == {}
    for session in sessions:
        body = await client.request("GET", WHOAMI, token=session["access_token"], expect=401)
        assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert await client.hs.devices.list_for_user(ALICE) == []
    await client.request("GET", WHOAMI, token=bob["access_token"])


async def test_logout_all_on_r0(client: MatrixTestClient) -> None:
    session = await client.register("alice")
    await client.request("POST", "/_matrix/client/r0/logout/all", token=session["access_token"])
    await client.request("GET", WHOAMI, token=session["access_token"], expect=401)


async def test_login_works_again_after_logout_all(client: MatrixTestClient) -> None:
    session = await client.register("alice")
    await client.request("POST", LOGOUT_ALL, token=session["access_token"])
    fresh = await client.login("alice")
    await client.request("GET", WHOAMI, token=fresh["access_token"])
