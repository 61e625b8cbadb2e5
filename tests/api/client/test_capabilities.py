"""GET /capabilities."""

from __future__ import annotations

from hearth.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import make_user

URL = "/_matrix/client/v3/capabilities"


async def test_capabilities(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    caps = (await client.request("GET", URL, token=alice.token))["capabilities"]
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
    assert caps["m.get_login_token"] == {"enabled": False}
    assert caps["m.profile_fields"] == {"enabled": True, "allowed": ["displayname", "avatar_url"]}


async def test_room_versions(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    versions = (await client.request("GET", URL, token=alice.token))["capabilities"]["m.room_versions"]
    assert versions["default"] == DEFAULT_ROOM_VERSION.identifier == "12"
    assert versions["available"] == {str(n): "stable" for n in range(1, 13)}
    assert set(versions["available"]) == set(KNOWN_ROOM_VERSIONS)


async def test_r0_path_and_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", f"/_matrix/client/r0/capabilities?access_token={alice.token}")
    assert "m.room_versions" in body["capabilities"]


async def test_needs_a_token(client: MatrixTestClient) -> None:
    assert (await client.request("GET", URL, expect=401))["errcode"] == "M_MISSING_TOKEN"
    assert (await client.request("GET", URL, token="hat_x", expect=401))["errcode"] == "M_UNKNOWN_TOKEN"
