"""Accounts end to end with matrix-nio: register, log in, whoami, devices,
profile, global account data and logout, against a real `hearth serve`.

Each test makes its own user, so a failure in one endpoint shows up in its own
test rather than in every test after it.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from nio import (
    DevicesResponse,
    LoginResponse,
    LogoutResponse,
    ProfileGetAvatarResponse,
    ProfileGetDisplayNameResponse,
    ProfileGetResponse,
    ProfileSetAvatarResponse,
    ProfileSetDisplayNameResponse,
    RegisterResponse,
    UpdateDeviceResponse,
    WhoamiError,
    WhoamiResponse,
)

from tests.e2e.conftest import SERVER_NAME
from tests.e2e.nio_client import PASSWORD, Clients, unique_localpart
from tests.e2e.process import HearthProcess

pytestmark = pytest.mark.e2e

async def test_register(clients: Clients) -> None:
    client = clients.new()
    localpart = unique_localpart("reg")
    resp = client.expect(await client.register(localpart, PASSWORD, device_name="my phone"), RegisterResponse)
    assert resp.user_id == f"@{localpart}:{SERVER_NAME}"
    assert resp.device_id
    assert resp.access_token
    # nio adopts the new session.
    assert (client.user_id, client.device_id, client.access_token) == (
        resp.user_id, resp.device_id, resp.access_token)


async def test_register_taken_username_is_refused(clients: Clients) -> None:
    first = await clients.registered("taken")
    localpart = first.user_id.split(":")[0][1:]
    again = clients.new()
    resp = await again.register(localpart, PASSWORD)
    assert not isinstance(resp, RegisterResponse), again.last()
    assert again.exchanges[-1].status == 400
    assert '"M_USER_IN_USE"' in again.exchanges[-1].response_body


async def test_login_with_password(clients: Clients) -> None:
    registered = await clients.registered("login")
    client = clients.new(registered.user_id)
    resp = client.expect(await client.login(PASSWORD, device_name="laptop"), LoginResponse)
    assert resp.user_id == registered.user_id
    assert resp.device_id and resp.device_id != registered.device_id
    assert resp.access_token and resp.access_token != registered.access_token


async def test_login_with_wrong_password_is_forbidden(clients: Clients) -> None:
    registered = await clients.registered("badpw")
    client = clients.new(registered.user_id)
    resp = await client.login("not the password")
    assert not isinstance(resp, LoginResponse), client.last()
    assert client.exchanges[-1].status == 403
    assert '"M_FORBIDDEN"' in client.exchanges[-1].response_body


async def test_whoami(clients: Clients) -> None:
    client = await clients.registered("whoami")
    resp = client.expect(await client.whoami(), WhoamiResponse)
    assert resp.user_id == client.user_id
    assert resp.device_id == client.device_id
    assert resp.is_guest is False


async def test_devices_list_and_rename(clients: Clients) -> None:
    phone = await clients.registered("devices", device_name="phone")
    laptop = clients.new(phone.user_id)
    laptop.expect(await laptop.login(PASSWORD, device_name="laptop"), LoginResponse)

    listed = phone.expect(await phone.devices(), DevicesResponse)
    names = {d.id: d.display_name for d in listed.devices}
    assert names == {phone.device_id: "phone", laptop.device_id: "laptop"}, phone.last()

    phone.expect(await phone.update_device(laptop.device_id, {"display_name": "work laptop"}),
                 UpdateDeviceResponse)
    listed = laptop.expect(await laptop.devices(), DevicesResponse)
    names = {d.id: d.display_name for d in listed.devices}
    assert names == {phone.device_id: "phone", laptop.device_id: "work laptop"}, laptop.last()


async def test_display_name_and_avatar(clients: Clients) -> None:
    client = await clients.registered("profile")
    client.expect(await client.set_displayname("Alice Liddell"), ProfileSetDisplayNameResponse)
    avatar = f"mxc://{SERVER_NAME}/abcDEF123"
    client.expect(await client.set_avatar(avatar), ProfileSetAvatarResponse)

    name = client.expect(await client.get_displayname(), ProfileGetDisplayNameResponse)
    assert name.displayname == "Alice Liddell"
    got = client.expect(await client.get_avatar(), ProfileGetAvatarResponse)
    assert got.avatar_url == avatar
    profile = client.expect(await client.get_profile(), ProfileGetResponse)
    assert (profile.displayname, profile.avatar_url) == ("Alice Liddell", avatar)

    # Another user reads the same profile.
    other = await clients.registered("profilereader")
    seen = other.expect(await other.get_profile(client.user_id), ProfileGetResponse)
    assert (seen.displayname, seen.avatar_url) == ("Alice Liddell", avatar)


async def test_global_account_data(clients: Clients) -> None:
    client = await clients.registered("accountdata")
    path = (f"/_matrix/client/v3/user/{quote(client.user_id, safe='')}"
            f"/account_data/{quote('org.example.e2e', safe='')}")
    content = {"theme": "dark", "n": 3, "nested": {"list": [1, "two"]}}
    status, body = await client.raw("PUT", path, content)
    assert (status, body) == (200, {}), client.last()
    status, body = await client.raw("GET", path)
    assert (status, body) == (200, content), client.last()

    status, body = await client.raw("PUT", path, {"theme": "light"})
    assert status == 200, client.last()
    status, body = await client.raw("GET", path)
    assert (status, body) == (200, {"theme": "light"}), client.last()

    missing = path.replace("org.example.e2e", "org.example.never-set")
    status, body = await client.raw("GET", missing)
    assert status == 404 and body["errcode"] == "M_NOT_FOUND", client.last()


async def test_logout_kills_the_token(clients: Clients, hearth_server: HearthProcess) -> None:
    client = await clients.registered("logout")
    other_device = clients.new(client.user_id)
    other_device.expect(await other_device.login(PASSWORD), LoginResponse)
    user_id, device_id, token = client.user_id, client.device_id, client.access_token

    client.expect(await client.logout(), LogoutResponse)

    stale = clients.new()
    stale.restore_login(user_id, device_id, token)
    resp = await stale.whoami()
    assert isinstance(resp, WhoamiError), stale.last()
    assert stale.exchanges[-1].status == 401
    assert '"M_UNKNOWN_TOKEN"' in stale.exchanges[-1].response_body

    # Only that session ended: the user's other device is still logged in,
    # and the logged-out device is gone from its list.
    who = other_device.expect(await other_device.whoami(), WhoamiResponse)
    assert who.user_id == user_id
    listed = other_device.expect(await other_device.devices(), DevicesResponse)
    assert [d.id for d in listed.devices] == [other_device.device_id]


async def test_server_logged_no_errors_and_no_tokens(clients: Clients, hearth_server: HearthProcess) -> None:
    client = await clients.registered("final")
    client.expect(await client.whoami(), WhoamiResponse)
    err = hearth_server.stderr()
    assert "Unhandled error" not in err
    assert " ERROR " not in err
    assert client.access_token and client.access_token not in err
