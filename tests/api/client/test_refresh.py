"""POST /refresh and expiring access tokens (soft logout)."""

from __future__ import annotations

from typing import Any

from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

REFRESH = "/_matrix/client/v3/refresh"
WHOAMI = "/_matrix/client/v3/account/whoami"


async def _refreshable(client: MatrixTestClient) -> dict[str, Any]:
    return await client.register("alice", refresh_token=True)


async def test_refresh_rotates_both_tokens(client: MatrixTestClient) -> None:
    first = await _refreshable(client)
    second = await client.request("POST", REFRESH, json={"refresh_token": first["refresh_token"]})
    assert set(second) == {"access_token", "refresh_token", "expires_in_ms"}
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_in_ms"] == client.hs.config.refreshable_access_token_lifetime_ms
    me = await client.request("GET", WHOAMI, token=second["access_token"])
    assert (me["user_id"], me["device_id"]) == ("@alice:test.local", first["device_id"])


async def test_old_refresh_token_is_dead_after_use(client: MatrixTestClient) -> None:
    first = await _refreshable(client)
    await client.request("POST", REFRESH, json={"refresh_token": first["refresh_token"]})
    body = await client.request("POST", REFRESH, json={"refresh_token": first["refresh_token"]}, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_old_access_token_is_dead_after_refresh(client: MatrixTestClient) -> None:
    first = await _refreshable(client)
    await client.request("GET", WHOAMI, token=first["access_token"])  # cached as valid
    await client.request("POST", REFRESH, json={"refresh_token": first["refresh_token"]})
    body = await client.request("GET", WHOAMI, token=first["access_token"], expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_the_new_refresh_token_works_in_turn(client: MatrixTestClient) -> None:
    token = (await _refreshable(client))["refresh_token"]
    for _ in range(3):
        token = (await client.request("POST", REFRESH, json={"refresh_token": token}))["refresh_token"]


async def test_unknown_refresh_token(client: MatrixTestClient) -> None:
    body = await client.request("POST", REFRESH, json={"refresh_token": "hrt_nope"}, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_an_access_token_is_not_a_refresh_token(client: MatrixTestClient) -> None:
    first = await _refreshable(client)
    body = await client.request("POST", REFRESH, json={"refresh_token": first["access_token"]}, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_refresh_body_errors(client: MatrixTestClient) -> None:
    assert (await client.request("POST", REFRESH, json={}, expect=400))["errcode"] == "M_MISSING_PARAM"
    assert (await client.request("POST", REFRESH, json={"refresh_token": 5}, expect=400))["errcode"] == \
        "M_BAD_JSON"
    assert (await client.request("POST", REFRESH, data=b"", expect=400))["errcode"] == "M_NOT_JSON"


async def test_expired_access_token_is_a_soft_logout(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    first = await _refreshable(client)
    await client.request("GET", WHOAMI, token=first["access_token"])
    fake_clock.advance(first["expires_in_ms"])
    body = await client.request("GET", WHOAMI, token=first["access_token"], expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert body["soft_logout"] is True
    # The refresh token still works and gives a token that does.
    second = await client.request("POST", REFRESH, json={"refresh_token": first["refresh_token"]})
    await client.request("GET", WHOAMI, token=second["access_token"])


async def test_tokens_without_refresh_never_expire(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    body = await client.register("alice")
    fake_clock.advance(365 * 24 * 3600 * 1000)
    await client.request("GET", WHOAMI, token=body["access_token"])


async def test_unknown_access_token_is_a_hard_logout(client: MatrixTestClient) -> None:
    body = await client.request("GET", WHOAMI, token="hat_nope", expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert body.get("soft_logout", False) is False
