"""POST /rooms/{roomId}/receipt/{receiptType}/{eventId} and m.receipt in /sync."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.helpers.homeserver import MatrixTestClient

SYNC = "/_matrix/client/v3/sync"


async def sync(
    client: MatrixTestClient, token: str, since: str | None = None, **params: Any
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.request(  # type: ignore[no-any-return]
        "GET", SYNC + "?" + (f"since={since}&" if since else "") + query, token=token
    )


def receipt_events(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"].get("join", {}).get(room_id)
    if room is None:
        return []
    return [e for e in room["ephemeral"]["events"] if e["type"] == "m.receipt"]


def receipts_of(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    """All receipt content of the room in one response, merged."""
    merged: dict[str, Any] = {}
    for event in receipt_events(body, room_id):
        for event_id, by_type in event["content"].items():
            for receipt_type, by_user in by_type.items():
                merged.setdefault(event_id, {}).setdefault(receipt_type, {}).update(by_user)
    return merged


async def post_receipt(client: MatrixTestClient, token: str, room_id: str, event_id: str,
                       receipt_type: str = "m.read", body: Any = None, expect: int = 200) -> Any:
    return await client.request(
        "POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/{receipt_type}/{event_id}",
        token=token, json={} if body is None else body, expect=expect,
    )


async def shared_room(client: MatrixTestClient) -> tuple[str, tuple[str, str], tuple[str, str]]:
    alice = await client.user("alice")
    bob = await client.user("bob")
    room_id = await client.create_room(alice[1], preset="public_chat")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=bob[1], json={})
    return room_id, alice, bob


async def test_receipt_reaches_room_mates_in_initial_and_incremental_sync(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    before = await sync(client, bob_token)
    assert receipts_of(before, room_id) == {}
    await post_receipt(client, alice_token, room_id, event_id)
    after = await sync(client, bob_token, since=before["next_batch"])
    receipt = receipts_of(after, room_id)[event_id]["m.read"][alice]
    assert receipt == {"ts": client.hs.clock.time_ms()}
    initial = await sync(client, bob_token)
    assert alice in receipts_of(initial, room_id)[event_id]["m.read"]
    # Nothing new: no room at all.
    again = await sync(client, bob_token, since=after["next_batch"])
    assert again["rooms"] == {}


async def test_incremental_sync_has_only_changed_receipts(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (bob, bob_token) = await shared_room(client)
    first = await client.send_message(alice_token, room_id, "one")
    second = await client.send_message(alice_token, room_id, "two")
    await post_receipt(client, alice_token, room_id, first)
    mark = await sync(client, bob_token)
    await post_receipt(client, bob_token, room_id, second)
    body = await sync(client, bob_token, since=mark["next_batch"])
    assert receipts_of(body, room_id) == {second: {"m.read": {bob: {"ts": client.hs.clock.time_ms()}}}}
    assert alice not in json.dumps(receipt_events(body, room_id))


async def test_private_receipts_are_only_for_their_owner(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    bob_mark = await sync(client, bob_token)
    alice_mark = await sync(client, alice_token)
    await post_receipt(client, alice_token, room_id, event_id, "m.read.private")
    own = await sync(client, alice_token, since=alice_mark["next_batch"])
    assert alice in receipts_of(own, room_id)[event_id]["m.read.private"]
    other = await sync(client, bob_token, since=bob_mark["next_batch"])
    assert receipt_events(other, room_id) == []
    assert "m.read.private" not in json.dumps(await sync(client, bob_token))
    assert alice in receipts_of(await sync(client, alice_token), room_id)[event_id]["m.read.private"]


async def test_threaded_receipts_are_kept_apart(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    root = await client.send_message(bob_token, room_id, "root")
    reply = await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "in thread", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    later = await client.send_message(bob_token, room_id, "main again")
    await post_receipt(client, alice_token, room_id, later)
    await post_receipt(client, alice_token, room_id, root, body={"thread_id": "main"})
    await post_receipt(client, alice_token, room_id, reply, body={"thread_id": root})
    body = receipts_of(await sync(client, bob_token), room_id)
    assert body[later]["m.read"][alice].get("thread_id") is None
    assert body[root]["m.read"][alice]["thread_id"] == "main"
    assert body[reply]["m.read"][alice]["thread_id"] == root
    # The thread root itself may carry its own thread's receipt.
    await post_receipt(client, alice_token, room_id, root, body={"thread_id": root})


async def test_thread_id_must_match_the_event(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    root = await client.send_message(bob_token, room_id, "root")
    reply = await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "in thread", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    edit = await client.send_message(bob_token, room_id, content={
        "msgtype": "m.text", "body": "* edit", "m.relates_to": {"rel_type": "m.replace", "event_id": reply}})
    plain = await client.send_message(bob_token, room_id, "plain")
    # An edit of a threaded event is in the thread (relations are followed).
    await post_receipt(client, alice_token, room_id, edit, body={"thread_id": root})
    for event_id, thread_id in ((reply, "main"), (plain, root), (edit, "main")):
        err = await post_receipt(client, alice_token, room_id, event_id, body={"thread_id": thread_id},
                                 expect=400)
        assert err["errcode"] == "M_INVALID_PARAM"


async def test_receipts_never_move_backwards(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    first = await client.send_message(bob_token, room_id, "one")
    second = await client.send_message(bob_token, room_id, "two")
    await post_receipt(client, alice_token, room_id, second)
    mark = await sync(client, bob_token)
    await post_receipt(client, alice_token, room_id, first)
    assert receipt_events(await sync(client, bob_token, since=mark["next_batch"]), room_id) == []
    assert first not in receipts_of(await sync(client, bob_token), room_id)


async def test_long_poll_wakes_on_receipt(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    mark = await sync(client, bob_token)
    poll = asyncio.create_task(sync(client, bob_token, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await post_receipt(client, alice_token, room_id, event_id)
    body = await asyncio.wait_for(poll, 10)
    assert alice in receipts_of(body, room_id)[event_id]["m.read"]


async def test_left_rooms_and_strangers_see_no_receipts(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    event_id = await client.send_message(alice_token, room_id, "hi")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/leave", token=bob_token, json={})
    bob_mark = await sync(client, bob_token)
    await post_receipt(client, alice_token, room_id, event_id)
    assert receipt_events(await sync(client, bob_token, since=bob_mark["next_batch"]), room_id) == []
    assert receipt_events(await sync(client, bob_token), room_id) == []
    assert receipt_events(await sync(client, carol_token), room_id) == []


async def test_ephemeral_filter_can_leave_receipts_out(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(alice_token, room_id, "hi")
    await post_receipt(client, alice_token, room_id, event_id)
    flt = json.dumps({"room": {"ephemeral": {"not_types": ["m.rec*"]}}})
    assert receipt_events(await sync(client, bob_token, filter=flt), room_id) == []
    flt = json.dumps({"room": {"ephemeral": {"not_senders": ["@alice:test.local"]}}})
    assert receipt_events(await sync(client, bob_token, filter=flt), room_id) == []


async def test_fully_read_through_the_receipt_endpoint(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    await post_receipt(client, alice_token, room_id, event_id, "m.fully_read")
    url = f"/_matrix/client/v3/user/{alice}/rooms/{room_id}/account_data/m.fully_read"
    marker = await client.request("GET", url, token=alice_token)
    assert marker == {"event_id": event_id}
    assert receipt_events(await sync(client, bob_token), room_id) == []
    err = await post_receipt(client, alice_token, room_id, event_id, "m.fully_read",
                             body={"thread_id": "main"}, expect=400)
    assert err["errcode"] == "M_INVALID_PARAM"


async def test_receipt_clears_unread_notifications(client: MatrixTestClient) -> None:
    room_id, (alice, alice_token), (_, bob_token) = await shared_room(client)
    await client.send_message(bob_token, room_id, "one")
    last = await client.send_message(bob_token, room_id, "two")
    hs = client.hs
    unread = await hs.push.unread_counts(alice, [room_id], hs.event_positions.current)
    assert unread[room_id]["main"].notifications == 2
    await post_receipt(client, alice_token, room_id, last, "m.read.private")
    assert await hs.push.unread_counts(alice, [room_id], hs.event_positions.current) == {}


async def test_empty_body_is_accepted(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    event_id = await client.send_message(bob_token, room_id, "hi")
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{event_id}",
                         token=alice_token, data=b"")
    await client.request("POST", f"/_matrix/client/r0/rooms/{room_id}/receipt/m.read/{event_id}",
                         token=alice_token, json={})


async def test_receipt_errors(client: MatrixTestClient) -> None:
    room_id, (_, alice_token), (_, bob_token) = await shared_room(client)
    _, carol_token = await client.user("carol")
    event_id = await client.send_message(bob_token, room_id, "hi")
    other_room = await client.create_room(carol_token)
    foreign = await client.send_message(carol_token, other_room, "elsewhere")

    async def error(token: str, room: str, event: str, receipt_type: str = "m.read", body: Any = None,
                    status: int = 400) -> str:
        return (await post_receipt(client, token, room, event, receipt_type, body, expect=status))["errcode"]

    assert await error(carol_token, room_id, event_id, status=403) == "M_FORBIDDEN"
    assert await error(alice_token, "!unknown:test.local", event_id, status=403) == "M_FORBIDDEN"
    assert await error(alice_token, room_id, "$missing", status=404) == "M_NOT_FOUND"
    assert await error(alice_token, room_id, foreign, status=404) == "M_NOT_FOUND"
    assert await error(alice_token, room_id, event_id, "m.unknown") == "M_INVALID_PARAM"
    assert await error(alice_token, room_id, "not-an-event") == "M_INVALID_PARAM"
    assert await error(alice_token, "not-a-room", event_id) == "M_INVALID_PARAM"
    for thread_id in ("", 5, None, "nonsense"):
        assert await error(alice_token, room_id, event_id, body={"thread_id": thread_id}) == "M_INVALID_PARAM"
    err = await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{event_id}",
                               token=alice_token, data=b"{not json", expect=400)
    assert err["errcode"] == "M_NOT_JSON"
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{event_id}",
                         json={}, expect=401)
