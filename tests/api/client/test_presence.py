"""GET/PUT /presence/{userId}/status, set_presence on /sync, and m.presence in /sync."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

SYNC = "/_matrix/client/v3/sync"


async def sync(
    client: MatrixTestClient, token: str, since: str | None = None, **params: Any
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.request(  # type: ignore[no-any-return]
        "GET", SYNC + "?" + (f"since={since}&" if since else "") + query, token=token
    )


def status_url(user_id: str) -> str:
    return f"/_matrix/client/v3/presence/{user_id}/status"


async def put_status(client: MatrixTestClient, token: str, user_id: str, body: Any, expect: int = 200) -> Any:
    return await client.request("PUT", status_url(user_id), token=token, json=body, expect=expect)


async def get_status(client: MatrixTestClient, token: str, user_id: str, expect: int = 200) -> Any:
    return await client.request("GET", status_url(user_id), token=token, expect=expect)


def presence_of(body: dict[str, Any], user_id: str) -> list[dict[str, Any]]:
    """The contents of the m.presence events about `user_id` in a sync response."""
    return [e["content"] for e in body["presence"]["events"] if e["sender"] == user_id]


async def shared_room(client: MatrixTestClient) -> tuple[str, tuple[str, str], tuple[str, str]]:
    alice = await client.user("alice")
    bob = await client.user("bob")
    room_id = await client.create_room(alice[1], preset="public_chat")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob[1], json={})
    return room_id, alice, bob


async def test_put_and_get_own_status(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    assert await get_status(client, token, alice) == {"presence": "offline"}
    await put_status(client, token, alice, {"presence": "online", "status_msg": "busy"})
    assert await get_status(client, token, alice) == {
        "presence": "online", "currently_active": True, "last_active_ago": 0, "status_msg": "busy"}
    # A PUT replaces the message too.
    await put_status(client, token, alice, {"presence": "unavailable"})
    body = await get_status(client, token, alice)
    assert body["presence"] == "unavailable"
    assert body["currently_active"] is False
    assert "status_msg" not in body
    await client.request("PUT", f"/_matrix/client/r0/presence/{alice}/status", token=token,
                         json={"presence": "offline", "status_msg": "gone"})
    assert (await get_status(client, token, alice))["presence"] == "offline"


async def test_status_of_room_mates_only(client: MatrixTestClient) -> None:
    _, (alice, alice_token), (bob, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    await put_status(client, alice_token, alice, {"presence": "online"})
    assert (await get_status(client, bob_token, alice))["presence"] == "online"
    assert (await get_status(client, alice_token, bob)) == {"presence": "offline"}
    assert (await get_status(client, carol_token, alice, expect=403))["errcode"] == "M_FORBIDDEN"
    nobody = await get_status(client, carol_token, "@nobody:test.local", expect=404)
    assert nobody["errcode"] == "M_NOT_FOUND"
    assert (await get_status(client, carol_token, "nobody", expect=400))["errcode"] == "M_INVALID_PARAM"


async def test_put_errors(client: MatrixTestClient) -> None:
    _, (alice, alice_token), (bob, _) = await shared_room(client)

    async def error(body: Any, user_id: str = alice, status: int = 400) -> str:
        return (await put_status(client, alice_token, user_id, body, expect=status))["errcode"]  # type: ignore[no-any-return]

    assert await error({"presence": "online"}, user_id=bob, status=403) == "M_FORBIDDEN"
    assert await error({"presence": "away"}) == "M_INVALID_PARAM"
    assert await error({"presence": "online", "status_msg": "x" * 2000}) == "M_INVALID_PARAM"
    assert await error({}) == "M_MISSING_PARAM"
    assert await error({"presence": 1}) == "M_BAD_JSON"
    assert await error({"presence": "online", "status_msg": 5}) == "M_BAD_JSON"
    await client.request("PUT", status_url(alice), json={"presence": "online"}, expect=401)


async def test_offline_when_not_syncing(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    alice, token = await client.user("alice")
    await put_status(client, token, alice, {"presence": "online"})
    fake_clock.advance(59_999)
    assert (await get_status(client, token, alice))["presence"] == "online"
    fake_clock.advance(1)
    assert await get_status(client, token, alice) == {
        "presence": "offline", "currently_active": False, "last_active_ago": 60_000}


async def test_idle_and_back_online_with_activity(make_client: ClientFactory, fake_clock: FakeClock) -> None:
    client = await make_client(presence={"offline_after_ms": 3_600_000})
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await put_status(client, alice_token, alice, {"presence": "online"})
    fake_clock.advance(61_000)
    assert await get_status(client, bob_token, alice) == {
        "presence": "online", "currently_active": False, "last_active_ago": 61_000}
    fake_clock.advance(5 * 60_000 - 61_000)
    assert (await get_status(client, bob_token, alice))["presence"] == "unavailable"
    await client.hs.presence.sweep()
    mark = await sync(client, bob_token, set_presence="offline")
    assert presence_of(mark, alice)[0]["presence"] == "unavailable"
    # Rooms filtered out: the message itself does not end the poll, its presence news does.
    no_rooms = json.dumps({"room": {"rooms": []}})
    poll = asyncio.create_task(sync(client, bob_token, since=mark["next_batch"], timeout=30000,
                                    set_presence="offline", filter=no_rooms))
    await client.send_message(alice_token, room_id, "back")
    assert (await get_status(client, bob_token, alice))["currently_active"] is True
    body = await asyncio.wait_for(poll, 10)
    assert presence_of(body, alice) == [
        {"presence": "online", "currently_active": True, "last_active_ago": 0}]


async def test_sync_sets_presence(client: MatrixTestClient) -> None:
    alice, alice_token = await client.user("alice")
    bob, bob_token = await client.user("bob")
    carol, carol_token = await client.user("carol")
    await sync(client, alice_token)
    assert (await get_status(client, alice_token, alice))["presence"] == "online"
    await sync(client, bob_token, set_presence="offline")
    assert await get_status(client, bob_token, bob) == {"presence": "offline"}
    await sync(client, carol_token, set_presence="unavailable")
    assert (await get_status(client, carol_token, carol))["presence"] == "unavailable"
    # Explicitly offline stays so while the client syncs with set_presence=offline.
    await put_status(client, alice_token, alice, {"presence": "offline"})
    await sync(client, alice_token, set_presence="offline")
    assert (await get_status(client, alice_token, alice))["presence"] == "offline"
    err = await client.request("GET", SYNC + "?set_presence=away", token=alice_token, expect=400)
    assert err["errcode"] == "M_INVALID_PARAM"


async def test_room_mates_see_changes_strangers_do_not(client: MatrixTestClient) -> None:
    _, (alice, alice_token), (bob, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    bob_mark = await sync(client, bob_token)
    carol_mark = await sync(client, carol_token)
    await put_status(client, alice_token, alice, {"presence": "online", "status_msg": "hi"})
    bob_body = await sync(client, bob_token, since=bob_mark["next_batch"])
    assert presence_of(bob_body, alice) == [
        {"presence": "online", "currently_active": True, "last_active_ago": 0, "status_msg": "hi"}]
    assert presence_of(bob_body, bob) == []  # unchanged
    carol_body = await sync(client, carol_token, since=carol_mark["next_batch"])
    assert presence_of(carol_body, alice) == []
    assert presence_of(await sync(client, carol_token), alice) == []
    initial = await sync(client, bob_token)
    assert presence_of(initial, alice)[0]["status_msg"] == "hi"
    assert presence_of(initial, bob)[0]["presence"] == "online"
    # Nothing new: nothing at all.
    again = await sync(client, bob_token, since=bob_body["next_batch"])
    assert again["presence"] == {"events": []}
    assert again["next_batch"] == bob_body["next_batch"]


async def test_long_poll_wakes_on_presence(client: MatrixTestClient) -> None:
    _, (alice, alice_token), (_, bob_token) = await shared_room(client)
    mark = await sync(client, bob_token)
    poll = asyncio.create_task(sync(client, bob_token, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await put_status(client, alice_token, alice, {"presence": "unavailable", "status_msg": "lunch"})
    body = await asyncio.wait_for(poll, 10)
    assert presence_of(body, alice)[0]["status_msg"] == "lunch"


async def test_sweep_tells_room_mates_about_timeouts(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    _, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await put_status(client, alice_token, alice, {"presence": "online"})
    mark = await sync(client, bob_token)
    fake_clock.advance(60_000)
    await client.hs.presence.sweep()
    body = await sync(client, bob_token, since=mark["next_batch"])
    assert presence_of(body, alice) == [
        {"presence": "offline", "currently_active": False, "last_active_ago": 60_000}]
    # Swept once is enough.
    await client.hs.presence.sweep()
    assert presence_of(await sync(client, bob_token, since=body["next_batch"]), alice) == []


async def test_joining_a_room_brings_its_members_presence(client: MatrixTestClient) -> None:
    alice, alice_token = await client.user("alice")
    _, bob_token = await client.user("bob")
    room_id = await client.create_room(alice_token, preset="public_chat")
    await put_status(client, alice_token, alice, {"presence": "online", "status_msg": "here"})
    mark = await sync(client, bob_token)
    assert presence_of(mark, alice) == []
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob_token, json={})
    body = await sync(client, bob_token, since=mark["next_batch"])
    assert presence_of(body, alice)[0]["status_msg"] == "here"


async def test_presence_filter(client: MatrixTestClient) -> None:
    _, (alice, alice_token), (bob, bob_token) = await shared_room(client)
    await put_status(client, alice_token, alice, {"presence": "online"})
    await sync(client, bob_token)
    for flt, expected in (({"presence": {"not_senders": [alice]}}, {bob}),
                          ({"presence": {"types": []}}, set()),
                          ({"presence": {"not_types": ["m.*"]}}, set()),
                          ({"presence": {"senders": [alice]}}, {alice})):
        body = await sync(client, bob_token, filter=json.dumps(flt))
        assert {e["sender"] for e in body["presence"]["events"]} == expected
    body = await sync(client, bob_token, filter=json.dumps({"presence": {"limit": 1}}))
    assert len(body["presence"]["events"]) == 1


async def test_presence_can_be_switched_off(make_client: ClientFactory) -> None:
    client = await make_client(presence={"enabled": False})
    _, (alice, alice_token), (_, bob_token) = await shared_room(client)
    mark = await sync(client, bob_token)
    await put_status(client, alice_token, alice, {"presence": "online", "status_msg": "hi"})
    assert await get_status(client, alice_token, alice) == {"presence": "offline"}
    assert await get_status(client, bob_token, alice) == {"presence": "offline"}
    other = await put_status(client, alice_token, "@bob:test.local", {"presence": "online"}, 403)
    assert other["errcode"] == "M_FORBIDDEN"
    assert mark["presence"] == {"events": []}
    assert (await sync(client, bob_token))["presence"] == {"events": []}


async def test_status_survives_a_restart(make_client: ClientFactory) -> None:
    first = await make_client()
    alice, token = await first.user("alice")
    await put_status(first, token, alice, {"presence": "unavailable", "status_msg": "brb"})
    second = await make_client()
    body = await get_status(second, token, alice)
    assert body["presence"] == "unavailable"
    assert body["status_msg"] == "brb"


async def test_after_a_restart_users_who_do_not_return_go_offline(
    make_client: ClientFactory, fake_clock: FakeClock
) -> None:
    first = await make_client()
    _, (alice, alice_token), (_, bob_token) = await shared_room(first)
    await put_status(first, alice_token, alice, {"presence": "online"})
    second = await make_client()
    mark = await sync(second, bob_token)
    assert presence_of(mark, alice)[0]["presence"] == "online"
    fake_clock.advance(60_000)
    await second.hs.presence.sweep()
    body = await sync(second, bob_token, since=mark["next_batch"])
    assert presence_of(body, alice)[0]["presence"] == "offline"
