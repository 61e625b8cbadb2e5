"""GET /v1/rooms/{roomId}/relations/...: child events, pagination, visibility, bundled aggregations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, get_event, join, leave, messages, set_visibility

V1 = "/_matrix/client/v1"


async def relations(
    client: MatrixTestClient, token: str, room_id: str, event_id: str, *path: str, expect: int = 200,
    **params: Any,
) -> Any:
    suffix = "".join(f"/{p}" for p in path)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return await client.request(
        "GET", f"{V1}/rooms/{room_id}/relations/{event_id}{suffix}?{query}", token=token, expect=expect
    )


def rel(rel_type: str, event_id: str, body: str = "child", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, "m.relates_to": {"rel_type": rel_type, "event_id": event_id},
            **extra}


def edit(event_id: str, body: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text", "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }


def ids(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["chunk"]]


async def redact(client: MatrixTestClient, token: str, room_id: str, event_id: str) -> None:
    await client.request("PUT", f"{V3}/rooms/{room_id}/redact/{event_id}/r-{event_id[1:9]}", token=token,
                         json={})


async def room(client: MatrixTestClient) -> tuple[str, str, str]:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    root = await client.send_message(alice, room_id, "root")
    return alice, room_id, root


async def test_children_newest_first_with_filters(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    ref = await client.send_message(alice, room_id, content=rel("m.reference", root))
    thread = await client.send_message(alice, room_id, content=rel("m.thread", root))
    reaction = await client.send_message(
        alice, room_id, event_type="m.reaction",
        content={"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
    )
    await client.send_message(alice, room_id, "unrelated")
    body = await relations(client, alice, room_id, root)
    assert ids(body) == [reaction, thread, ref]
    assert "next_batch" not in body and "prev_batch" not in body and "recursion_depth" not in body
    assert body["chunk"][0]["room_id"] == room_id
    assert ids(await relations(client, alice, room_id, root, "m.thread")) == [thread]
    assert ids(await relations(client, alice, room_id, root, "m.annotation", "m.reaction")) == [reaction]
    assert ids(await relations(client, alice, room_id, root, "m.annotation", "m.room.message")) == []
    assert ids(await relations(client, alice, room_id, root, dir="f")) == [ref, thread, reaction]
    assert ids(await relations(client, alice, room_id, ref)) == []


async def test_pagination_with_next_batch_and_to(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    children = [await client.send_message(alice, room_id, content=rel("m.reference", root, f"c{i}"))
                for i in range(7)]
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = await relations(client, alice, room_id, root, limit=3, **{"from": token})
        seen.extend(ids(page))
        if token is not None:
            assert page["prev_batch"] == token
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == children[::-1]
    first = await relations(client, alice, room_id, root, limit=3)
    forwards = await relations(client, alice, room_id, root, dir="f", limit=10,
                               **{"from": first["next_batch"]})
    assert ids(forwards) == children[4:]
    # `to` stops the range: from the newest back to the end of the first page.
    bounded = await relations(client, alice, room_id, root, limit=10, to=first["next_batch"])
    assert ids(bounded) == children[::-1][:3]
    # A /messages token works as `from`.
    latest = await messages(client, alice, room_id, limit=1)
    assert ids(await relations(client, alice, room_id, root, limit=2, **{"from": latest["start"]})) == [
        children[6], children[5]]


async def test_recurse_follows_children_of_children(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    child = await client.send_message(alice, room_id, content=rel("m.thread", root))
    grandchild = await client.send_message(alice, room_id, content=rel("m.reference", child))
    great = await client.send_message(alice, room_id, content=rel("m.reference", grandchild))
    too_deep = await client.send_message(alice, room_id, content=rel("m.reference", great))
    plain = await relations(client, alice, room_id, root, recurse="false")
    assert ids(plain) == [child] and plain["recursion_depth"] == 1
    deep = await relations(client, alice, room_id, root, recurse="true")
    assert ids(deep) == [great, grandchild, child] and too_deep not in ids(deep)
    assert deep["recursion_depth"] == 3
    # Filters apply to the events returned, not to the links followed.
    refs = await relations(client, alice, room_id, root, "m.reference", recurse="true")
    assert ids(refs) == [great, grandchild]


async def test_unknown_or_hidden_parents_are_not_found(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    _, bob = await client.user("bob")
    other_room = await client.create_room(alice, creation_content={"purpose": "other"})
    for token, rid, eid in (
        (alice, room_id, "$nope"),
        (alice, other_room, root),  # the event is in another room
        (alice, "!unknown:test.local", root),
        (bob, room_id, root),  # bob never joined a shared-history room
    ):
        err = await relations(client, token, rid, eid, expect=404)
        assert err["errcode"] == "M_NOT_FOUND"


async def test_history_visibility_hides_parents_and_children(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room(client)
    _, bob = await client.user("bob")
    await set_visibility(client, alice, room_id, "joined")
    hidden_root = await client.send_message(alice, room_id, "before bob")
    await join(client, bob, room_id)
    # Sent before Bob joined a "joined"-visibility room: he may not see it, nor its children.
    await client.send_message(alice, room_id, content=rel("m.reference", hidden_root))
    assert (await relations(client, bob, room_id, hidden_root, expect=404))["errcode"] == "M_NOT_FOUND"
    visible_root = await client.send_message(alice, room_id, "visible root")
    seen = await client.send_message(alice, room_id, content=rel("m.reference", visible_root))
    await leave(client, bob, room_id)
    after_leave = await client.send_message(alice, room_id, content=rel("m.reference", visible_root))
    assert ids(await relations(client, bob, room_id, visible_root)) == [seen]
    assert ids(await relations(client, alice, room_id, visible_root)) == [after_leave, seen]


async def test_redacted_children_drop_out(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    gone = await client.send_message(alice, room_id, content=rel("m.reference", root))
    kept = await client.send_message(alice, room_id, content=rel("m.reference", root))
    await redact(client, alice, room_id, gone)
    assert ids(await relations(client, alice, room_id, root)) == [kept]


@pytest.mark.parametrize(
    ("params", "errcode"),
    [({"dir": "x"}, "M_INVALID_PARAM"), ({"limit": "ten"}, "M_INVALID_PARAM"),
     ({"limit": "-1"}, "M_INVALID_PARAM"), ({"from": "garbage"}, "M_INVALID_PARAM"),
     ({"recurse": "maybe"}, "M_INVALID_PARAM")],
)
async def test_bad_parameters(client: MatrixTestClient, params: dict[str, str], errcode: str) -> None:
    alice, room_id, root = await room(client)
    err = await relations(client, alice, room_id, root, expect=400, **params)
    assert err["errcode"] == errcode


async def test_requires_a_valid_room_id_and_auth(client: MatrixTestClient) -> None:
    alice, _, root = await room(client)
    assert (await relations(client, alice, "not-a-room", root, expect=400))["errcode"] == "M_INVALID_PARAM"
    err = await client.request("GET", f"{V1}/rooms/!r:test.local/relations/{root}", expect=401)
    assert err["errcode"] == "M_MISSING_TOKEN"


# --- bundled aggregations --------------------------------------------------------


async def test_latest_valid_edit_is_bundled_without_replacing_content(
    client: MatrixTestClient, fake_clock: FakeClock
) -> None:
    alice, room_id, root = await room(client)
    _, bob = await client.user("bob")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, content=edit(root, "first edit"))
    fake_clock.advance(10)
    second = await client.send_message(alice, room_id, content=edit(root, "second edit"))
    fake_clock.advance(10)
    await client.send_message(bob, room_id, content=edit(root, "not bob's to edit"))
    await client.send_message(alice, room_id, content={  # no m.new_content: not a valid edit
        "msgtype": "m.text", "body": "bad", "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
    await client.send_message(alice, room_id, event_type="m.custom", content=edit(root, "other type"))
    event = await get_event(client, bob, room_id, root)
    assert event["content"]["body"] == "root"
    replace = event["unsigned"]["m.relations"]["m.replace"]
    assert replace["event_id"] == second
    assert replace["content"]["m.new_content"]["body"] == "second edit"
    # The same bundle on /messages.
    page = await messages(client, bob, room_id, limit=50)
    served = next(e for e in page["chunk"] if e["event_id"] == root)
    assert served["unsigned"]["m.relations"]["m.replace"]["event_id"] == second
    # An edit of an edit is not valid; edits themselves carry no m.replace bundle.
    await client.send_message(alice, room_id, content=edit(second, "edit of an edit"))
    assert "m.relations" not in (await get_event(client, bob, room_id, second))["unsigned"]


async def test_redacting_edits_and_originals(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    alice, room_id, root = await room(client)
    first = await client.send_message(alice, room_id, content=edit(root, "one"))
    fake_clock.advance(10)
    second = await client.send_message(alice, room_id, content=edit(root, "two"))
    await redact(client, alice, room_id, second)
    bundle = (await get_event(client, alice, room_id, root))["unsigned"]["m.relations"]
    assert bundle["m.replace"]["event_id"] == first
    await redact(client, alice, room_id, root)
    event = await get_event(client, alice, room_id, root)
    assert "m.replace" not in event["unsigned"].get("m.relations", {})
    assert event["content"] == {}


async def test_edits_with_equal_timestamps_pick_the_largest_event_id(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    edits = [await client.send_message(alice, room_id, content=edit(root, f"e{i}")) for i in range(3)]
    # The fake clock stands still, so all three edits share origin_server_ts.
    bundle = (await get_event(client, alice, room_id, root))["unsigned"]["m.relations"]
    assert bundle["m.replace"]["event_id"] == max(edits)


async def test_references_are_bundled_as_a_chunk_of_ids(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    refs = [await client.send_message(alice, room_id, content=rel("m.reference", root)) for _ in range(2)]
    await client.send_message(
        alice, room_id, event_type="m.reaction",
        content={"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "x"}},
    )
    bundle = (await get_event(client, alice, room_id, root))["unsigned"]["m.relations"]
    assert bundle == {"m.reference": {"chunk": [{"event_id": r} for r in refs]}}  # no annotations


async def test_thread_summary(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    _, bob = await client.user("bob")
    _, carol = await client.user("carol")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await client.send_message(bob, room_id, content=rel("m.thread", root, "t1"))
    latest = await client.send_message(bob, room_id, content=rel("m.thread", root, "t2"))
    latest_edit = await client.send_message(bob, room_id, content=edit(latest, "t2 edited"))
    for token, participated in ((alice, True), (bob, True), (carol, False)):
        thread = (await get_event(client, token, room_id, root))["unsigned"]["m.relations"]["m.thread"]
        assert thread["count"] == 2
        assert thread["current_user_participated"] is participated
        assert thread["latest_event"]["event_id"] == latest
        assert thread["latest_event"]["content"]["body"] == "t2"
        assert thread["latest_event"]["unsigned"]["m.relations"]["m.replace"]["event_id"] == latest_edit


async def test_thread_summary_leaves_out_ignored_users(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    bob_id, bob = await client.user("bob")
    alice_id = (await client.request("GET", f"{V3}/account/whoami", token=alice))["user_id"]
    await join(client, bob, room_id)
    mine = await client.send_message(alice, room_id, content=rel("m.thread", root, "mine"))
    await client.send_message(bob, room_id, content=rel("m.thread", root, "bob's"))
    await client.request("PUT", f"{V3}/user/{alice_id}/account_data/m.ignored_user_list", token=alice,
                         json={"ignored_users": {bob_id: {}}})
    thread = (await get_event(client, alice, room_id, root))["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["latest_event"]["event_id"] == mine


async def test_thread_latest_event_respects_history_visibility(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    _, bob = await client.user("bob")
    await join(client, bob, room_id)
    seen = await client.send_message(alice, room_id, content=rel("m.thread", root, "seen"))
    await leave(client, bob, room_id)
    await client.send_message(alice, room_id, content=rel("m.thread", root, "after bob left"))
    thread = (await get_event(client, bob, room_id, root))["unsigned"]["m.relations"]["m.thread"]
    assert thread["latest_event"]["event_id"] == seen


async def test_state_events_get_no_bundles(client: MatrixTestClient) -> None:
    alice, room_id, _ = await room(client)
    topic = await client.send_state(alice, room_id, "m.room.topic", {"topic": "t"})
    await client.send_message(alice, room_id, content=rel("m.reference", topic))
    assert "m.relations" not in (await get_event(client, alice, room_id, topic))["unsigned"]


# --- rules on sending related events -----------------------------------------------


async def test_threads_cannot_start_from_a_child_event(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    in_thread = await client.send_message(alice, room_id, content=rel("m.thread", root))
    path = f"{V3}/rooms/{room_id}/send/m.room.message/nested"
    err = await client.request("PUT", path, token=alice, json=rel("m.thread", in_thread), expect=400)
    assert err["errcode"] == "M_UNKNOWN"
    # Rich replies (no rel_type) may start threads; so may a reply's target.
    reply = await client.send_message(alice, room_id, content={
        "msgtype": "m.text", "body": "reply", "m.relates_to": {"m.in_reply_to": {"event_id": root}}})
    await client.send_message(alice, room_id, content=rel("m.thread", reply))


async def test_duplicate_annotations_are_refused(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    _, bob = await client.user("bob")
    await join(client, bob, room_id)
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}}
    first = await client.send_message(alice, room_id, event_type="m.reaction", content=reaction)
    path = f"{V3}/rooms/{room_id}/send/m.reaction/again"
    err = await client.request("PUT", path, token=alice, json=reaction, expect=400)
    assert err["errcode"] == "M_DUPLICATE_ANNOTATION"
    # Another user, another key or another type is fine; so is the same once the first is redacted.
    await client.send_message(bob, room_id, event_type="m.reaction", content=reaction)
    other_key = {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👎"}}
    await client.send_message(alice, room_id, event_type="m.reaction", content=other_key)
    await client.send_message(alice, room_id, event_type="org.example.reaction", content=reaction)
    await redact(client, alice, room_id, first)
    await client.send_message(alice, room_id, event_type="m.reaction", content=reaction)


async def test_outsiders_learn_nothing_from_the_relation_rules(client: MatrixTestClient) -> None:
    alice, room_id, root = await room(client)
    in_thread = await client.send_message(alice, room_id, content=rel("m.thread", root))
    _, eve = await client.user("eve")
    path = f"{V3}/rooms/{room_id}/send/m.room.message/probe"
    err = await client.request("PUT", path, token=eve, json=rel("m.thread", in_thread), expect=403)
    assert err["errcode"] == "M_FORBIDDEN"
