"""POST /search (room_events): matching, visibility, ordering, pagination, context, state, groups."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, join, leave, set_visibility

SEARCH = f"{V3}/search"


async def search(client: MatrixTestClient, token: str, term: str, *, next_batch: str | None = None,
                 expect: int = 200, **criteria: Any) -> Any:
    path = SEARCH if next_batch is None else f"{SEARCH}?next_batch={next_batch}"
    body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
    response = await client.request("POST", path, token=token, json=body, expect=expect)
    return response["search_categories"]["room_events"] if expect == 200 else response


def found(result: dict[str, Any]) -> list[str]:
    return [r["result"]["content"].get("body") or r["result"]["content"].get("name")
            or r["result"]["content"].get("topic") for r in result["results"]]


async def test_finds_words_in_messages_names_and_topics(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, name="Martian embassy", topic="martians welcome")
    await client.send_message(alice, room_id, "The Martians have landed")
    await client.send_message(alice, room_id, "nothing to see here")
    await client.send_message(alice, room_id, "martian food is great")
    result = await search(client, alice, "martian", order_by="recent")
    assert found(result) == ["martian food is great", "The Martians have landed", "martians welcome",
                             "Martian embassy"]
    assert result["count"] == 4
    assert "martian" in result["highlights"] and "martians" in result["highlights"]
    assert all(r["result"]["room_id"] == room_id for r in result["results"])
    assert all(isinstance(r["rank"], float) for r in result["results"])
    # Every word must match, as the start of a word.
    assert found(await search(client, alice, "martian food")) == ["martian food is great"]
    assert found(await search(client, alice, "mart lan")) == ["The Martians have landed"]
    assert found(await search(client, alice, "artian")) == []
    # Only the keys asked for.
    assert found(await search(client, alice, "martian", keys=["content.name"])) == ["Martian embassy"]
    assert found(await search(client, alice, "martians", keys=["content.topic"])) == ["martians welcome"]


async def test_rank_orders_best_matches_first(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice)
    await client.send_message(alice, room_id, "apple " + "filler " * 40)
    await client.send_message(alice, room_id, "apple apple apple")
    result = await search(client, alice, "apple")
    assert found(result)[0] == "apple apple apple"
    assert result["results"][0]["rank"] >= result["results"][1]["rank"]


async def test_only_rooms_and_events_the_user_may_see(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    _, eve = await client.user("eve")
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    await client.send_message(alice, room_id, "secret before bob")
    await join(client, bob, room_id)
    await client.send_message(alice, room_id, "secret while bob is here")
    await leave(client, bob, room_id)
    await client.send_message(alice, room_id, "secret after bob left")
    assert found(await search(client, bob, "secret")) == ["secret while bob is here"]
    assert found(await search(client, eve, "secret")) == []  # never in the room
    assert len(found(await search(client, alice, "secret"))) == 3
    # A forgotten room is no longer searched.
    await client.request("POST", f"{V3}/rooms/{room_id}/forget", token=bob, json={})
    assert found(await search(client, bob, "secret")) == []


async def test_redacted_and_ignored_events_drop_out(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    gone = await client.send_message(alice, room_id, "redact this banana")
    await client.send_message(alice, room_id, "keep this banana")
    await client.send_message(bob, room_id, "bob's banana")
    await client.request("PUT", f"{V3}/rooms/{room_id}/redact/{gone}/r1", token=alice, json={})
    assert sorted(found(await search(client, alice, "banana"))) == ["bob's banana", "keep this banana"]
    await client.request("PUT", f"{V3}/user/{alice_id}/account_data/m.ignored_user_list", token=alice,
                         json={"ignored_users": {bob_id: {}}})
    assert found(await search(client, alice, "banana")) == ["keep this banana"]


async def test_filter_by_rooms_senders_and_types(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    first = await client.create_room(alice, preset="public_chat", name="kiwi room")
    second = await client.create_room(alice, preset="public_chat", creation_content={"n": 2})
    for room_id in (first, second):
        await join(client, bob, room_id)
        await client.send_message(alice, room_id, f"kiwi from alice in {room_id[:4]}")
        await client.send_message(bob, room_id, "kiwi from bob")
    only_first = await search(client, alice, "kiwi", filter={"rooms": [first]})
    assert {r["result"]["room_id"] for r in only_first["results"]} == {first}
    not_first = await search(client, alice, "kiwi", filter={"not_rooms": [first]})
    assert {r["result"]["room_id"] for r in not_first["results"]} == {second}
    by_bob = await search(client, alice, "kiwi", filter={"senders": [bob_id]})
    assert found(by_bob) == ["kiwi from bob", "kiwi from bob"]
    names = await search(client, alice, "kiwi", filter={"types": ["m.room.name"]})
    assert found(names) == ["kiwi room"]
    assert len((await search(client, alice, "kiwi", filter={"limit": 2}))["results"]) == 2


@pytest.mark.parametrize("order_by", ["recent", "rank"])
async def test_pagination_with_next_batch(client: MatrixTestClient, order_by: str) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice)
    sent = [await client.send_message(alice, room_id, f"page item {i}") for i in range(7)]
    seen: list[str] = []
    token = None
    for _ in range(10):
        result = await search(client, alice, "item", next_batch=token, order_by=order_by, filter={"limit": 3})
        assert len(result["results"]) <= 3
        seen.extend(r["result"]["event_id"] for r in result["results"])
        token = result.get("next_batch")
        if token is None:
            break
    assert sorted(seen) == sorted(sent) and len(seen) == 7
    if order_by == "recent":
        assert seen == sent[::-1]


async def test_event_context_and_profiles(client: MatrixTestClient) -> None:
    alice_id, alice = await client.user("alice")
    room_id = await client.create_room(alice)
    # The profile at the time of the event: the member event's fields.
    await client.send_state(alice, room_id, "m.room.member",
                            {"membership": "join", "displayname": "Alice A."}, state_key=alice_id)
    for i in range(3):
        await client.send_message(alice, room_id, f"before {i}")
    await client.send_message(alice, room_id, "the needle")
    for i in range(3):
        await client.send_message(alice, room_id, f"after {i}")
    result = await search(client, alice, "needle",
                          event_context={"before_limit": 2, "after_limit": 1, "include_profile": True})
    context = result["results"][0]["context"]
    assert [e["content"]["body"] for e in context["events_before"]] == ["before 2", "before 1"]
    assert [e["content"]["body"] for e in context["events_after"]] == ["after 0"]
    assert context["profile_info"][alice_id]["displayname"] == "Alice A."
    # The tokens are /messages tokens around the context.
    page = await client.request("GET", f"{V3}/rooms/{room_id}/messages?dir=b&limit=1&from={context['start']}",
                                token=alice)
    assert page["chunk"][0]["content"]["body"] == "before 0"
    plain = await search(client, alice, "needle", event_context={})
    assert "profile_info" not in plain["results"][0]["context"]
    assert len(plain["results"][0]["context"]["events_before"]) == 5


async def test_include_state_and_groups(client: MatrixTestClient, fake_clock: FakeClock) -> None:
    alice_id, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    first = await client.create_room(alice, preset="public_chat", name="one")
    fake_clock.advance(1)
    second = await client.create_room(alice, preset="public_chat", name="two")
    await join(client, bob, first)
    await client.send_message(alice, first, "grape a")
    await client.send_message(bob, first, "grape b")
    await client.send_message(alice, second, "grape c")
    result = await search(client, alice, "grape", order_by="recent", include_state=True,
                          groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
    assert set(result["state"]) == {first, second}
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "one" for e in result["state"][first])
    rooms = result["groups"]["room_id"]
    assert rooms[second]["order"] == 1 and rooms[first]["order"] == 2
    assert len(rooms[first]["results"]) == 2 and len(rooms[second]["results"]) == 1
    senders = result["groups"]["sender"]
    assert len(senders[alice_id]["results"]) == 2 and len(senders[bob_id]["results"]) == 1


async def test_group_next_batch_pages_within_the_group(
    client: MatrixTestClient, fake_clock: FakeClock
) -> None:
    _, alice = await client.user("alice")
    first = await client.create_room(alice)
    fake_clock.advance(1)
    second = await client.create_room(alice)
    for i in range(3):
        await client.send_message(alice, first, f"plum {i}")
        await client.send_message(alice, second, f"plum {i}")
    result = await search(client, alice, "plum", order_by="recent", filter={"limit": 2},
                          groupings={"group_by": [{"key": "room_id"}]})
    group = result["groups"]["room_id"][second]
    more = await search(client, alice, "plum", order_by="recent", next_batch=group["next_batch"],
                        filter={"limit": 10}, groupings={"group_by": [{"key": "room_id"}]})
    assert {r["result"]["room_id"] for r in more["results"]} == {second}
    assert len(more["results"]) == 2


async def test_no_room_events_category_and_empty_terms(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    body = await client.request("POST", SEARCH, token=alice, json={"search_categories": {}})
    assert body == {"search_categories": {}}
    empty = await search(client, alice, "  !!  ")
    assert empty["results"] == [] and empty["count"] == 0


@pytest.mark.parametrize(
    ("body", "errcode"),
    [({}, "M_MISSING_PARAM"),
     ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
     ({"search_categories": {"room_events": {"search_term": 1}}}, "M_BAD_JSON"),
     ({"search_categories": {"room_events": {"search_term": "x", "order_by": "best"}}}, "M_BAD_JSON"),
     ({"search_categories": {"room_events": {"search_term": "x", "keys": ["content.nope"]}}}, "M_BAD_JSON")],
)
async def test_bad_bodies(client: MatrixTestClient, body: dict[str, Any], errcode: str) -> None:
    _, alice = await client.user("alice")
    err = await client.request("POST", SEARCH, token=alice, json=body, expect=400)
    assert err["errcode"] == errcode


async def test_bad_next_batch(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    for token in ("garbage!", "e30", "eyJvIjogLTF9"):  # not base64 JSON; {}; {"o": -1}
        err = await search(client, alice, "x", next_batch=token, expect=400)
        assert err["errcode"] == "M_INVALID_PARAM"
