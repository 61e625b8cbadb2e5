"""Room timelines across a restart: a token from the old process still finds what came after it."""

from __future__ import annotations

from tests.helpers.clients import ClientFactory

SYNC = "/_matrix/client/v3/sync"


def bodies(sync_body: dict, room_id: str) -> list[str]:
    room = sync_body.get("rooms", {}).get("join", {}).get(room_id)
    if room is None:
        return []
    return [e["content"]["body"] for e in room["timeline"]["events"] if e["type"] == "m.room.message"]


async def test_incremental_sync_across_a_restart(make_client: ClientFactory) -> None:
    first = await make_client()
    _, alice = await first.user("alice")
    _, bob = await first.user("bob")
    room_id = await first.create_room(alice, preset="public_chat")
    quiet_room = await first.create_room(alice, preset="public_chat")
    for joined in (room_id, quiet_room):
        await first.request("POST", f"/_matrix/client/v3/rooms/{joined}/join", token=bob, json={})
    mark = await first.request("GET", SYNC, token=bob)
    await first.send_message(alice, room_id, "before the restart", txn_id="before")

    second = await make_client()
    # The new process did not see that message persisted: it still reaches the old token.
    after_restart = await second.request("GET", f"{SYNC}?since={mark['next_batch']}", token=bob)
    assert bodies(after_restart, room_id) == ["before the restart"]
    assert quiet_room not in after_restart["rooms"].get("join", {})

    await second.send_message(alice, room_id, "after the restart", txn_id="after")
    latest = await second.request("GET", f"{SYNC}?since={after_restart['next_batch']}", token=bob)
    assert bodies(latest, room_id) == ["after the restart"]
    assert quiet_room not in latest["rooms"].get("join", {})
