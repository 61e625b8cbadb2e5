"""PUT /rooms/{roomId}/redact/{eventId}/{txnId}, and redacted events served everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, get_event, join, messages


async def redact(client: MatrixTestClient, token: str, room_id: str, event_id: str, txn: str = "r1", *,
                 body: Any = None, expect: int = 200) -> Any:
    return await client.request("PUT", f"{V3}/rooms/{room_id}/redact/{event_id}/{txn}", token=token,
                                json=body if body is not None else {}, expect=expect)


@pytest.mark.parametrize("version", ["10", "11", "12"])
async def test_redacting_own_message(client: MatrixTestClient, version: str) -> None:
    alice_id, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat", room_version=version)
    event_id = await client.send_message(alice, room_id, "oops")
    redaction_id = (await redact(client, alice, room_id, event_id, body={"reason": "typo"}))["event_id"]

    served = await get_event(client, alice, room_id, event_id)
    assert served["content"] == {}
    because = served["unsigned"]["redacted_because"]
    assert because["event_id"] == redaction_id and because["sender"] == alice_id
    assert because["content"]["reason"] == "typo"
    assert because["redacts"] == event_id  # top level for every version, for older clients
    if version in ("11", "12"):
        assert because["content"]["redacts"] == event_id
    redaction = await get_event(client, alice, room_id, redaction_id)
    assert redaction["type"] == "m.room.redaction" and redaction["redacts"] == event_id
    assert redaction["unsigned"]["transaction_id"] == "r1"  # the client's own id, not the scoped one

    page = await messages(client, alice, room_id, limit=2)
    assert [e["event_id"] for e in page["chunk"]] == [redaction_id, event_id]
    assert page["chunk"][1]["content"] == {}
    assert page["chunk"][1]["unsigned"]["redacted_because"]["event_id"] == redaction_id
    ctx = await client.request("GET", f"{V3}/rooms/{room_id}/context/{event_id}", token=alice)
    assert ctx["event"]["content"] == {} and "redacted_because" in ctx["event"]["unsigned"]


async def test_repeated_txn_returns_the_first_redaction(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat")
    first = await client.send_message(alice, room_id, "one")
    second = await client.send_message(alice, room_id, "two")
    a = (await redact(client, alice, room_id, first, "same"))["event_id"]
    again = (await redact(client, alice, room_id, first, "same"))["event_id"]
    other_target = (await redact(client, alice, room_id, second, "same"))["event_id"]
    assert a == again != other_target
    # The same txn id on /send is a different endpoint, so a different request.
    sent = await client.send_message(alice, room_id, "three", txn_id="same")
    assert sent not in (a, other_target)


async def test_other_users_events_need_the_redact_level(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat", room_version="10")
    await join(client, bob, room_id)
    alices = await client.send_message(alice, room_id, "by alice")
    bobs = await client.send_message(bob, room_id, "by bob")
    resp = await redact(client, bob, room_id, alices, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    assert (await get_event(client, bob, room_id, alices))["content"]["body"] == "by alice"
    # Alice created the room and has the redact level (50).
    await redact(client, alice, room_id, bobs)
    assert (await get_event(client, bob, room_id, bobs))["content"] == {}
    # Unknown events: only with the redact level.
    await redact(client, bob, room_id, "$unknown:test.local", "x", expect=403)
    await redact(client, alice, room_id, "$unknown:test.local", "x")


async def test_server_admin_may_redact_local_users_events(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    admin_id, admin = await client.user("admin")
    _, bob = await client.user("bob")
    await client.hs.users.set_admin(admin_id, True)
    room_id = await client.create_room(alice, preset="public_chat", room_version="10")
    await join(client, admin, room_id)
    await join(client, bob, room_id)
    spam = await client.send_message(bob, room_id, "spam")
    await redact(client, admin, room_id, spam)
    assert (await get_event(client, alice, room_id, spam))["content"] == {}


async def test_redacted_state_is_served_redacted(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    room_id = await client.create_room(alice, preset="public_chat", topic="secret topic")
    state = await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.topic?format=event", token=alice)
    await redact(client, alice, room_id, state["event_id"])
    assert await client.request("GET", f"{V3}/rooms/{room_id}/state/m.room.topic", token=alice) == {}
    full = await client.request("GET", f"{V3}/rooms/{room_id}/state", token=alice)
    topic = next(e for e in full if e["type"] == "m.room.topic")
    assert topic["content"] == {} and "redacted_because" in topic["unsigned"]


async def test_request_errors(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, eve = await client.user("eve")
    room_id = await client.create_room(alice, preset="public_chat")
    event_id = await client.send_message(alice, room_id, "x")
    resp = await client.request("PUT", f"{V3}/rooms/{room_id}/redact/{event_id}/t", token=alice,
                                data=b"nope", expect=400)
    assert resp["errcode"] == "M_NOT_JSON"
    resp = await redact(client, alice, room_id, event_id, body={"reason": 5}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    resp = await redact(client, alice, room_id, "not-an-event", expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    resp = await redact(client, eve, room_id, event_id, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"
    await redact(client, alice, "!unknown:test.local", event_id, expect=403)
    await client.request("PUT", f"{V3}/rooms/{room_id}/redact/{event_id}/t", json={}, expect=401)
