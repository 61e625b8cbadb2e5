"""GET /notifications, and unread notification counts in /sync."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient

NOTIFICATIONS = "/_matrix/client/v3/notifications"
SYNC = "/_matrix/client/v3/sync"


async def two_in_a_room(client: MatrixTestClient) -> tuple[str, str, str, str, str]:
    alice, alice_token = await client.user("alice")
    bob, bob_token = await client.user("bob")
    room_id = await client.create_room(alice_token, preset="public_chat")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob_token, json={})
    return room_id, alice, alice_token, bob, bob_token


def bodies(body: dict[str, Any]) -> list[str]:
    return [n["event"]["content"]["body"] for n in body["notifications"]]


async def test_notifications_list_newest_first_with_fields(client: MatrixTestClient,
                                                           fake_clock: FakeClock) -> None:
    room_id, alice, alice_token, _, bob_token = await two_in_a_room(client)
    first = await client.send_message(bob_token, room_id, "one")
    fake_clock.advance(1000)
    await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "two", "m.mentions": {"user_ids": [alice]}})
    body = await client.request("GET", NOTIFICATIONS, token=alice_token)
    assert bodies(body) == ["two", "one"]
    newest, oldest = body["notifications"]
    assert newest["room_id"] == room_id and newest["read"] is False
    sound = {"set_tweak": "sound", "value": "default"}
    assert newest["actions"] == ["notify", sound, {"set_tweak": "highlight"}]
    # Two members: the one-to-one rule.
    assert oldest["actions"] == ["notify", sound]
    assert oldest["event"]["event_id"] == first and "room_id" not in oldest["event"]
    assert oldest["ts"] == fake_clock.time_ms() - 1000 and newest["ts"] == fake_clock.time_ms()
    assert "next_token" not in body
    # Bob sent them: nothing for him.
    assert (await client.request("GET", NOTIFICATIONS, token=bob_token))["notifications"] == []


async def test_pagination_and_only_highlight(client: MatrixTestClient) -> None:
    room_id, alice, alice_token, _, bob_token = await two_in_a_room(client)
    for i in range(5):
        content: dict[str, Any] = {"msgtype": "m.text", "body": f"m{i}"}
        if i % 2 == 0:
            content["m.mentions"] = {"user_ids": [alice]}
        await client.send_message(bob_token, room_id, content=content)
    page = await client.request("GET", f"{NOTIFICATIONS}?limit=2", token=alice_token)
    assert bodies(page) == ["m4", "m3"]
    page2 = await client.request("GET", f"{NOTIFICATIONS}?limit=2&from={page['next_token']}",
                                 token=alice_token)
    assert bodies(page2) == ["m2", "m1"]
    page3 = await client.request("GET", f"{NOTIFICATIONS}?limit=2&from={page2['next_token']}",
                                 token=alice_token)
    assert bodies(page3) == ["m0"] and "next_token" not in page3
    highlights = await client.request("GET", f"{NOTIFICATIONS}?only=highlight", token=alice_token)
    assert bodies(highlights) == ["m4", "m2", "m0"]


async def test_read_flag_follows_the_read_position(client: MatrixTestClient) -> None:
    room_id, alice, alice_token, _, bob_token = await two_in_a_room(client)
    first = await client.send_message(bob_token, room_id, "one")
    await client.send_message(bob_token, room_id, "two")
    await client.hs.push.mark_read(alice, room_id, first)
    body = await client.request("GET", NOTIFICATIONS, token=alice_token)
    assert [(n["event"]["content"]["body"], n["read"]) for n in body["notifications"]] == [
        ("two", False), ("one", True)]


async def test_notification_errors(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    for query in ("from=abc", "from=-1", "limit=0", "limit=x"):
        body = await client.request("GET", f"{NOTIFICATIONS}?{query}", token=token, expect=400)
        assert body["errcode"] == "M_INVALID_PARAM"
    body = await client.request("GET", NOTIFICATIONS, expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
    assert await client.request("GET", f"{NOTIFICATIONS}?limit=1000", token=token) == {"notifications": []}


async def test_sync_has_counts_with_the_events(client: MatrixTestClient) -> None:
    room_id, alice, alice_token, _, bob_token = await two_in_a_room(client)
    initial = await client.request("GET", SYNC, token=alice_token)
    assert initial["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 0, "highlight_count": 0}
    poll = asyncio.create_task(client.request(
        "GET", f"{SYNC}?since={initial['next_batch']}&timeout=30000", token=alice_token))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "hi", "m.mentions": {"user_ids": [alice]}})
    body = await asyncio.wait_for(poll, 10)
    room = body["rooms"]["join"][room_id]
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == ["hi"]
    assert room["unread_notifications"] == {"notification_count": 1, "highlight_count": 1}
    await client.send_message(bob_token, room_id, "more")
    body = await client.request("GET", f"{SYNC}?since={body['next_batch']}", token=alice_token)
    assert body["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 2, "highlight_count": 1}
    # Alice answers: her own event reads the room.
    await client.send_message(alice_token, room_id, "ok")
    body = await client.request("GET", f"{SYNC}?since={body['next_batch']}", token=alice_token)
    assert body["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 0, "highlight_count": 0}
    # Nothing new: no rooms, so no counts.
    quiet = await client.request("GET", f"{SYNC}?since={body['next_batch']}", token=alice_token)
    assert quiet["rooms"] == {}


async def test_sync_thread_counts_when_the_filter_asks(client: MatrixTestClient) -> None:
    room_id, _, alice_token, _, bob_token = await two_in_a_room(client)
    root = await client.send_message(bob_token, room_id, "root")
    await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "threaded", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    plain = await client.request("GET", SYNC, token=alice_token)
    room = plain["rooms"]["join"][room_id]
    assert room["unread_notifications"] == {"notification_count": 2, "highlight_count": 0}
    assert "unread_thread_notifications" not in room
    flt = quote(json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}}))
    threaded = await client.request("GET", f"{SYNC}?filter={flt}", token=alice_token)
    room = threaded["rooms"]["join"][room_id]
    assert room["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}
    assert room["unread_thread_notifications"] == {root: {"notification_count": 1, "highlight_count": 0}}


async def receipt(client: MatrixTestClient, token: str, room_id: str, event_id: str,
                  receipt_type: str = "m.read", **body: Any) -> None:
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/{receipt_type}/{event_id}",
                         token=token, json=body)


async def test_read_receipts_clear_counts(client: MatrixTestClient) -> None:
    room_id, alice, alice_token, _, bob_token = await two_in_a_room(client)
    first = await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "one", "m.mentions": {"user_ids": [alice]}})
    second = await client.send_message(bob_token, room_id, "two")
    third = await client.send_message(bob_token, room_id, "three")
    initial = await client.request("GET", SYNC, token=alice_token)
    assert initial["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 3, "highlight_count": 1}
    await receipt(client, alice_token, room_id, first)
    body = await client.request("GET", f"{SYNC}?since={initial['next_batch']}", token=alice_token)
    assert body["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 2, "highlight_count": 0}
    # A private receipt further ahead wins; the public one behind it changes nothing.
    await receipt(client, alice_token, room_id, second, "m.read.private")
    await receipt(client, alice_token, room_id, first)
    body = await client.request("GET", f"{SYNC}?since={body['next_batch']}", token=alice_token)
    assert body["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 1, "highlight_count": 0}
    # The read marker endpoint's receipts count too.
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/read_markers", token=alice_token,
                         json={"m.fully_read": third, "m.read": third})
    body = await client.request("GET", f"{SYNC}?since={body['next_batch']}", token=alice_token)
    assert body["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 0, "highlight_count": 0}
    marked = await client.request("GET", NOTIFICATIONS, token=alice_token)
    assert [n["read"] for n in marked["notifications"]] == [True, True, True]


async def test_threaded_receipts_clear_their_thread(client: MatrixTestClient) -> None:
    room_id, _, alice_token, _, bob_token = await two_in_a_room(client)
    root = await client.send_message(bob_token, room_id, "root")
    in_thread = await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "threaded", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    flt = quote(json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}}))
    await receipt(client, alice_token, room_id, in_thread, thread_id=root)
    room = (await client.request("GET", f"{SYNC}?filter={flt}", token=alice_token))["rooms"]["join"][room_id]
    assert room["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}
    assert "unread_thread_notifications" not in room
    await receipt(client, alice_token, room_id, root, thread_id="main")
    room = (await client.request("GET", f"{SYNC}?filter={flt}", token=alice_token))["rooms"]["join"][room_id]
    assert room["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}
