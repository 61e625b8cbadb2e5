"""GET /v1/rooms/{roomId}/threads: thread roots by latest activity, participation, visibility."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, join, leave, set_visibility

V1 = "/_matrix/client/v1"


async def threads(client: MatrixTestClient, token: str, room_id: str, *, expect: int = 200,
                  **params: Any) -> Any:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return await client.request("GET", f"{V1}/rooms/{room_id}/threads?{query}", token=token, expect=expect)


async def reply(client: MatrixTestClient, token: str, room_id: str, root: str, body: str = "reply") -> str:
    return await client.send_message(token, room_id, content={
        "msgtype": "m.text", "body": body, "m.relates_to": {"rel_type": "m.thread", "event_id": root}})


def ids(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["chunk"]]


async def setup(client: MatrixTestClient) -> tuple[str, str, str, str]:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    return alice, bob, bob_id, room_id


async def test_threads_by_latest_activity_with_summaries(client: MatrixTestClient) -> None:
    alice, bob, _, room_id = await setup(client)
    roots = [await client.send_message(alice, room_id, f"root {i}") for i in range(3)]
    await client.send_message(alice, room_id, "not a thread")
    await reply(client, bob, room_id, roots[0])
    await reply(client, bob, room_id, roots[1])
    await reply(client, alice, room_id, roots[2])
    last = await reply(client, bob, room_id, roots[0], "latest")
    body = await threads(client, alice, room_id)
    assert ids(body) == [roots[0], roots[2], roots[1]]
    assert "next_batch" not in body
    summary = body["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2 and summary["latest_event"]["event_id"] == last
    assert summary["current_user_participated"] is True  # alice sent the root


async def test_pagination(client: MatrixTestClient) -> None:
    alice, _, _, room_id = await setup(client)
    roots = [await client.send_message(alice, room_id, f"root {i}") for i in range(5)]
    for root in roots:
        await reply(client, alice, room_id, root)
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = await threads(client, alice, room_id, limit=2, **{"from": token})
        assert len(page["chunk"]) <= 2
        seen.extend(ids(page))
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == roots[::-1]


async def test_participated_only(client: MatrixTestClient) -> None:
    alice, bob, _, room_id = await setup(client)
    _, carol = await client.user("carol")
    await join(client, carol, room_id)
    by_alice = await client.send_message(alice, room_id, "alice's root")
    by_carol = await client.send_message(carol, room_id, "carol's root")
    other = await client.send_message(carol, room_id, "another")
    await reply(client, carol, room_id, by_alice)
    await reply(client, bob, room_id, by_carol)
    await reply(client, carol, room_id, other)
    assert ids(await threads(client, bob, room_id, include="participated")) == [by_carol]
    assert ids(await threads(client, alice, room_id, include="participated")) == [by_alice]
    assert ids(await threads(client, carol, room_id, include="participated")) == [other, by_carol, by_alice]
    assert ids(await threads(client, bob, room_id, include="all")) == [other, by_carol, by_alice]


async def test_ignored_root_senders_are_served_redacted(client: MatrixTestClient) -> None:
    alice, bob, bob_id, room_id = await setup(client)
    root = await client.send_message(bob, room_id, "bob's secret")
    await reply(client, alice, room_id, root)
    alice_id = (await client.request("GET", f"{V3}/account/whoami", token=alice))["user_id"]
    await client.request("PUT", f"{V3}/user/{alice_id}/account_data/m.ignored_user_list", token=alice,
                         json={"ignored_users": {bob_id: {}}})
    body = await threads(client, alice, room_id)
    assert ids(body) == [root]
    assert body["chunk"][0]["content"] == {}


async def test_roots_hidden_by_history_visibility_are_left_out(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    hidden = await client.send_message(alice, room_id, "before bob")
    _, bob = await client.user("bob")
    await join(client, bob, room_id)
    shown = await client.send_message(alice, room_id, "after bob joined")
    await reply(client, alice, room_id, hidden)
    await reply(client, alice, room_id, shown)
    assert ids(await threads(client, bob, room_id)) == [shown]
    assert ids(await threads(client, alice, room_id)) == [shown, hidden]


async def test_users_who_may_not_read_the_room_are_forbidden(client: MatrixTestClient) -> None:
    alice, bob, _, room_id = await setup(client)
    _, eve = await client.user("eve")
    assert (await threads(client, eve, room_id, expect=403))["errcode"] == "M_FORBIDDEN"
    assert (await threads(client, eve, "!nowhere:test.local", expect=403))["errcode"] == "M_FORBIDDEN"
    # A user who left still lists the threads they could see.
    root = await client.send_message(alice, room_id, "root")
    await reply(client, alice, room_id, root)
    await leave(client, bob, room_id)
    assert ids(await threads(client, bob, room_id)) == [root]


@pytest.mark.parametrize(
    "params", [{"include": "some"}, {"limit": "0"}, {"limit": "x"}, {"from": "not-a-token"}]
)
async def test_bad_parameters(client: MatrixTestClient, params: dict[str, str]) -> None:
    alice, _, _, room_id = await setup(client)
    assert (await threads(client, alice, room_id, expect=400, **params))["errcode"] == "M_INVALID_PARAM"
