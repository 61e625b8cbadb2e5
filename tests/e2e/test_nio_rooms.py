"""Rooms end to end with matrix-nio, two users against a real `hearth serve`.

Alice creates a room and invites Bob, who sees the invite in his sync and
joins; they chat; Bob pages through the history both ways; Alice edits, Bob
reacts, Alice answers in a thread, Alice redacts; Bob searches; Bob leaves.
Each test builds its own room, so a broken feature fails its own test only.
nio's own methods are used wherever nio has one; relations, threads and search
(which nio lacks) go through `RecordingClient.raw`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from nio import (
    InviteEvent,
    InviteMemberEvent,
    InviteNameEvent,
    JoinedRoomsResponse,
    JoinResponse,
    MessageDirection,
    RoomCreateResponse,
    RoomGetEventResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
)

from tests.e2e.nio_client import Clients, RecordingClient

pytestmark = pytest.mark.e2e

async def sync(client: RecordingClient, timeline_limit: int = 100) -> SyncResponse:
    """An incremental sync (nio carries `next_batch` forward itself)."""
    sync_filter = {"room": {"timeline": {"limit": timeline_limit}}}
    return client.expect(await client.sync(timeout=0, sync_filter=sync_filter), SyncResponse)


def timeline(resp: SyncResponse, room_id: str, section: str = "join") -> list[dict[str, Any]]:
    rooms = getattr(resp.rooms, section)
    assert room_id in rooms, f"{room_id} not in rooms.{section}: {sorted(rooms)}"
    return [e.source for e in rooms[room_id].timeline.events]


def bodies(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message" and "body" in e["content"]]


async def send_text(client: RecordingClient, room_id: str, body: str, **extra: Any) -> str:
    content = {"msgtype": "m.text", "body": body, **extra}
    resp = client.expect(await client.room_send(room_id, "m.room.message", content), RoomSendResponse)
    return resp.event_id


async def get_event(client: RecordingClient, room_id: str, event_id: str) -> dict[str, Any]:
    resp = client.expect(await client.room_get_event(room_id, event_id), RoomGetEventResponse)
    source: dict[str, Any] = resp.event.source
    return source


async def relations(client: RecordingClient, room_id: str, event_id: str, *parts: str,
                    **query: str) -> dict[str, Any]:
    path = "/".join([f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/relations",
                     quote(event_id, safe=""), *parts])
    if query:
        path += "?" + urlencode(query)
    status, body = await client.raw("GET", path)
    assert status == 200, client.last()
    assert isinstance(body, dict)
    return body


@dataclass
class Room:
    alice: RecordingClient
    bob: RecordingClient
    room_id: str
    invite_state: list[InviteEvent]


async def invite_and_join(alice: RecordingClient, bob: RecordingClient, room_id: str) -> list[InviteEvent]:
    """Alice invites Bob; Bob finds the invite in his sync and accepts it.

    Returns the stripped state the invite came with (as nio parses it: it keeps
    only the member, name and alias events).
    """
    sync_before = await sync(bob)
    assert room_id not in sync_before.rooms.invite
    alice.expect(await alice.room_invite(room_id, bob.user_id), RoomInviteResponse)

    invited = await sync(bob)
    assert room_id in invited.rooms.invite, bob.last()
    assert room_id not in invited.rooms.join
    invite_state = invited.rooms.invite[room_id].invite_state
    mine = [e for e in invite_state if isinstance(e, InviteMemberEvent) and e.state_key == bob.user_id]
    assert [(e.membership, e.sender) for e in mine] == [("invite", alice.user_id)], bob.last()

    joined = bob.expect(await bob.join(room_id), JoinResponse)
    assert joined.room_id == room_id
    return invite_state


async def shared_room(clients: Clients, **create: Any) -> Room:
    alice = await clients.registered("alice")
    bob = await clients.registered("bob")
    created = alice.expect(await alice.room_create(**create), RoomCreateResponse)
    invite_state = await invite_and_join(alice, bob, created.room_id)
    return Room(alice, bob, created.room_id, invite_state)


async def test_invite_join_and_chat(clients: Clients) -> None:
    room = await shared_room(clients, name="Tea")
    alice, bob = room.alice, room.bob
    # The invite told Bob the room's name before he joined.
    assert [e.name for e in room.invite_state if isinstance(e, InviteNameEvent)] == ["Tea"]

    for client in (alice, bob):
        listed = client.expect(await client.joined_rooms(), JoinedRoomsResponse)
        assert room.room_id in listed.rooms, client.last()

    # Bob's first sync after joining shows the room as joined, with his join.
    first = await sync(bob)
    assert room.room_id not in first.rooms.invite
    events = timeline(first, room.room_id)
    joins = [e for e in events if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
    assert [e["content"]["membership"] for e in joins] == ["join"]
    assert first.rooms.join[room.room_id].summary.joined_member_count == 2

    await sync(alice)
    hello = await send_text(alice, room.room_id, "hello bob")
    reply = await send_text(bob, room.room_id, "hi alice")
    for client in (alice, bob):
        seen = timeline(await sync(client), room.room_id)
        assert [(e["event_id"], e["sender"], e["content"]["body"]) for e in seen] == [
            (hello, alice.user_id, "hello bob"), (reply, bob.user_id, "hi alice")]
        # Only the sending device gets its transaction id back.
        mine = next(e for e in seen if e["sender"] == client.user_id)
        theirs = next(e for e in seen if e["sender"] != client.user_id)
        assert "transaction_id" in mine.get("unsigned", {})
        assert "transaction_id" not in theirs.get("unsigned", {})


async def _page_all(client: RecordingClient, room_id: str, start: str | None, direction: MessageDirection,
                    limit: int) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """Every page from `start` on, and the `end` token of each page."""
    pages: list[list[dict[str, Any]]] = []
    ends: list[str] = []
    token = start
    while True:
        resp = client.expect(await client.room_messages(room_id, start=token, direction=direction,
                                                        limit=limit), RoomMessagesResponse)
        chunk = [e.source for e in resp.chunk]
        assert len(chunk) <= limit, client.last()
        if token is not None:
            assert resp.start == token, client.last()
        if resp.end is None:
            # The spec's end of the history: no further page, and so nothing here to be lost.
            if chunk:
                pages.append(chunk)
            return pages, ends
        assert chunk, f"an empty page must have no `end`\n{client.last()}"
        pages.append(chunk)
        ends.append(resp.end)
        token = resp.end
        assert len(pages) < 100, "pagination does not end"


async def test_bob_pages_through_the_history_both_ways(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    sent: list[tuple[str, str]] = []
    for i in range(23):
        sender = alice if i % 3 else bob
        body = f"message {i:02d}"
        sent.append((await send_text(sender, room.room_id, body), body))
    sent_ids = [event_id for event_id, _ in sent]

    # Backwards from the start of Bob's (limited) sync timeline, its prev_batch, in pages of 5.
    synced = await sync(bob, timeline_limit=3)
    assert synced.rooms.join[room.room_id].timeline.limited
    prev_batch = synced.rooms.join[room.room_id].timeline.prev_batch
    live = timeline(synced, room.room_id)
    assert [e["event_id"] for e in live] == sent_ids[-3:]
    assert prev_batch
    back_pages, back_ends = await _page_all(bob, room.room_id, prev_batch, MessageDirection.back, 5)
    assert len(back_pages) >= 5
    history = [e for page in back_pages for e in page]
    history_ids = [e["event_id"] for e in history]
    assert len(history_ids) == len(set(history_ids)), "an event came twice"
    assert not set(history_ids) & {e["event_id"] for e in live}, "prev_batch overlaps the sync timeline"
    whole = list(reversed(history)) + live
    assert whole[0]["type"] == "m.room.create"
    messages = [(e["event_id"], e["content"]["body"]) for e in whole if e["type"] == "m.room.message"]
    assert messages == sent

    # Forwards from the very start of the room, in pages of 4: the same events, oldest first.
    fwd_pages, _ = await _page_all(bob, room.room_id, None, MessageDirection.front, 4)
    forwards = [e["event_id"] for page in fwd_pages for e in page]
    assert forwards == [e["event_id"] for e in whole]

    # Forwards from a token taken mid-way back: exactly what came after that point.
    back_token = back_ends[1]  # after two backward pages of five
    after, _ = await _page_all(bob, room.room_id, back_token, MessageDirection.front, 6)
    after_ids = [e["event_id"] for page in after for e in page]
    newest_first = list(reversed([e["event_id"] for e in whole]))
    expected = list(reversed(newest_first[len(live):len(live) + 10])) + [e["event_id"] for e in live]
    assert after_ids == expected
    assert set(sent_ids) <= set(forwards)


async def test_edit_is_seen_and_aggregated(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    original = await send_text(alice, room.room_id, "the meeting is at 3")
    await sync(bob)
    edit = await send_text(
        alice, room.room_id, "* the meeting is at 4",
        **{"m.new_content": {"msgtype": "m.text", "body": "the meeting is at 4"},
           "m.relates_to": {"rel_type": "m.replace", "event_id": original}},
    )

    seen = timeline(await sync(bob), room.room_id)
    assert [e["event_id"] for e in seen] == [edit]
    assert seen[0]["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": original}
    assert seen[0]["content"]["m.new_content"]["body"] == "the meeting is at 4"

    # The original, fetched by Bob, carries the edit in its bundled aggregations.
    fetched = await get_event(bob, room.room_id, original)
    assert fetched["content"]["body"] == "the meeting is at 3"  # the server leaves the content alone
    bundled = fetched["unsigned"]["m.relations"]["m.replace"]
    assert bundled["event_id"] == edit
    assert bundled["content"]["m.new_content"]["body"] == "the meeting is at 4"

    listed = await relations(bob, room.room_id, original, "m.replace")
    assert [e["event_id"] for e in listed["chunk"]] == [edit]


async def test_reaction_is_listed_in_relations(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    target = await send_text(alice, room.room_id, "cake in the kitchen")
    await sync(alice)
    reaction = bob.expect(await bob.room_send(room.room_id, "m.reaction", {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "🍰"}}), RoomSendResponse)

    seen = timeline(await sync(alice), room.room_id)
    assert [(e["event_id"], e["type"], e["sender"]) for e in seen] == [
        (reaction.event_id, "m.reaction", bob.user_id)]
    assert seen[0]["content"]["m.relates_to"]["key"] == "🍰"

    for client in (alice, bob):
        by_type = await relations(client, room.room_id, target, "m.annotation", "m.reaction")
        assert [(e["event_id"], e["content"]["m.relates_to"]["key"]) for e in by_type["chunk"]] == [
            (reaction.event_id, "🍰")]
    # A reaction is not a reply in a thread.
    assert (await relations(bob, room.room_id, target, "m.thread"))["chunk"] == []


async def test_thread_reply_shows_in_relations_and_threads(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    root = await send_text(bob, room.room_id, "who is coming on Saturday?")
    await send_text(alice, room.room_id, "unrelated chatter")
    replies = [
        await send_text(alice, room.room_id, f"thread reply {i}",
                        **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
        for i in range(3)
    ]

    listed = await relations(bob, room.room_id, root, "m.thread")
    assert [e["event_id"] for e in listed["chunk"]] == list(reversed(replies))  # newest first
    forwards = await relations(bob, room.room_id, root, "m.thread", dir="f", limit="2")
    assert [e["event_id"] for e in forwards["chunk"]] == replies[:2]
    rest = await relations(bob, room.room_id, root, "m.thread", dir="f", limit="2",
                           **{"from": forwards["next_batch"]})
    assert [e["event_id"] for e in rest["chunk"]] == replies[2:]
    assert "next_batch" not in rest

    status, threads = await bob.raw("GET", f"/_matrix/client/v1/rooms/{quote(room.room_id, safe='')}/threads")
    assert status == 200, bob.last()
    assert [e["event_id"] for e in threads["chunk"]] == [root]
    summary = threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 3
    assert summary["latest_event"]["event_id"] == replies[-1]
    assert summary["current_user_participated"] is True  # Bob wrote the root

    status, participated = await alice.raw(
        "GET", f"/_matrix/client/v1/rooms/{quote(room.room_id, safe='')}/threads?include=participated")
    assert status == 200, alice.last()
    assert [e["event_id"] for e in participated["chunk"]] == [root]

    fetched = await get_event(alice, room.room_id, root)
    assert fetched["unsigned"]["m.relations"]["m.thread"]["count"] == 3


async def test_redaction_is_seen_by_the_other_user(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    keep = await send_text(alice, room.room_id, "this stays")
    oops = await send_text(alice, room.room_id, "my password is hunter2")
    await sync(bob)

    redaction = alice.expect(await alice.room_redact(room.room_id, oops, reason="typo"), RoomRedactResponse)

    seen = timeline(await sync(bob), room.room_id)
    assert [(e["type"], e["event_id"]) for e in seen] == [("m.room.redaction", redaction.event_id)]
    assert oops in (seen[0].get("redacts"), seen[0]["content"].get("redacts"))
    assert seen[0]["content"].get("reason") == "typo"

    fetched = await get_event(bob, room.room_id, oops)
    assert fetched["content"] == {}
    assert fetched["unsigned"]["redacted_because"]["event_id"] == redaction.event_id

    history = bob.expect(await bob.room_messages(room.room_id, direction=MessageDirection.back, limit=10),
                         RoomMessagesResponse)
    by_id = {e.source["event_id"]: e.source for e in history.chunk}
    assert by_id[oops]["content"] == {}
    assert by_id[keep]["content"]["body"] == "this stays"
    assert "hunter2" not in str(history.chunk) + bob.exchanges[-1].response_body


async def _search(client: RecordingClient, term: str) -> list[dict[str, Any]]:
    status, body = await client.raw("POST", "/_matrix/client/v3/search", {
        "search_categories": {"room_events": {"search_term": term, "order_by": "recent"}}})
    assert status == 200, client.last()
    results = body["search_categories"]["room_events"]
    found: list[dict[str, Any]] = [r["result"] for r in results["results"]]
    assert results["count"] >= len(found)
    return found


async def test_search_finds_only_what_bob_may_see(clients: Clients) -> None:
    alice = await clients.registered("alice")
    bob = await clients.registered("bob")
    joined_only = [{"type": "m.room.history_visibility", "state_key": "",
                    "content": {"history_visibility": "joined"}}]
    shared = alice.expect(await alice.room_create(initial_state=joined_only), RoomCreateResponse).room_id
    secret = alice.expect(await alice.room_create(), RoomCreateResponse).room_id

    await send_text(alice, secret, "pineapple in the secret room")
    await send_text(alice, shared, "pineapple before bob came")
    await invite_and_join(alice, bob, shared)
    during = await send_text(alice, shared, "pineapple while bob is here")
    mine = await send_text(bob, shared, "I like PINEAPPLE too")
    gone = await send_text(alice, shared, "pineapple soon to be redacted")
    await send_text(alice, shared, "nothing to find here")
    alice.expect(await alice.room_redact(shared, gone), RoomRedactResponse)

    found = await _search(bob, "pineapple")
    assert [(r["event_id"], r["room_id"]) for r in found] == [(mine, shared), (during, shared)]

    bob.expect(await bob.room_leave(shared), RoomLeaveResponse)
    await send_text(alice, shared, "pineapple after bob left")
    assert [r["event_id"] for r in await _search(bob, "pineapple")] == [mine, during]

    # Alice sees all her own rooms, but never a redacted message.
    alice_found = {r["content"]["body"] for r in await _search(alice, "pineapple")}
    assert alice_found == {"pineapple in the secret room", "pineapple before bob came",
                           "pineapple while bob is here", "I like PINEAPPLE too", "pineapple after bob left"}


async def test_leaving_moves_the_room_to_leave(clients: Clients) -> None:
    room = await shared_room(clients)
    alice, bob = room.alice, room.bob
    for client in (alice, bob):
        assert room.room_id in (await sync(client)).rooms.join

    bob.expect(await bob.room_leave(room.room_id), RoomLeaveResponse)

    bob_sync = await sync(bob)
    assert room.room_id not in bob_sync.rooms.join
    left = timeline(bob_sync, room.room_id, "leave")
    assert [(e["type"], e["state_key"], e["content"]["membership"]) for e in left
            if e["type"] == "m.room.member"] == [("m.room.member", bob.user_id, "leave")]
    listed = bob.expect(await bob.joined_rooms(), JoinedRoomsResponse)
    assert room.room_id not in listed.rooms

    alice_sync = await sync(alice)
    assert room.room_id not in alice_sync.rooms.leave
    seen = timeline(alice_sync, room.room_id)
    assert [(e["state_key"], e["content"]["membership"]) for e in seen if e["type"] == "m.room.member"] == [
        (bob.user_id, "leave")]
    assert alice_sync.rooms.join[room.room_id].summary.joined_member_count == 1
    listed = alice.expect(await alice.joined_rooms(), JoinedRoomsResponse)
    assert room.room_id in listed.rooms

    # What Alice says afterwards reaches her sync, not Bob's; the room stays in Bob's past.
    after = await send_text(alice, room.room_id, "bye bob")
    assert [e["event_id"] for e in timeline(await sync(alice), room.room_id)] == [after]
    later = await sync(bob)
    assert room.room_id not in later.rooms.join
    assert room.room_id not in later.rooms.leave  # nothing new to tell him about it
