"""/devices, /devices/{deviceId} and /delete_devices."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.users.devices import SEEN_WRITE_INTERVAL_MS
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import login_device, make_user, password_auth

DEVICES = "/_matrix/client/v3/devices"
DELETE_DEVICES = "/_matrix/client/v3/delete_devices"
WHOAMI = "/_matrix/client/v3/account/whoami"


async def test_list_devices(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await login_device(client.hs, alice.user_id, device_id="PHONE", display_name="My phone")
    body = await client.request("GET", DEVICES, token=alice.token)
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert set(by_id) == {"LAPTOP", "PHONE"}
    assert by_id["PHONE"]["display_name"] == "My phone"
    # The listing request itself counts as use of LAPTOP.
    assert by_id["LAPTOP"]["last_seen_ts"] == fake_clock.time_ms()
    assert by_id["LAPTOP"]["last_seen_ip"] == "127.0.0.1"
    assert by_id["PHONE"]["last_seen_ts"] is None


async def test_list_devices_shows_only_own_devices(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await make_user(client.hs, "bob")
    body = await client.request("GET", "/_matrix/client/r0/devices", token=alice.token)
    assert [d["device_id"] for d in body["devices"]] == [alice.device_id]


async def test_get_device(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    body = await client.request("GET", f"{DEVICES}/LAPTOP", token=alice.token)
    assert body["device_id"] == "LAPTOP"
    assert set(body) == {"device_id", "display_name", "last_seen_ip", "last_seen_ts"}


async def test_get_unknown_device_is_404(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", f"{DEVICES}/NOPE", token=alice.token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_get_someone_elses_device_is_404(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await make_user(client.hs, "bob", device_id="BOBDEVICE")
    body = await client.request("GET", f"{DEVICES}/BOBDEVICE", token=alice.token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_last_seen_is_written_at_most_once_per_interval(client: MatrixTestClient,
                                                              fake_clock: FakeClock) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    first = fake_clock.time_ms()
    await client.request("GET", WHOAMI, token=alice.token)
    fake_clock.advance(SEEN_WRITE_INTERVAL_MS - 1)
    await client.request("GET", WHOAMI, token=alice.token)
    device = await client.hs.devices.get(alice.user_id, "LAPTOP")
    assert device is not None and device.last_seen_ts == first
    fake_clock.advance(1)
    await client.request("GET", WHOAMI, token=alice.token)
    device = await client.hs.devices.get(alice.user_id, "LAPTOP")
    assert device is not None and device.last_seen_ts == first + SEEN_WRITE_INTERVAL_MS


# --- rename -------------------------------------------------------------------------


async def test_rename_device(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, json={"display_name": "Work"})
    body = await client.request("GET", f"{DEVICES}/LAPTOP", token=alice.token)
    assert body["display_name"] == "Work"


async def test_rename_without_name_changes_nothing(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, json={"display_name": "Work"})
    await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, json={})
    body = await client.request("GET", f"{DEVICES}/LAPTOP", token=alice.token)
    assert body["display_name"] == "Work"


@pytest.mark.parametrize("body", [{"display_name": "x"}, {}])
async def test_rename_unknown_device_is_404(client: MatrixTestClient, body: dict[str, Any]) -> None:
    alice = await make_user(client.hs, "alice")
    await make_user(client.hs, "bob", device_id="BOBDEVICE")
    for device in ("NOPE", "BOBDEVICE"):
        resp = await client.request("PUT", f"{DEVICES}/{device}", token=alice.token, json=body, expect=404)
        assert resp["errcode"] == "M_NOT_FOUND"
    bob_device = await client.hs.devices.get("@bob:test.local", "BOBDEVICE")
    assert bob_device is not None and bob_device.display_name is None


async def test_rename_with_wrong_type_names_the_field(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token,
                                json={"display_name": 5}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert "display_name" in resp["error"]


@pytest.mark.parametrize("name", ["x" * 257, "nul\u0000byte", "lone \ud800 surrogate"])
async def test_rename_rejects_unstorable_names(client: MatrixTestClient, name: str) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token,
                                json={"display_name": name}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_rename_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, data=b"[[", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


async def test_rename_body_not_an_object(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, json=["x"], expect=400)
    assert resp["errcode"] == "M_BAD_JSON"


async def test_rename_huge_body_is_too_large(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    huge = b'{"display_name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.request("PUT", f"{DEVICES}/LAPTOP", token=alice.token, data=huge, expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


# --- delete one ---------------------------------------------------------------------


async def test_delete_device_with_uia(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    phone = await login_device(client.hs, alice.user_id, device_id="PHONE")
    await client.request("GET", WHOAMI, token=phone.token)  # now in the token cache
    # Clients send the first DELETE without a body.
    challenge = await client.request("DELETE", f"{DEVICES}/PHONE", token=alice.token, expect=401)
    assert challenge["flows"] == [{"stages": ["m.login.password"]}]
    await client.request("DELETE", f"{DEVICES}/PHONE", token=alice.token,
                         json={"auth": password_auth(alice.user_id, challenge["session"])})
    resp = await client.request("GET", WHOAMI, token=phone.token, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"
    await client.request("GET", f"{DEVICES}/PHONE", token=alice.token, expect=404)
    await client.request("GET", WHOAMI, token=alice.token)


async def test_delete_device_wrong_password(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    phone = await login_device(client.hs, alice.user_id, device_id="PHONE")
    resp = await client.request("DELETE", f"{DEVICES}/PHONE", token=alice.token, json={
        "auth": password_auth(alice.user_id, None, password="wrong")}, expect=401)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert "session" in resp and resp["flows"]
    await client.request("GET", WHOAMI, token=phone.token)


async def test_delete_device_session_is_bound_to_that_device(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await login_device(client.hs, alice.user_id, device_id="PHONE")
    tablet = await login_device(client.hs, alice.user_id, device_id="TABLET")
    challenge = await client.request("DELETE", f"{DEVICES}/PHONE", token=alice.token, json={}, expect=401)
    resp = await client.request("DELETE", f"{DEVICES}/TABLET", token=alice.token, json={
        "auth": password_auth(alice.user_id, challenge["session"])}, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    await client.request("GET", WHOAMI, token=tablet.token)


async def test_delete_own_current_device(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await client.request("DELETE", f"{DEVICES}/LAPTOP", token=alice.token,
                         json={"auth": password_auth(alice.user_id, None)})
    resp = await client.request("GET", WHOAMI, token=alice.token, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_delete_unknown_device_succeeds(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    await client.request("DELETE", f"{DEVICES}/GONE", token=alice.token,
                         json={"auth": password_auth(alice.user_id, None)})


async def test_delete_someone_elses_device_does_nothing(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    bob = await make_user(client.hs, "bob", device_id="BOBDEVICE")
    await client.request("DELETE", f"{DEVICES}/BOBDEVICE", token=alice.token,
                         json={"auth": password_auth(alice.user_id, None)})
    await client.request("GET", WHOAMI, token=bob.token)


async def test_delete_device_auth_with_wrong_type(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("DELETE", f"{DEVICES}/LAPTOP", token=alice.token,
                                json={"auth": {"type": "m.login.password", "session": 5}}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_delete_device_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    resp = await client.request("DELETE", f"{DEVICES}/LAPTOP", token=alice.token, data=b"{", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


# --- delete several -----------------------------------------------------------------


async def test_delete_devices_with_uia(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    phone = await login_device(client.hs, alice.user_id, device_id="PHONE")
    tablet = await login_device(client.hs, alice.user_id, device_id="TABLET")
    for token in (phone.token, tablet.token):
        await client.request("GET", WHOAMI, token=token)
    body = {"devices": ["PHONE", "TABLET"]}
    challenge = await client.request("POST", DELETE_DEVICES, token=alice.token, json=body, expect=401)
    await client.request("POST", DELETE_DEVICES, token=alice.token,
                         json={**body, "auth": password_auth(alice.user_id, challenge["session"])})
    for token in (phone.token, tablet.token):
        assert (await client.request("GET", WHOAMI, token=token, expect=401))["errcode"] == "M_UNKNOWN_TOKEN"
    listed = await client.request("GET", DEVICES, token=alice.token)
    assert [d["device_id"] for d in listed["devices"]] == ["LAPTOP"]


async def test_delete_devices_session_is_bound_to_the_set(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    await login_device(client.hs, alice.user_id, device_id="PHONE")
    challenge = await client.request("POST", DELETE_DEVICES, token=alice.token,
                                     json={"devices": ["PHONE"]}, expect=401)
    resp = await client.request("POST", DELETE_DEVICES, token=alice.token, json={
        "devices": ["PHONE", "LAPTOP"], "auth": password_auth(alice.user_id, challenge["session"])},
        expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"


async def test_delete_devices_wrong_password(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice", device_id="LAPTOP")
    phone = await login_device(client.hs, alice.user_id, device_id="PHONE")
    resp = await client.request("POST", DELETE_DEVICES, token=alice.token, json={
        "devices": ["PHONE"], "auth": password_auth(alice.user_id, None, password="nope")}, expect=401)
    assert resp["errcode"] == "M_FORBIDDEN"
    await client.request("GET", WHOAMI, token=phone.token)


async def test_delete_devices_requires_devices(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", DELETE_DEVICES, token=alice.token, json={}, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"
    assert "devices" in resp["error"]


@pytest.mark.parametrize("devices", ["PHONE", [1, 2], None])
async def test_delete_devices_wrong_type(client: MatrixTestClient, devices: Any) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", DELETE_DEVICES, token=alice.token, json={"devices": devices},
                                expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert "devices" in resp["error"]


async def test_delete_devices_body_not_json(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", "/_matrix/client/r0/delete_devices", token=alice.token,
                                data=b"devices", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"


# --- authentication -----------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("GET", DEVICES), ("GET", f"{DEVICES}/X"), ("PUT", f"{DEVICES}/X"), ("DELETE", f"{DEVICES}/X"),
    ("POST", DELETE_DEVICES),
])
async def test_device_endpoints_need_a_token(client: MatrixTestClient, method: str, path: str) -> None:
    resp = await client.request(method, path, json={}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
    resp = await client.request(method, path, token="hat_unknown", json={}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_device_list_accepts_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("GET", f"{DEVICES}?access_token={alice.token}")
    assert len(body["devices"]) == 1
