"""Shared-secret registration at /_synapse/admin/v1/register, with an independent MAC."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select

from hearth.storage.tables import profiles
from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

URL = "/_synapse/admin/v1/register"
SECRET = "test-shared-secret"  # what make_config sets


def _mac(nonce: str, user: str, password: str, admin: bool, secret: str = SECRET) -> str:
    message = b"\x00".join([nonce.encode(), user.encode(), password.encode(),
                            b"admin" if admin else b"notadmin"])
    return hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()


async def _nonce(client: MatrixTestClient) -> str:
    body = await client.request("GET", URL)
    assert isinstance(body["nonce"], str) and body["nonce"]
    return body["nonce"]  # type: ignore[no-any-return]


def _body(nonce: str, user: str = "alice", password: str = "pw-alice", admin: bool = False,
          **extra: Any) -> dict[str, Any]:
    return {"nonce": nonce, "username": user, "password": password, "admin": admin,
            "mac": _mac(nonce, user, password, admin), **extra}


async def test_register_with_the_right_mac(client: MatrixTestClient) -> None:
    body = await client.request("POST", URL, json=_body(await _nonce(client)))
    assert body["user_id"] == "@alice:test.local"
    assert body["home_server"] == "test.local"
    assert body["device_id"]
    me = await client.request("GET", "/_matrix/client/v3/account/whoami", token=body["access_token"])
    assert me["user_id"] == "@alice:test.local"
    account = await client.hs.users.get("@alice:test.local")
    assert account is not None and not account.is_admin
    await client.login("alice", password="pw-alice")


async def test_register_an_admin_with_a_display_name(client: MatrixTestClient) -> None:
    nonce = await _nonce(client)
    await client.request("POST", URL, json=_body(nonce, "root", admin=True, displayname="The Admin"))
    account = await client.hs.users.get("@root:test.local")
    assert account is not None and account.is_admin
    async with client.hs.db.read() as conn:
        name = (await conn.execute(select(profiles.c.displayname)
                                   .where(profiles.c.user_id == "@root:test.local"))).scalar_one()
    assert name == "The Admin"


async def test_mac_over_admin_flag_is_checked(client: MatrixTestClient) -> None:
    nonce = await _nonce(client)
    body = _body(nonce)  # MAC says "notadmin"...
    body["admin"] = True  # ...but the request asks for admin.
    resp = await client.request("POST", URL, json=body, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert resp["error"] == "HMAC incorrect"
    assert not await client.hs.users.exists("@alice:test.local")


async def test_wrong_mac_is_forbidden_and_burns_the_nonce(client: MatrixTestClient) -> None:
    nonce = await _nonce(client)
    wrong = {**_body(nonce), "mac": _mac(nonce, "alice", "pw-alice", False, secret="not-the-secret")}
    resp = await client.request("POST", URL, json=wrong, expect=403)
    assert (resp["errcode"], resp["error"]) == ("M_FORBIDDEN", "HMAC incorrect")
    again = await client.request("POST", URL, json=_body(nonce), expect=400)
    assert "nonce" in again["error"].lower()


async def test_nonce_is_single_use(client: MatrixTestClient) -> None:
    nonce = await _nonce(client)
    await client.request("POST", URL, json=_body(nonce))
    resp = await client.request("POST", URL, json=_body(nonce, "bob"), expect=400)
    assert "nonce" in resp["error"].lower()
    assert not await client.hs.users.exists("@bob:test.local")


async def test_unknown_nonce(client: MatrixTestClient) -> None:
    resp = await client.request("POST", URL, json=_body("made-up"), expect=400)
    assert "nonce" in resp["error"].lower()


async def test_nonce_expires(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    nonce = await _nonce(client)
    fake_clock.advance(60_001)
    resp = await client.request("POST", URL, json=_body(nonce), expect=400)
    assert "nonce" in resp["error"].lower()


async def test_each_nonce_is_new(client: MatrixTestClient) -> None:
    assert len({await _nonce(client) for _ in range(5)}) == 5


async def test_username_is_lowercased_and_checked(client: MatrixTestClient) -> None:
    body = await client.request("POST", URL, json=_body(await _nonce(client), "Alice"))
    assert body["user_id"] == "@alice:test.local"
    taken = await client.request("POST", URL, json=_body(await _nonce(client), "alice"), expect=400)
    assert taken["errcode"] == "M_USER_IN_USE"
    invalid = await client.request("POST", URL, json=_body(await _nonce(client), "no way"), expect=400)
    assert invalid["errcode"] == "M_INVALID_USERNAME"


async def test_missing_or_wrongly_typed_fields(client: MatrixTestClient) -> None:
    nonce = await _nonce(client)
    body = _body(nonce)
    del body["mac"]
    assert (await client.request("POST", URL, json=body, expect=400))["errcode"] == "M_MISSING_PARAM"
    body = {**_body(nonce), "admin": "yes"}
    assert (await client.request("POST", URL, json=body, expect=400))["errcode"] == "M_BAD_JSON"


async def test_user_type_is_refused(client: MatrixTestClient) -> None:
    body = _body(await _nonce(client), user_type="bot")
    assert (await client.request("POST", URL, json=body, expect=400))["errcode"] == "M_INVALID_PARAM"


async def test_disabled_without_a_secret(make_client: ClientFactory) -> None:
    client = await make_client(registration_shared_secret=None)
    assert (await client.request("GET", URL, expect=400))["errcode"] == "M_UNKNOWN"
    body = {"nonce": "n", "username": "alice", "password": "p", "mac": "00"}
    assert (await client.request("POST", URL, json=body, expect=400))["errcode"] == "M_UNKNOWN"


async def test_works_while_public_registration_is_closed(make_client: ClientFactory) -> None:
    client = await make_client(enable_registration=False)
    body = await client.request("POST", URL, json=_body(await _nonce(client)))
    assert body["user_id"] == "@alice:test.local"
