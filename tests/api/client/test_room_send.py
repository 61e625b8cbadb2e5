"""PUT /rooms/{roomId}/send and /state."""

from __future__ import annotations

from tests.helpers.homeserver import MatrixTestClient


async def test_send_is_idempotent_per_txn_id(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    first = await client.send_message(token, room_id, "hi", txn_id="abc")
    again = await client.send_message(token, room_id, "hi", txn_id="abc")
    other = await client.send_message(token, room_id, "hi", txn_id="abd")
    assert first == again != other


async def test_non_member_is_forbidden(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    room_id = await client.create_room(alice)
    resp = await client.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/1",
        token=bob,
        json={"body": "x"},
        expect=403,
    )
    assert resp["errcode"] == "M_FORBIDDEN"


async def test_unknown_room_is_forbidden(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    resp = await client.request(
        "PUT",
        "/_matrix/client/v3/rooms/!nope:test.local/send/m.room.message/1",
        token=token,
        json={"body": "x"},
        expect=403,
    )
    assert resp["errcode"] == "M_FORBIDDEN"


async def test_invalid_room_id(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    resp = await client.request(
        "PUT",
        "/_matrix/client/v3/rooms/nope/send/m.room.message/1",
        token=token,
        json={"body": "x"},
        expect=400,
    )
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_body_must_be_json_object(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    resp = await client.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/1",
        token=token,
        data=b"not json",
        expect=400,
    )
    assert resp["errcode"] == "M_NOT_JSON"
    resp = await client.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/2",
        token=token,
        json=[1, 2],
        expect=400,
    )
    assert resp["errcode"] == "M_BAD_JSON"


async def test_oversized_event_is_too_large(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    room_id = await client.create_room(token)
    resp = await client.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/1",
        token=token,
        json={"body": "x" * 70_000},
        expect=413,
    )
    assert resp["errcode"] == "M_TOO_LARGE"


async def test_state_needs_power(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    bob_id, bob = await client.user("bob")
    room_id = await client.create_room(alice, preset="public_chat")
    await client.send_state(bob, room_id, "m.room.member", {"membership": "join"}, state_key=bob_id)
    resp = await client.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name",
        token=bob,
        json={"name": "mine"},
        expect=403,
    )
    assert resp["errcode"] == "M_FORBIDDEN"
    await client.send_state(alice, room_id, "m.room.name", {"name": "ok"})
