"""Pushers (GET /pushers, POST /pushers/set) and HTTP delivery to a push gateway.

The gateway is a small aiohttp app on 127.0.0.1 that records every request
and answers from a script (status, rejected pushkeys). Backoff waits go
through a recording sleep that returns at once, so no test waits for time to
pass; tests wait for the gateway to receive requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

SET = "/_matrix/client/v3/pushers/set"
GET = "/_matrix/client/v3/pushers"


def http_pusher(url: str = "https://push.example.com/_matrix/push/v1/notify", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "http", "app_id": "com.example.app", "pushkey": "key-1", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en", "data": {"url": url},
    }
    body.update(extra)
    return body


class Gateway:
    """Records /notify requests; answers from `script` (status, rejected), then 200 with nothing rejected."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.script: list[tuple[int, list[str]]] = []

    async def notify(self, request: web.Request) -> web.Response:
        await self.requests.put(await request.json())
        status, rejected = self.script.pop(0) if self.script else (200, [])
        return web.json_response({"rejected": rejected}, status=status)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.requests.get(), 10)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.called = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.called.set()
        await asyncio.sleep(0)


@pytest.fixture
async def gateway(aiohttp_server: AiohttpServer) -> tuple[Gateway, str]:
    gw = Gateway()
    app = web.Application()
    app.router.add_post("/_matrix/push/v1/notify", gw.notify)
    server = await aiohttp_server(app, host="127.0.0.1")
    return gw, str(server.make_url("/_matrix/push/v1/notify"))


async def open_client(make_client: ClientFactory, **push: Any) -> tuple[MatrixTestClient, RecordingSleep]:
    client = await make_client(push={"gateway_ip_blocklist": [], **push})
    sleep = RecordingSleep()
    client.hs.pushers.sleep = sleep
    return client, sleep


async def dm(client: MatrixTestClient) -> tuple[str, str, str, str, str]:
    alice, alice_token = await client.user("alice")
    bob, bob_token = await client.user("bob")
    room_id = await client.create_room(alice_token, preset="public_chat", name="Tea")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob_token, json={})
    return room_id, alice, alice_token, bob, bob_token


# --- the API -----------------------------------------------------------------------


async def test_set_list_update_delete(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    _, token = await client.user("alice")
    assert await client.request("GET", GET, token=token) == {"pushers": []}
    body = http_pusher(profile_tag="tag", data={"url": "https://push.example.com/_matrix/push/v1/notify",
                                                  "format": "event_id_only", "custom": 1})
    assert await client.request("POST", SET, token=token, json=body) == {}
    [pusher] = (await client.request("GET", GET, token=token))["pushers"]
    assert pusher == {
        "pushkey": "key-1", "kind": "http", "app_id": "com.example.app", "app_display_name": "App",
        "device_display_name": "Phone", "lang": "en", "profile_tag": "tag", "data": body["data"],
    }
    await client.request("POST", SET, token=token, json=http_pusher(device_display_name="New phone"))
    [pusher] = (await client.request("GET", GET, token=token))["pushers"]
    assert pusher["device_display_name"] == "New phone" and "profile_tag" not in pusher
    await client.request("POST", SET, token=token, json=http_pusher(pushkey="key-2"))
    assert len((await client.request("GET", GET, token=token))["pushers"]) == 2
    await client.request("POST", SET, token=token, json={"kind": None, "app_id": "com.example.app",
                                                          "pushkey": "key-1"})
    assert [p["pushkey"] for p in (await client.request("GET", GET, token=token))["pushers"]] == ["key-2"]
    # Deleting a pusher that does not exist is fine.
    await client.request("POST", SET, token=token, json={"kind": None, "app_id": "x", "pushkey": "y"})
    await client.request("POST", "/_matrix/client/r0/pushers/set", token=token,
                         json={"kind": None, "app_id": "com.example.app", "pushkey": "key-2"})
    assert (await client.request("GET", "/_matrix/client/r0/pushers", token=token)) == {"pushers": []}


async def test_append_controls_other_users_pushers(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    await client.request("POST", SET, token=alice, json=http_pusher())
    await client.request("POST", SET, token=bob, json=http_pusher(append=True))
    assert len((await client.request("GET", GET, token=alice))["pushers"]) == 1
    await client.request("POST", SET, token=bob, json=http_pusher())
    assert (await client.request("GET", GET, token=alice))["pushers"] == []
    assert len((await client.request("GET", GET, token=bob))["pushers"]) == 1


async def test_email_pushers_are_stored(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    body = {"kind": "email", "app_id": "m.email", "pushkey": "alice@example.com", "app_display_name": "Email",
            "device_display_name": "alice@example.com", "lang": "en", "data": {}}
    await client.request("POST", SET, token=token, json=body)
    [pusher] = (await client.request("GET", GET, token=token))["pushers"]
    assert pusher["kind"] == "email" and pusher["pushkey"] == "alice@example.com"


@pytest.mark.parametrize(("body", "errcode"), [
    ({k: v for k, v in http_pusher().items() if k != "kind"}, "M_MISSING_PARAM"),
    ({k: v for k, v in http_pusher().items() if k != "app_id"}, "M_MISSING_PARAM"),
    ({k: v for k, v in http_pusher().items() if k != "pushkey"}, "M_MISSING_PARAM"),
    ({k: v for k, v in http_pusher().items() if k not in ("lang", "data")}, "M_MISSING_PARAM"),
    ({k: v for k, v in http_pusher().items() if k != "app_display_name"}, "M_MISSING_PARAM"),
    (http_pusher(data={}), "M_MISSING_PARAM"),
    (http_pusher(kind="sms"), "M_INVALID_PARAM"),
    (http_pusher(kind=3), "M_INVALID_PARAM"),
    (http_pusher(app_id="a" * 65), "M_INVALID_PARAM"),
    (http_pusher(app_id=5), "M_INVALID_PARAM"),
    (http_pusher(pushkey="é" * 257), "M_INVALID_PARAM"),
    (http_pusher(lang=5), "M_INVALID_PARAM"),
    (http_pusher(data="x"), "M_INVALID_PARAM"),
    (http_pusher(append="yes"), "M_INVALID_PARAM"),
    (http_pusher("ftp://push.example.com/_matrix/push/v1/notify"), "M_INVALID_PARAM"),
    (http_pusher("https://push.example.com/notify"), "M_INVALID_PARAM"),
    (http_pusher("https:///_matrix/push/v1/notify"), "M_INVALID_PARAM"),
    (http_pusher("https://push.example.com:99999/_matrix/push/v1/notify"), "M_INVALID_PARAM"),
    (http_pusher(data={"url": 5}), "M_INVALID_PARAM"),
    (http_pusher(data={"url": "https://p.example.com/_matrix/push/v1/notify", "format": "full"}),
     "M_INVALID_PARAM"),
    (http_pusher(kind="email"), "M_INVALID_PARAM"),
    (http_pusher(kind="email", app_id="m.email", pushkey="not-an-address"), "M_INVALID_PARAM"),
])
async def test_set_validation(client: MatrixTestClient, body: dict[str, Any], errcode: str) -> None:
    _, token = await client.user("alice")
    resp = await client.request("POST", SET, token=token, json=body, expect=400)
    assert resp["errcode"] == errcode
    assert (await client.request("GET", GET, token=token)) == {"pushers": []}


async def test_missing_parameters_are_named(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    body = {k: v for k, v in http_pusher().items() if k not in ("lang", "data")}
    resp = await client.request("POST", SET, token=token, json=body, expect=400)
    assert resp == {"errcode": "M_MISSING_PARAM", "error": "Missing parameters: lang, data"}
    assert (await client.request("GET", GET, expect=401))["errcode"] == "M_MISSING_TOKEN"


# --- delivery ----------------------------------------------------------------------


async def test_push_carries_the_event_and_counts(make_client: ClientFactory, gateway: tuple[Gateway, str],
                                                 fake_clock: FakeClock) -> None:
    gw, url = gateway
    client, _ = await open_client(make_client)
    room_id, _, alice_token, bob, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token,
                         json=http_pusher(url, data={"url": url, "custom": "x"}))
    event_id = await client.send_message(bob_token, room_id, "hello alice")
    note = (await gw.next())["notification"]
    assert note == {
        "event_id": event_id, "room_id": room_id, "type": "m.room.message", "sender": bob,
        "sender_display_name": "bob", "room_name": "Tea", "prio": "high",
        "content": {"msgtype": "m.text", "body": "hello alice"},
        "counts": {"unread": 1},
        "devices": [{"app_id": "com.example.app", "pushkey": "key-1",
                     "pushkey_ts": fake_clock.time_ms() // 1000,
                     "data": {"custom": "x"}, "tweaks": {"sound": "default"}}],
    }
    await client.send_message(bob_token, room_id, "again")
    assert (await gw.next())["notification"]["counts"] == {"unread": 2}
    # Bob's own message, and events that do not notify, push nothing to Alice; Bob has no pusher.
    await client.send_message(alice_token, room_id, "reply")
    await client.send_message(bob_token, room_id, content={"msgtype": "m.notice", "body": "quiet"})
    last = await client.send_message(bob_token, room_id, "third")
    note = (await gw.next())["notification"]
    assert note["event_id"] == last and note["counts"] == {"unread": 1}


async def test_event_id_only_format(make_client: ClientFactory, gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client, _ = await open_client(make_client)
    room_id, _, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token,
                         json=http_pusher(url, data={"url": url, "format": "event_id_only"}))
    event_id = await client.send_message(bob_token, room_id, "secret")
    note = (await gw.next())["notification"]
    assert set(note) == {"event_id", "room_id", "counts", "devices", "prio"}
    assert note["event_id"] == event_id
    assert note["devices"][0]["data"] == {"format": "event_id_only"}


async def test_failed_push_is_retried_with_backoff(make_client: ClientFactory,
                                                   gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client, sleep = await open_client(make_client, retry_initial_ms=2000)
    room_id, _, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token, json=http_pusher(url, data={"url": url}))
    gw.script = [(500, [])]
    event_id = await client.send_message(bob_token, room_id, "hi")
    first, second = await gw.next(), await gw.next()
    assert first["notification"]["event_id"] == second["notification"]["event_id"] == event_id
    assert sleep.delays == [2.0]


async def test_retries_are_bounded_and_the_queue_moves_on(make_client: ClientFactory,
                                                          gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client, sleep = await open_client(make_client, retry_initial_ms=1000, retry_max_ms=3000, retry_attempts=4)
    room_id, _, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token, json=http_pusher(url, data={"url": url}))
    gw.script = [(503, [])] * 4
    lost = await client.send_message(bob_token, room_id, "lost")
    for _ in range(4):
        assert (await gw.next())["notification"]["event_id"] == lost
    kept = await client.send_message(bob_token, room_id, "kept")
    assert (await gw.next())["notification"]["event_id"] == kept
    assert sleep.delays == [1.0, 2.0, 3.0]


async def test_rejected_pushkey_removes_the_pusher(make_client: ClientFactory,
                                                   gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client, _ = await open_client(make_client)
    room_id, _, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token, json=http_pusher(url, data={"url": url}))
    await client.request("POST", SET, token=alice_token,
                         json=http_pusher(url, pushkey="key-2", data={"url": url}))
    gw.script = [(200, ["key-1"])]
    await client.send_message(bob_token, room_id, "hi")
    requests = [await gw.next(), await gw.next()]
    assert sorted(r["notification"]["devices"][0]["pushkey"] for r in requests) == ["key-1", "key-2"]
    # The removal runs on key-1's delivery task once the answer is in; each
    # request below gives it a turn.
    for _ in range(50):
        pushers = (await client.request("GET", GET, token=alice_token))["pushers"]
        if len(pushers) == 1:
            break
    assert [p["pushkey"] for p in pushers] == ["key-2"]
    last = await client.send_message(bob_token, room_id, "only key-2 now")
    note = (await gw.next())["notification"]
    assert note["event_id"] == last and note["devices"][0]["pushkey"] == "key-2"


async def test_read_receipt_sends_a_badge_update(make_client: ClientFactory,
                                                 gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client, _ = await open_client(make_client)
    room_id, alice, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token, json=http_pusher(url, data={"url": url}))
    event_id = await client.send_message(bob_token, room_id, "hi")
    await gw.next()
    await client.hs.push.mark_read(alice, room_id, event_id)
    note = (await gw.next())["notification"]
    assert note == {"counts": {}, "devices": [{"app_id": "com.example.app", "pushkey": "key-1",
                                               "pushkey_ts": note["devices"][0]["pushkey_ts"], "data": {}}]}


async def test_private_gateway_addresses_are_refused_by_default(make_client: ClientFactory,
                                                                 gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    client = await make_client(push={"retry_attempts": 2})
    sleep = RecordingSleep()
    client.hs.pushers.sleep = sleep
    room_id, _, alice_token, _, bob_token = await dm(client)
    await client.request("POST", SET, token=alice_token, json=http_pusher(url, data={"url": url}))
    await client.send_message(bob_token, room_id, "hi")
    await asyncio.wait_for(sleep.called.wait(), 10)
    assert gw.requests.empty()
