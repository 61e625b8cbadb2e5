"""Admin API for registration tokens at /_synapse/admin/v1/registration_tokens."""

from __future__ import annotations

from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

URL = "/_synapse/admin/v1/registration_tokens"
REGISTER = "/_matrix/client/v3/register"


async def _admin(client: MatrixTestClient) -> str:
    await client.hs.accounts.create_account("root", "root password", admin=True)
    return (await client.login("root", password="root password"))["access_token"]  # type: ignore[no-any-return]


async def test_create_a_named_token(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    admin = await _admin(client)
    expiry = fake_clock.time_ms() + 3_600_000
    body = await client.request("POST", f"{URL}/new", token=admin,
                                json={"token": "Abc-1.2_x~", "uses_allowed": 3, "expiry_time": expiry})
    assert body == {"token": "Abc-1.2_x~", "uses_allowed": 3, "pending": 0, "completed": 0,
                    "expiry_time": expiry}
    assert await client.request("GET", f"{URL}/Abc-1.2_x~", token=admin) == body


async def test_create_a_random_token(client: MatrixTestClient) -> None:
    admin = await _admin(client)
    default = await client.request("POST", f"{URL}/new", token=admin, json={})
    assert len(default["token"]) == 16
    assert default["uses_allowed"] is None and default["expiry_time"] is None
    short = await client.request("POST", f"{URL}/new", token=admin, json={"length": 5})
    assert len(short["token"]) == 5
    longest = await client.request("POST", f"{URL}/new", token=admin, json={"length": 64})
    assert len(longest["token"]) == 64


async def test_invalid_token_parameters(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    admin = await _admin(client)
    for body in ({"token": "has space"}, {"token": "x" * 65}, {"token": ""}, {"uses_allowed": -1},
                 {"expiry_time": fake_clock.time_ms() - 1}, {"length": 0}, {"length": 65}):
        resp = await client.request("POST", f"{URL}/new", token=admin, json=body, expect=400)
        assert resp["errcode"] == "M_INVALID_PARAM", body
    resp = await client.request("POST", f"{URL}/new", token=admin, json={"uses_allowed": "3"}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"


async def test_duplicate_token(client: MatrixTestClient) -> None:
    admin = await _admin(client)
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "same"})
    resp = await client.request("POST", f"{URL}/new", token=admin, json={"token": "same"}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_list_and_filter_by_validity(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    admin = await _admin(client)
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "forever"})
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "none", "uses_allowed": 0})
    await client.request("POST", f"{URL}/new", token=admin,
                         json={"token": "soon", "expiry_time": fake_clock.time_ms() + 1000})
    fake_clock.advance(1000)

    async def names(query: str = "") -> list[str]:
        body = await client.request("GET", URL + query, token=admin)
        return [t["token"] for t in body["registration_tokens"]]

    assert await names() == ["forever", "none", "soon"]
    assert await names("?valid=true") == ["forever"]
    assert await names("?valid=false") == ["none", "soon"]
    bad = await client.request("GET", URL + "?valid=maybe", token=admin, expect=400)
    assert bad["errcode"] == "M_INVALID_PARAM"


async def test_update_a_token(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    admin = await _admin(client)
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "t", "uses_allowed": 1})
    expiry = fake_clock.time_ms() + 5000
    body = await client.request("PUT", f"{URL}/t", token=admin, json={"expiry_time": expiry})
    assert (body["uses_allowed"], body["expiry_time"]) == (1, expiry)
    body = await client.request("PUT", f"{URL}/t", token=admin, json={"uses_allowed": None})
    assert (body["uses_allowed"], body["expiry_time"]) == (None, expiry)
    bad = await client.request("PUT", f"{URL}/t", token=admin, json={"uses_allowed": -2}, expect=400)
    assert bad["errcode"] == "M_INVALID_PARAM"
    missing = await client.request("PUT", f"{URL}/nope", token=admin, json={}, expect=404)
    assert missing["errcode"] == "M_NOT_FOUND"


async def test_delete_a_token(client: MatrixTestClient) -> None:
    admin = await _admin(client)
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "gone"})
    assert await client.request("DELETE", f"{URL}/gone", token=admin) == {}
    assert (await client.request("GET", f"{URL}/gone", token=admin, expect=404))["errcode"] == "M_NOT_FOUND"
    again = await client.request("DELETE", f"{URL}/gone", token=admin, expect=404)
    assert again["errcode"] == "M_NOT_FOUND"


async def test_counts_follow_registrations(make_client: ClientFactory) -> None:
    client = await make_client(registration_requires_token=True)
    admin = await _admin(client)
    await client.request("POST", f"{URL}/new", token=admin, json={"token": "t", "uses_allowed": 5})
    await client.request("POST", REGISTER, json={
        "username": "alice", "password": "pw", "auth": {"type": "m.login.registration_token", "token": "t"}})
    body = await client.request("GET", f"{URL}/t", token=admin)
    assert (body["pending"], body["completed"]) == (0, 1)


async def test_needs_an_admin(client: MatrixTestClient) -> None:
    user = (await client.register("alice"))["access_token"]
    for method, path in (("GET", URL), ("POST", f"{URL}/new"), ("GET", f"{URL}/t"), ("DELETE", f"{URL}/t")):
        body = await client.request(method, path, token=user, json={} if method == "POST" else None,
                                    expect=403)
        assert body["errcode"] == "M_FORBIDDEN"
    body = await client.request("GET", URL, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
