"""Reporting events, rooms and users (report_content.yaml)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hearth.storage.tables import content_reports
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import V3, join, set_visibility


async def reports(client: MatrixTestClient) -> list[dict[str, Any]]:
    async with client.hs.db.read() as conn:
        rows = await conn.execute(select(content_reports).order_by(content_reports.c.report_id))
        return [dict(r._mapping) for r in rows]


async def test_report_an_event(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await join(client, bob, room_id)
    event_id = await client.send_message(alice, room_id, "rude")
    body = await client.request("POST", f"{V3}/rooms/{room_id}/report/{event_id}", token=bob,
                                json={"reason": "this makes me sad", "score": -100})
    assert body == {}
    await client.request("POST", f"{V3}/rooms/{room_id}/report/{event_id}", token=bob, json={})
    stored = await reports(client)
    assert [(r["kind"], r["reporter"], r["room_id"], r["event_id"], r["reason"]) for r in stored] == [
        ("event", bob_id, room_id, event_id, "this makes me sad"),
        ("event", bob_id, room_id, event_id, None),
    ]
    assert stored[0]["received_ts"] == client.hs.clock.time_ms()


async def test_event_reports_need_a_joined_reporter_who_can_see_the_event(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await set_visibility(client, alice, room_id, "joined")
    hidden = await client.send_message(alice, room_id, "before bob")

    async def report(token: str, room: str, event_id: str) -> Any:
        return await client.request("POST", f"{V3}/rooms/{room}/report/{event_id}", token=token,
                                    json={"reason": "x"}, expect=404)

    assert (await report(bob, room_id, hidden))["errcode"] == "M_NOT_FOUND"  # not joined
    await join(client, bob, room_id)
    await report(bob, room_id, hidden)  # joined, but the event predates bob under "joined"
    await report(bob, room_id, "$unknown")
    await report(bob, "!unknown:test.local", hidden)
    assert await reports(client) == []
    resp = await client.request("POST", f"{V3}/rooms/{room_id}/report/{hidden}", token=alice,
                                json={"reason": 1}, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"


async def test_report_a_room(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    carol_id, carol = await client.user("carol")
    room_id = await client.create_room(alice, preset="private_chat")
    # Reporting a room does not need membership.
    body = await client.request("POST", f"{V3}/rooms/{room_id}/report", token=carol, json={"reason": ""})
    assert body == {}
    resp = await client.request("POST", f"{V3}/rooms/!unknown:test.local/report", token=carol,
                                json={"reason": "x"}, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    resp = await client.request("POST", f"{V3}/rooms/{room_id}/report", token=carol, json={}, expect=400)
    assert resp["errcode"] == "M_MISSING_PARAM"
    stored = await reports(client)
    assert [(r["kind"], r["reporter"], r["room_id"], r["reason"]) for r in stored] == [
        ("room", carol_id, room_id, "")]


async def test_report_a_user(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, _ = await client.user("bob")
    body = await client.request("POST", f"{V3}/users/{bob_id}/report", token=alice, json={"reason": "spam"})
    assert body == {}
    await client.request("POST", f"{V3}/users/@remote:elsewhere.example/report", token=alice,
                         json={"reason": "spam"})
    resp = await client.request("POST", f"{V3}/users/@ghost:test.local/report", token=alice,
                                json={"reason": "x"}, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"
    resp = await client.request("POST", f"{V3}/users/not-a-user/report", token=alice, json={"reason": "x"},
                                expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    stored = await reports(client)
    assert [(r["kind"], r["target_user_id"]) for r in stored] == [
        ("user", bob_id), ("user", "@remote:elsewhere.example")]
    await client.request("POST", f"{V3}/users/{bob_id}/report", json={"reason": "x"}, expect=401)
