"""The push service: who gets notified, counts per room and thread, read positions."""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.homeserver import Homeserver
from hearth.storage.push import Counts
from tests.helpers.homeserver import MatrixTestClient


async def join(client: MatrixTestClient, token: str, room_id: str) -> None:
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/join", token=token, json={})


async def counts(client: MatrixTestClient, user_id: str, room_id: str) -> dict[str, tuple[int, int]]:
    hs = client.hs
    found = await hs.push.unread_counts(user_id, [room_id], hs.event_positions.current)
    return {t: (c.notifications, c.highlights) for t, c in found.get(room_id, {}).items()}


async def room_of_three(client: MatrixTestClient) -> tuple[str, dict[str, tuple[str, str]]]:
    users = {name: await client.user(name) for name in ("alice", "bob", "carol")}
    room_id = await client.create_room(users["alice"][1], preset="public_chat")
    await join(client, users["bob"][1], room_id)
    await join(client, users["carol"][1], room_id)
    return room_id, users


def mention(user_id: str, body: str = "hey") -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, "m.mentions": {"user_ids": [user_id]}}


async def test_messages_count_for_everyone_but_the_sender(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, _), (bob, bob_token), (carol, _) = users["alice"], users["bob"], users["carol"]
    await client.send_message(bob_token, room_id, "one")
    await client.send_message(bob_token, room_id, "two")
    assert await counts(client, alice, room_id) == {"main": (2, 0)}
    assert await counts(client, carol, room_id) == {"main": (2, 0)}
    assert await counts(client, bob, room_id) == {}


async def test_mentions_highlight_and_notices_do_not_count(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, _), (_, bob_token), (carol, _) = users["alice"], users["bob"], users["carol"]
    await client.send_message(bob_token, room_id, content=mention(alice))
    await client.send_message(bob_token, room_id, content={"msgtype": "m.notice", "body": "bot"})
    await client.send_message(bob_token, room_id, event_type="m.reaction", content={})
    assert await counts(client, alice, room_id) == {"main": (1, 1)}
    assert await counts(client, carol, room_id) == {"main": (1, 0)}


async def test_read_receipt_recounts_and_never_moves_back(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, _), (_, bob_token) = users["alice"], users["bob"]
    first = await client.send_message(bob_token, room_id, "one")
    second = await client.send_message(bob_token, room_id, content=mention(alice))
    await client.send_message(bob_token, room_id, "three")
    push = client.hs.push
    await push.mark_read(alice, room_id, first)
    assert await counts(client, alice, room_id) == {"main": (2, 1)}
    await push.mark_read(alice, room_id, second, "main")
    assert await counts(client, alice, room_id) == {"main": (1, 0)}
    # An older receipt (e.g. m.read behind m.read.private) changes nothing.
    await push.mark_read(alice, room_id, first)
    assert await counts(client, alice, room_id) == {"main": (1, 0)}
    # Unknown events and events of other rooms are ignored.
    await push.mark_read(alice, room_id, "$nope")
    await push.mark_read(alice, "!nope:test.local", first)
    assert await counts(client, alice, room_id) == {"main": (1, 0)}


async def test_sending_reads_the_room(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, alice_token), (_, bob_token) = users["alice"], users["bob"]
    await client.send_message(bob_token, room_id, "one")
    await client.send_message(bob_token, room_id, "two")
    await client.send_message(alice_token, room_id, "my reply")
    assert await counts(client, alice, room_id) == {}
    await client.send_message(bob_token, room_id, "three")
    assert await counts(client, alice, room_id) == {"main": (1, 0)}


async def test_threads_are_counted_apart(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, alice_token), (_, bob_token) = users["alice"], users["bob"]
    root = await client.send_message(bob_token, room_id, "root")
    in_thread = {"msgtype": "m.text", "body": "in thread",
                 "m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    reply = await client.send_message(bob_token, room_id, content=in_thread)
    # Related to a thread event by another relation: in the thread too (one hop further).
    referencing = {"msgtype": "m.text", "body": "see above",
                   "m.relates_to": {"rel_type": "m.reference", "event_id": reply}}
    await client.send_message(bob_token, room_id, content=referencing)
    # Related to the root by a non-thread relation: main timeline.
    about_root = {"msgtype": "m.text", "body": "about root",
                  "m.relates_to": {"rel_type": "m.reference", "event_id": root}}
    await client.send_message(bob_token, room_id, content=about_root)
    assert await counts(client, alice, room_id) == {"main": (2, 0), root: (2, 0)}

    push = client.hs.push
    await push.mark_read(alice, room_id, reply, root)
    assert await counts(client, alice, room_id) == {"main": (2, 0), root: (1, 0)}
    # Replying in the thread reads the thread only.
    await client.send_message(alice_token, room_id, content=in_thread)
    assert await counts(client, alice, room_id) == {"main": (2, 0)}
    await client.send_message(bob_token, room_id, content=in_thread)
    await client.send_message(bob_token, room_id, "main again")
    last = await client.send_message(bob_token, room_id, "last")
    assert await counts(client, alice, room_id) == {"main": (4, 0), root: (1, 0)}
    # An unthreaded receipt reads everything up to its event, in every thread.
    await push.mark_read(alice, room_id, last)
    assert await counts(client, alice, room_id) == {}


async def test_leaving_drops_counts_and_later_events_do_not_count(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (_, _), (_, bob_token), (carol, carol_token) = users["alice"], users["bob"], users["carol"]
    await client.send_message(bob_token, room_id, "one")
    assert await counts(client, carol, room_id) == {"main": (1, 0)}
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/leave", token=carol_token, json={})
    await client.send_message(bob_token, room_id, "after")
    assert await counts(client, carol, room_id) == {}
    notified = await client.request("GET", "/_matrix/client/v3/notifications", token=carol_token)
    assert [n["event"]["content"].get("body") for n in notified["notifications"]] == ["one"]
    # Back in the room, what came before leaving stays read, even after a recount.
    await join(client, carol_token, room_id)
    back = await client.send_message(bob_token, room_id, "back")
    assert await counts(client, carol, room_id) == {"main": (1, 0)}
    await client.hs.push.mark_read(carol, room_id, back, "$other-thread")
    assert await counts(client, carol, room_id) == {"main": (1, 0)}


async def test_joiners_are_not_notified_about_earlier_events(client: MatrixTestClient) -> None:
    (_, alice_token), (bob, bob_token) = await client.user("alice"), await client.user("bob")
    room_id = await client.create_room(alice_token, preset="public_chat")
    await client.send_message(alice_token, room_id, "before bob")
    await join(client, bob_token, room_id)
    await client.send_message(alice_token, room_id, "after bob")
    assert await counts(client, bob, room_id) == {"main": (1, 0)}


async def test_invites_notify_the_invitee_without_counting(client: MatrixTestClient) -> None:
    (_, alice_token), (bob, bob_token) = await client.user("alice"), await client.user("bob")
    room_id = await client.create_room(alice_token)
    await client.request("POST", f"/_matrix/client/v3/rooms/{room_id}/invite", token=alice_token,
                         json={"user_id": bob})
    assert await counts(client, bob, room_id) == {}
    body = await client.request("GET", "/_matrix/client/v3/notifications", token=bob_token)
    [note] = body["notifications"]
    assert note["event"]["type"] == "m.room.member" and note["event"]["state_key"] == bob
    assert note["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]


async def test_counts_are_right_even_before_the_worker_runs(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, _), (_, bob_token) = users["alice"], users["bob"]
    hs = client.hs
    await hs.push.stop()  # no background worker: the read itself must catch up
    try:
        await client.send_message(bob_token, room_id, "one")
        await client.send_message(bob_token, room_id, content=mention(alice))
        found = await hs.push.unread_counts(alice, [room_id], hs.event_positions.current)
        assert found == {room_id: {"main": Counts(2, 1)}}
    finally:
        await hs.push.start()


async def test_waiting_for_a_position_already_processed_returns_at_start(hs: Homeserver) -> None:
    # Nothing to process: the worker's first catch-up may only read the stored
    # position, and then no batch runs to release whoever waits for it.
    await hs.push.start()
    try:
        await asyncio.wait_for(hs.push.settled(hs.event_positions.current), timeout=10)
    finally:
        await hs.push.stop()


async def test_user_rules_change_what_counts(client: MatrixTestClient) -> None:
    room_id, users = await room_of_three(client)
    (alice, alice_token), (_, bob_token) = users["alice"], users["bob"]
    rules = "/_matrix/client/v3/pushrules/global"
    await client.request("PUT", f"{rules}/room/{room_id}", token=alice_token, json={"actions": []})
    await client.send_message(bob_token, room_id, "muted")
    assert await counts(client, alice, room_id) == {}
    await client.request("DELETE", f"{rules}/room/{room_id}", token=alice_token)
    await client.request("PUT", f"{rules}/content/cake", token=alice_token,
                         json={"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]})
    await client.send_message(bob_token, room_id, "cake time")
    assert await counts(client, alice, room_id) == {"main": (1, 1)}
    await client.request("PUT", f"{rules}/override/.m.rule.master/enabled", token=alice_token,
                         json={"enabled": True})
    await client.send_message(bob_token, room_id, "cake again")
    assert await counts(client, alice, room_id) == {"main": (1, 1)}
