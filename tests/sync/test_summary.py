"""Room summaries in /sync: counts and heroes, for many rooms at once and for one.

An initial sync answers every room's summary from one prefetch; an incremental
sync with a membership change asks for that room alone. Both must agree.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.timeline import invite, join, leave

SYNC = "/_matrix/client/v3/sync"


async def sync(client: MatrixTestClient, token: str, since: str | None = None,
               flt: dict[str, Any] | None = None) -> dict[str, Any]:
    params = [f"since={since}"] if since else []
    if flt is not None:
        params.append("filter=" + quote(json.dumps(flt)))
    return await client.request("GET", SYNC + "?" + "&".join(params), token=token)  # type: ignore[no-any-return]


async def test_initial_sync_summarises_every_room(client: MatrixTestClient) -> None:
    alice, a_token = await client.user("alice")
    bob, b_token = await client.user("bob")
    carol, _ = await client.user("carol")
    named = await client.create_room(a_token, name="Named", preset="public_chat")
    await join(client, b_token, named)
    crowded = await client.create_room(a_token, preset="public_chat")
    await join(client, b_token, crowded)
    await invite(client, a_token, crowded, carol)
    alone = await client.create_room(a_token)

    rooms = (await sync(client, a_token))["rooms"]["join"]

    assert rooms[named]["summary"] == {"m.joined_member_count": 2, "m.invited_member_count": 0}
    assert rooms[crowded]["summary"] == {
        "m.joined_member_count": 2, "m.invited_member_count": 1, "m.heroes": [bob, carol],
    }
    assert rooms[alone]["summary"] == {
        "m.joined_member_count": 1, "m.invited_member_count": 0, "m.heroes": [],
    }
    assert alice not in rooms[crowded]["summary"]["m.heroes"]


async def test_room_filter_limits_the_summarised_rooms(client: MatrixTestClient) -> None:
    _, a_token = await client.user("alice")
    bob, b_token = await client.user("bob")
    wanted = await client.create_room(a_token, preset="public_chat")
    await join(client, b_token, wanted)
    other = await client.create_room(a_token)

    rooms = (await sync(client, a_token, flt={"room": {"rooms": [wanted]}}))["rooms"]["join"]

    assert set(rooms) == {wanted}
    assert rooms[wanted]["summary"]["m.heroes"] == [bob]
    assert other not in rooms


async def test_incremental_sync_summarises_a_room_whose_members_changed(client: MatrixTestClient) -> None:
    _, a_token = await client.user("alice")
    bob, b_token = await client.user("bob")
    carol, c_token = await client.user("carol")
    room = await client.create_room(a_token, preset="public_chat")
    quiet = await client.create_room(a_token, name="Quiet")
    first = await sync(client, a_token)

    await join(client, b_token, room)
    await join(client, c_token, room)
    await leave(client, c_token, room)
    second = await sync(client, a_token, since=first["next_batch"])

    rooms = second["rooms"]["join"]
    assert rooms[room]["summary"] == {
        "m.joined_member_count": 2, "m.invited_member_count": 0, "m.heroes": [bob],
    }
    assert carol not in rooms[room]["summary"]["m.heroes"]
    assert quiet not in rooms


async def test_naming_a_room_drops_its_heroes(client: MatrixTestClient) -> None:
    _, a_token = await client.user("alice")
    bob, b_token = await client.user("bob")
    room = await client.create_room(a_token, preset="public_chat")
    await join(client, b_token, room)
    assert (await sync(client, a_token))["rooms"]["join"][room]["summary"]["m.heroes"] == [bob]

    await client.send_state(a_token, room, "m.room.name", {"name": "Now named"})

    assert "m.heroes" not in (await sync(client, a_token))["rooms"]["join"][room]["summary"]
