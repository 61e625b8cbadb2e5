"""/account/3pid*, the 3PID requestToken endpoints, and /thirdparty/* on a server with no 3PIDs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import make_user

BASE = "/_matrix/client/v3"
EMAIL_TOKEN = {"client_secret": "s3cret", "email": "alice@example.org", "send_attempt": 1}
MSISDN_TOKEN = {"client_secret": "s3cret", "country": "GB", "phone_number": "07700900001",
                "send_attempt": 1}
CREDS = {"client_secret": "s3cret", "sid": "abc", "id_server": "id.example.org", "id_access_token": "t"}
REMOVE = {"medium": "email", "address": "alice@example.org"}

# (path, valid body, status, errcode) for every refusing POST endpoint.
REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("/account/3pid", {"three_pid_creds": CREDS}, 403, "M_THREEPID_AUTH_FAILED"),
    ("/account/3pid/add", {"client_secret": "s3cret", "sid": "abc"}, 400, "M_THREEPID_AUTH_FAILED"),
    ("/account/3pid/bind", CREDS, 403, "M_SERVER_NOT_TRUSTED"),
    ("/account/3pid/delete", REMOVE, 400, "M_THREEPID_NOT_FOUND"),
    ("/account/3pid/unbind", {**REMOVE, "id_server": "id.example.org"}, 400, "M_THREEPID_NOT_FOUND"),
    ("/account/3pid/email/requestToken", EMAIL_TOKEN, 403, "M_THREEPID_DENIED"),
    ("/account/3pid/msisdn/requestToken", MSISDN_TOKEN, 403, "M_THREEPID_DENIED"),
]
ANONYMOUS_TOKEN_REQUESTS = [
    ("/register/email/requestToken", EMAIL_TOKEN),
    ("/register/msisdn/requestToken", MSISDN_TOKEN),
    ("/account/password/email/requestToken", EMAIL_TOKEN),
    ("/account/password/msisdn/requestToken", MSISDN_TOKEN),
]


async def test_no_threepids(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    assert await client.request("GET", f"{BASE}/account/3pid", token=alice.token) == {"threepids": []}
    body = await client.request("GET", f"/_matrix/client/r0/account/3pid?access_token={alice.token}")
    assert body == {"threepids": []}


@pytest.mark.parametrize("version", ["v3", "r0"])
@pytest.mark.parametrize("path,body,status,errcode", REFUSALS)
async def test_threepid_changes_are_refused(client: MatrixTestClient, version: str, path: str,
                                            body: dict[str, Any], status: int, errcode: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", f"/_matrix/client/{version}{path}", token=alice.token, json=body,
                                expect=status)
    assert resp["errcode"] == errcode
    assert resp["error"]


@pytest.mark.parametrize("path,body,status,errcode", REFUSALS)
async def test_threepid_endpoints_need_a_token(client: MatrixTestClient, path: str, body: dict[str, Any],
                                               status: int, errcode: str) -> None:
    resp = await client.request("POST", f"{BASE}{path}", json=body, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
    resp = await client.request("POST", f"{BASE}{path}", token="hat_nope", json=body, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_list_needs_a_token(client: MatrixTestClient) -> None:
    resp = await client.request("GET", f"{BASE}/account/3pid", expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("path,body,status,errcode", REFUSALS)
async def test_threepid_bodies_are_checked_first(client: MatrixTestClient, path: str, body: dict[str, Any],
                                                 status: int, errcode: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", f"{BASE}{path}", token=alice.token, json={}, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"
    resp = await client.request("POST", f"{BASE}{path}", token=alice.token, data=b"{{", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


@pytest.mark.parametrize("path,body,field", [
    ("/account/3pid/email/requestToken", {**EMAIL_TOKEN, "send_attempt": "1"}, "send_attempt"),
    ("/account/3pid/delete", {**REMOVE, "address": 5}, "address"),
    ("/account/3pid/delete", {**REMOVE, "medium": "pigeon"}, "medium"),
    ("/account/3pid", {"three_pid_creds": {**CREDS, "sid": 1}}, "three_pid_creds.sid"),
])
async def test_threepid_wrong_types_name_the_field(client: MatrixTestClient, path: str, body: dict[str, Any],
                                                   field: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", f"{BASE}{path}", token=alice.token, json=body, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert field in resp["error"]


@pytest.mark.parametrize("path,body", ANONYMOUS_TOKEN_REQUESTS)
async def test_registration_and_reset_tokens_are_refused_without_login(client: MatrixTestClient, path: str,
                                                               body: dict[str, Any]) -> None:
    resp = await client.request("POST", f"{BASE}{path}", json=body, expect=403)
    assert resp["errcode"] == "M_THREEPID_DENIED"
    resp = await client.request("POST", f"/_matrix/client/r0{path}", json={}, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"


async def test_huge_body_is_too_large(client: MatrixTestClient) -> None:
    huge = b'{"email": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.request("POST", f"{BASE}/account/password/email/requestToken", data=huge,
                                expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


# --- third-party networks -----------------------------------------------------------


async def test_no_protocols(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    assert await client.request("GET", f"{BASE}/thirdparty/protocols", token=alice.token) == {}


@pytest.mark.parametrize("kind", ["protocol", "location", "user"])
async def test_unknown_protocol_is_404(client: MatrixTestClient, kind: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("GET", f"{BASE}/thirdparty/{kind}/irc", token=alice.token, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("kind,param", [("location", "alias"), ("user", "userid")])
async def test_reverse_lookups_find_nothing(client: MatrixTestClient, kind: str, param: str) -> None:
    alice = await make_user(client.hs, "alice")
    url = f"{BASE}/thirdparty/{kind}"
    assert await client.request("GET", f"{url}?{param}=%23room:test.local", token=alice.token) == []
    resp = await client.request("GET", url, token=alice.token, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"


@pytest.mark.parametrize("path", [
    "/thirdparty/protocols", "/thirdparty/protocol/irc", "/thirdparty/location/irc", "/thirdparty/user/irc",
    "/thirdparty/location?alias=x", "/thirdparty/user?userid=x",
])
async def test_thirdparty_lookups_need_a_token(client: MatrixTestClient, path: str) -> None:
    resp = await client.request("GET", f"/_matrix/client/r0{path}", expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
