"""GET /rooms/{roomId}/messages: pagination, tokens, filters, lazy-loaded members."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, all_messages, bodies, join, messages, set_visibility


async def room_with_messages(client: MatrixTestClient, count: int) -> tuple[str, str, list[str]]:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    ids = [await client.send_message(alice, room_id, f"m{i}") for i in range(count)]
    return alice, room_id, ids


async def test_backwards_pages_newest_first_until_the_room_starts(client: MatrixTestClient) -> None:
    alice, room_id, ids = await room_with_messages(client, 7)
    first = await messages(client, alice, room_id, limit=3)
    assert [e["event_id"] for e in first["chunk"]] == ids[::-1][:3]
    second = await messages(client, alice, room_id, limit=3, **{"from": first["end"]})
    assert second["start"] == first["end"]
    assert [e["event_id"] for e in second["chunk"]] == ids[::-1][3:6]
    everything = await all_messages(client, alice, room_id, limit=4)
    assert bodies(everything) == [f"m{i}" for i in reversed(range(7))]
    assert everything[-1]["type"] == "m.room.create"  # the room's first event; no `end` after it


async def test_forwards_from_the_start_and_the_live_end(client: MatrixTestClient) -> None:
    alice, room_id, ids = await room_with_messages(client, 5)
    forwards = await all_messages(client, alice, room_id, dir="f", limit=4)
    assert forwards[0]["type"] == "m.room.create"
    assert bodies(forwards) == [f"m{i}" for i in range(5)]
    # At the live end forwards pagination hands out a token, then an empty page without one;
    # a later event shows up from that token.
    last = await messages(client, alice, room_id, dir="f", limit=100)
    assert [e["event_id"] for e in last["chunk"]][-1] == ids[-1]
    tail = await messages(client, alice, room_id, dir="f", **{"from": last["end"]})
    assert tail["chunk"] == [] and "end" not in tail
    new = await client.send_message(alice, room_id, "new")
    later = await messages(client, alice, room_id, dir="f", **{"from": last["end"]})
    assert [e["event_id"] for e in later["chunk"]] == [new]


async def test_from_and_to_bound_the_range(client: MatrixTestClient) -> None:
    alice, room_id, ids = await room_with_messages(client, 6)
    page = await messages(client, alice, room_id, limit=2)  # m5 m4
    older = await messages(client, alice, room_id, limit=2, **{"from": page["end"]})  # m3 m2
    # From the newest boundary back to the end of the first page: exactly the first page.
    bounded = await messages(client, alice, room_id, limit=10, to=page["end"], **{"from": page["start"]})
    assert [e["event_id"] for e in bounded["chunk"]] == ids[::-1][:2]
    assert "end" not in bounded
    # Forwards from the end of the second page to the end of the first: m4 m5... bounded by `to`.
    fwd = await messages(client, alice, room_id, dir="f", to=page["start"], **{"from": older["start"]})
    assert bodies(fwd["chunk"]) == ["m4", "m5"]


async def test_long_history_pages_without_gaps_or_repeats(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 120)
    back = await all_messages(client, alice, room_id, limit=50)
    assert bodies(back) == [f"m{i}" for i in reversed(range(120))]
    fwd = await all_messages(client, alice, room_id, dir="f", limit=50)
    assert [e["event_id"] for e in fwd] == [e["event_id"] for e in reversed(back)]


async def test_stream_tokens_are_accepted(client: MatrixTestClient) -> None:
    alice, room_id, ids = await room_with_messages(client, 4)
    room = await client.hs.room_store.get(room_id)
    assert room is not None
    async with client.hs.db.read() as conn:
        stored = await client.hs.event_store.by_ids(conn, [ids[1]])
    stream = stored[ids[1]].stream_ordering
    page = await messages(client, alice, room_id, limit=2, **{"from": f"s{stream}"})
    assert bodies(page["chunk"]) == ["m1", "m0"]
    # A whole sync token: only the room-event position (before the first underscore) counts.
    page = await messages(client, alice, room_id, limit=1, **{"from": f"s{stream}_7_3"})
    assert bodies(page["chunk"]) == ["m1"]
    fwd = await messages(client, alice, room_id, dir="f", **{"from": f"s{stream}"})
    assert bodies(fwd["chunk"]) == ["m2", "m3"]


@pytest.mark.parametrize("token", ["x", "t1", "t1_", "s", "t1_2_3", "sabc", "t_1_2", "s1_x"])
async def test_malformed_tokens_are_invalid_param(client: MatrixTestClient, token: str) -> None:
    alice, room_id, _ = await room_with_messages(client, 1)
    for param in ("from", "to"):
        body = await messages(client, alice, room_id, expect=400, **{param: token})
        assert body["errcode"] == "M_INVALID_PARAM"


async def test_parameter_errors(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 1)
    assert (await messages(client, alice, room_id, dir="x", expect=400))["errcode"] == "M_INVALID_PARAM"
    assert (await messages(client, alice, room_id, limit=-1, expect=400))["errcode"] == "M_INVALID_PARAM"
    assert (await messages(client, alice, room_id, limit="many", expect=400))["errcode"] == "M_INVALID_PARAM"
    resp = await client.request("GET", f"{V3}/rooms/{room_id}/messages?dir=b&filter=%7Bnope", token=alice,
                                expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    resp = await messages(client, alice, room_id, filter={"types": "m.room.message"}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    resp = await messages(client, alice, room_id, filter={"senders": ["alice"]}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    resp = await client.request("GET", f"{V3}/rooms/nope/messages?dir=b", token=alice, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    resp = await client.request("GET", f"{V3}/rooms/!unknown:test.local/messages?dir=b", token=alice,
                                expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    await client.request("GET", f"{V3}/rooms/{room_id}/messages?dir=b", expect=401)


async def test_limit_defaults_to_ten_and_dir_to_forwards(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 15)
    body = await client.request("GET", f"{V3}/rooms/{room_id}/messages", token=alice)
    assert len(body["chunk"]) == 10
    assert body["chunk"][0]["type"] == "m.room.create"


async def test_limit_zero_returns_nothing_but_a_token(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 2)
    body = await messages(client, alice, room_id, limit=0)
    assert body["chunk"] == [] and "start" in body


async def test_filter_types_senders_and_urls(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, "a1")
    await client.send_message(bob, room_id, "b1")
    await client.send_message(alice, room_id, event_type="org.example.custom", content={"body": "c1"})
    await client.send_message(bob, room_id, content={"msgtype": "m.image", "body": "pic", "url": "mxc://x/y"})

    def only(flt: dict[str, Any]) -> Any:
        return messages(client, alice, room_id, limit=50, filter=flt)

    page = await only({"types": ["m.room.message"], "senders": [bob_id]})
    assert bodies(page["chunk"]) == ["pic", "b1"]
    page = await only({"types": ["org.example.*"]})
    assert [e["content"]["body"] for e in page["chunk"]] == ["c1"]
    page = await only({"not_types": ["m.room.*"], "types": ["*"]})
    assert [e["type"] for e in page["chunk"]] == ["org.example.custom"]
    page = await only({"types": ["m.room.message"], "not_senders": [bob_id]})
    assert bodies(page["chunk"]) == ["a1"]
    page = await only({"contains_url": True})
    assert bodies(page["chunk"]) == ["pic"]
    page = await only({"types": ["m.room.message"], "contains_url": False})
    assert bodies(page["chunk"]) == ["b1", "a1"]
    page = await only({"types": []})
    assert page["chunk"] == []
    page = await only({"not_rooms": [room_id]})
    assert page["chunk"] == [] and "end" not in page
    page = await only({"types": ["m.room.message"], "limit": 1})
    assert bodies(page["chunk"]) == ["pic"]
    # `_` and `%` in a type are literal characters, not SQL wildcards.
    page = await only({"types": ["m_room_message", "m.room.%"]})
    assert page["chunk"] == []


async def test_filter_that_matches_little_still_pages_to_the_end(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 30)
    await client.send_message(alice, room_id, "needle", event_type="org.example.rare", content={"body": "n"})
    for i in range(30):
        await client.send_message(alice, room_id, f"later{i}")
    found = await all_messages(client, alice, room_id, limit=5, filter={"types": ["org.example.rare"]})
    assert [e["type"] for e in found] == ["org.example.rare"]


async def test_lazy_loaded_members_are_the_senders(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    carol_id, carol = await client.user("carol")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await client.send_message(alice, room_id, "from alice")
    await client.send_message(bob, room_id, "from bob")
    flt = {"lazy_load_members": True, "types": ["m.room.message"]}
    page = await messages(client, carol, room_id, limit=2, filter=flt)
    assert bodies(page["chunk"]) == ["from bob", "from alice"]
    members = {e["state_key"]: e["content"]["membership"] for e in page["state"]}
    assert members == {alice_id: "join", bob_id: "join"}
    assert all(e["type"] == "m.room.member" for e in page["state"])
    plain = await messages(client, carol, room_id, limit=2)
    assert plain["state"] == []
    assert carol_id not in members


async def test_ignored_users_messages_are_left_out(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    await client.send_message(bob, room_id, "noise")
    await client.send_message(alice, room_id, "signal")
    await client.request("PUT", f"{V3}/user/{alice_id}/account_data/m.ignored_user_list", token=alice,
                         json={"ignored_users": {bob_id: {}}})
    seen = await all_messages(client, alice, room_id)
    assert bodies(seen) == ["signal"]
    # State events of ignored users still come through.
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob_id for e in seen)


async def test_events_carry_unsigned_fields(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat", name="one")
    await join(client, bob, room_id)
    mine = await client.send_message(alice, room_id, "hi", txn_id="txn-1")
    await client.send_state(alice, room_id, "m.room.name", {"name": "two"})
    client.hs.clock.advance(1500)  # type: ignore[attr-defined]
    page = await messages(client, alice, room_id, limit=2)
    rename, message = page["chunk"]
    assert message["event_id"] == mine
    assert message["unsigned"]["transaction_id"] == "txn-1"
    assert message["unsigned"]["age"] == 1500
    assert rename["unsigned"]["prev_content"] == {"name": "one"}
    assert rename["unsigned"]["replaces_state"].startswith("$")
    assert rename["room_id"] == room_id and rename["state_key"] == ""
    # Only the sending device sees its transaction id.
    other = await messages(client, bob, room_id, limit=2)
    assert "transaction_id" not in other["chunk"][1]["unsigned"]
    relogin = await client.login("alice")
    again = await messages(client, relogin["access_token"], room_id, limit=2)
    assert "transaction_id" not in again["chunk"][1]["unsigned"]


async def test_page_of_a_large_room_is_a_bounded_number_of_queries(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 150)
    engine = client.hs.db.engine
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0])

    await messages(client, alice, room_id, limit=100)  # warm the caches
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        body = await messages(client, alice, room_id, limit=100)
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len(body["chunk"]) == 100
    # token lookup, membership, account data, page, events, txn ids (+ BEGIN-like noise): no N+1.
    assert len([s for s in statements if s.upper() == "SELECT"]) <= 8, statements


async def test_filter_json_is_parsed_from_the_query(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room_with_messages(client, 3)
    raw = json.dumps({"types": ["m.room.message"]})
    body = await client.request("GET", f"{V3}/rooms/{room_id}/messages?dir=b&filter={raw}", token=alice)
    assert bodies(body["chunk"]) == ["m2", "m1", "m0"]


async def test_timestamp_to_event(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, eve = await client.user("eve")
    clock = client.hs.clock
    room_id = await client.create_room(alice, preset="public_chat")
    stamps: list[tuple[int, str]] = []
    for i in range(3):
        clock.advance(1000)  # type: ignore[attr-defined]
        stamps.append((clock.time_ms(), await client.send_message(alice, room_id, f"m{i}")))
    url = f"{V3.replace('v3', 'v1')}/rooms/{room_id}/timestamp_to_event"
    (t0, _), (t1, e1), (t2, e2) = stamps
    body = await client.request("GET", f"{url}?ts={t1 - 1}&dir=f", token=alice)
    assert body == {"event_id": e1, "origin_server_ts": t1}
    assert (await client.request("GET", f"{url}?ts={t1}&dir=f", token=alice))["event_id"] == e1
    assert (await client.request("GET", f"{url}?ts={t1 + 1}&dir=b", token=alice))["event_id"] == e1
    assert (await client.request("GET", f"{url}?ts={t2 + 5000}&dir=b", token=alice))["event_id"] == e2
    resp = await client.request("GET", f"{url}?ts={t2 + 1}&dir=f", token=alice, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    for query, errcode in (("dir=f", "M_MISSING_PARAM"), ("ts=1", "M_MISSING_PARAM"),
                           ("ts=1&dir=x", "M_INVALID_PARAM"), ("ts=x&dir=f", "M_INVALID_PARAM")):
        resp = await client.request("GET", f"{url}?{query}", token=alice, expect=400)
        assert resp["errcode"] == errcode
    await client.request("GET", f"{url}?ts={t0}&dir=f", token=eve, expect=403)


async def test_timestamp_to_event_skips_events_the_user_cannot_see(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    clock = client.hs.clock
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    clock.advance(1000)  # type: ignore[attr-defined]
    await client.send_message(alice, room_id, "hidden")
    clock.advance(1000)  # type: ignore[attr-defined]
    await join(client, bob, room_id)
    url = f"/_matrix/client/v1/rooms/{room_id}/timestamp_to_event"
    body = await client.request("GET", f"{url}?ts={clock.time_ms() - 1500}&dir=f", token=bob)
    found = await client.request("GET", f"{V3}/rooms/{room_id}/event/{body['event_id']}", token=bob)
    assert found["type"] == "m.room.member"  # bob's join, not the hidden message


async def test_room_initial_sync(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    _, eve = await client.user("eve")
    room_id = await client.create_room(alice, preset="public_chat", name="Init")
    for i in range(4):
        await client.send_message(alice, room_id, f"m{i}")
    await client.request("PUT", f"{V3}/user/{alice_id}/rooms/{room_id}/account_data/m.tag", token=alice,
                         json={"tags": {"work": {}}})
    body = await client.request("GET", f"{V3}/rooms/{room_id}/initialSync?limit=3", token=alice)
    assert body["room_id"] == room_id and body["membership"] == "join"
    assert body["visibility"] == "private"
    assert bodies(body["messages"]["chunk"]) == ["m1", "m2", "m3"]  # chronological
    earlier = await messages(client, alice, room_id, limit=1, **{"from": body["messages"]["start"]})
    assert bodies(earlier["chunk"]) == ["m0"]
    assert any(e["type"] == "m.room.name" for e in body["state"])
    assert body["account_data"] == [{"type": "m.tag", "content": {"tags": {"work": {}}}}]
    await client.request("GET", f"{V3}/rooms/{room_id}/initialSync", token=eve, expect=403)
