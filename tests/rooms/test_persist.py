"""The room server's persist path: room creation, sends, state snapshots, forks."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import func, select

from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, V10, V12
from hearth.errors import MatrixError
from hearth.homeserver import Homeserver
from hearth.rooms.create import RoomSpec
from hearth.rooms.persist import EventRejected, TxnRecord
from hearth.storage.tables import (
    event_auth_edges,
    event_edges,
    event_search,
    event_txn_ids,
    forward_extremities,
)
from hearth.storage.tables import events as events_table
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import SERVER_NAME

ALICE = f"@alice:{SERVER_NAME}"
BOB = f"@bob:{SERVER_NAME}"


async def current_state(hs: Homeserver, room_id: str) -> dict[tuple[str, str], str]:
    room = await hs.room_store.get(room_id)
    assert room is not None
    async with hs.db.read() as conn:
        nids = await hs.state_store.current_event_nids(conn, room.room_nid)
        keys = await hs.state_store.keys_for_nids(conn, nids)
        evs = await hs.event_store.by_nids(conn, nids.values())
    return {keys[k]: evs[e].event_id for k, e in nids.items()}


async def make_room(hs: Homeserver, preset: str = "public_chat", version: str = "12", **kw: object) -> str:
    spec = RoomSpec(creator=ALICE, room_version=KNOWN_ROOM_VERSIONS[version], preset=preset, **kw)  # type: ignore[arg-type]
    return await hs.room_creator.create(spec)


@pytest.mark.parametrize("version", sorted(KNOWN_ROOM_VERSIONS, key=int))
async def test_create_room_in_every_version(hs: Homeserver, version: str) -> None:
    room_id = await make_room(hs, version=version, name="Test", topic="Topic")
    state = await current_state(hs, room_id)
    assert ("m.room.create", "") in state
    assert ("m.room.member", ALICE) in state
    assert ("m.room.name", "") in state
    assert ("m.room.join_rules", "") in state
    assert await hs.room_store.rooms_for_user(ALICE) == [room_id]
    if version == "12":
        assert ":" not in room_id


async def test_sends_chain_on_one_extremity(hs: Homeserver) -> None:
    room_id = await make_room(hs)
    ids = [
        await hs.room_sender.send(room_id, ALICE, "m.room.message", {"body": str(i), "msgtype": "m.text"})
        for i in range(5)
    ]
    room = await hs.room_store.get(room_id)
    assert room is not None
    async with hs.db.read() as conn:
        extremities = await hs.room_store.extremities(conn, room.room_nid)
        stored = await hs.event_store.by_ids(conn, ids)
    assert [x.event_id for x in extremities] == [ids[-1]]
    for prev, nxt in itertools.pairwise(ids):
        assert stored[nxt].event.prev_event_ids == [prev]
        assert stored[nxt].event.depth == stored[prev].event.depth + 1
        assert stored[nxt].stream_ordering > stored[prev].stream_ordering  # type: ignore[operator]


async def test_non_member_cannot_send(hs: Homeserver) -> None:
    room_id = await make_room(hs)
    with pytest.raises(MatrixError) as err:
        await hs.room_sender.send(room_id, BOB, "m.room.message", {"body": "hi"})
    assert err.value.errcode == "M_FORBIDDEN"
    async with hs.db.read() as conn:
        count = (
            await conn.execute(
                select(func.count()).select_from(events_table).where(events_table.c.sender == BOB)
            )
        ).scalar_one()
    assert count == 0


async def test_join_public_room_updates_membership(hs: Homeserver) -> None:
    room_id = await make_room(hs)
    await hs.room_sender.send(room_id, BOB, "m.room.member", {"membership": "join"}, state_key=BOB)
    room = await hs.room_store.get(room_id)
    assert room is not None
    assert sorted(await hs.room_store.members(room.room_nid)) == sorted([ALICE, BOB])
    await hs.room_sender.send(room_id, BOB, "m.room.member", {"membership": "leave"}, state_key=BOB)
    assert await hs.room_store.members(room.room_nid) == [ALICE]
    assert await hs.room_store.rooms_for_user(BOB, "leave") == [room_id]


async def test_txn_id_makes_send_idempotent(hs: Homeserver) -> None:
    room_id = await make_room(hs)
    txn = TxnRecord(ALICE, "DEV", "t1")
    first = await hs.room_sender.send(room_id, ALICE, "m.room.message", {"body": "once"}, txn=txn)
    again = await hs.room_sender.send(room_id, ALICE, "m.room.message", {"body": "once"}, txn=txn)
    assert first == again
    other_device = await hs.room_sender.send(
        room_id, ALICE, "m.room.message", {"body": "once"}, txn=TxnRecord(ALICE, "DEV2", "t1")
    )
    assert other_device != first
    async with hs.db.read() as conn:
        count = (await conn.execute(
            select(func.count()).select_from(events_table).where(events_table.c.sender == ALICE,
                                                                 events_table.c.type == "m.room.message")
        )).scalar_one()
    assert count == 2  # the repeat stored nothing


async def _rows_of(hs: Homeserver, event_id: str) -> dict[str, object]:
    """What the database holds for one stored event, besides its own row."""
    async with hs.db.read() as conn:
        nid = (await conn.execute(
            select(events_table.c.event_nid).where(events_table.c.event_id == event_id))).scalar_one()
        room_nid = (await conn.execute(
            select(events_table.c.room_nid).where(events_table.c.event_nid == nid))).scalar_one()
        prevs = (await conn.execute(
            select(event_edges.c.prev_event_id).where(event_edges.c.event_nid == nid))).scalars().all()
        auths = (await conn.execute(select(event_auth_edges.c.auth_event_id)
                                    .where(event_auth_edges.c.event_nid == nid))).scalars().all()
        text = (await conn.execute(
            select(event_search.c.key, event_search.c.value).where(event_search.c.event_nid == nid))).all()
        heads = (await conn.execute(
            select(forward_extremities.c.event_nid).where(forward_extremities.c.room_nid == room_nid)
        )).scalars().all()
        txns = (await conn.execute(
            select(event_txn_ids.c.txn_id).where(event_txn_ids.c.event_id == event_id))).scalars().all()
        stored = (await hs.event_store.by_ids(conn, [event_id]))[event_id]
    return {"prevs": sorted(prevs), "auths": sorted(auths), "text": [tuple(r) for r in text],
            "heads": heads == [nid], "txns": txns, "state": (stored.state_before_nid, stored.state_after_nid)}


async def test_a_send_stores_edges_text_head_and_txn(hs: Homeserver) -> None:
    """A plain message (one statement on PostgreSQL) is stored like any other event."""
    room_id = await make_room(hs)
    prev = await hs.room_sender.send(room_id, ALICE, "m.room.topic", {"topic": "t"}, state_key="")
    sends = [
        ("m.room.message", {"msgtype": "m.text", "body": "hi"}, [("content.body", "hi")]),
        ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": prev, "key": "+1"}}, []),
        ("m.room.message", {"msgtype": "m.text", "body": ""}, []),  # nothing to search
    ]
    async with hs.db.read() as conn:
        state_nid = (await hs.event_store.by_ids(conn, [prev]))[prev].state_after_nid
    for i, (event_type, content, text) in enumerate(sends):
        txn = TxnRecord(ALICE, "D", f"{i}")
        event_id = await hs.room_sender.send(room_id, ALICE, event_type, content, txn=txn)
        async with hs.db.read() as conn:
            event = (await hs.event_store.by_ids(conn, [event_id]))[event_id].event
        assert await _rows_of(hs, event_id) == {
            "prevs": [prev], "auths": sorted(event.auth_event_ids), "text": text, "heads": True,
            "txns": [f"{i}"], "state": (state_nid, state_nid),
        }
        prev = event_id


async def test_a_retried_send_gets_its_event_even_once_refused(hs: Homeserver) -> None:
    """A retry answers with the first event although the rebuilt one would now fail the auth rules."""
    room_id = await make_room(hs)
    await hs.room_sender.send(room_id, BOB, "m.room.member", {"membership": "join"}, state_key=BOB)
    txn = TxnRecord(BOB, "DEV", "t1")
    first = await hs.room_sender.send(room_id, BOB, "m.room.message", {"body": "before"}, txn=txn)
    await hs.room_sender.send(room_id, ALICE, "m.room.power_levels",
                              {"events_default": 50}, state_key="")
    assert await hs.room_sender.send(room_id, BOB, "m.room.message", {"body": "before"}, txn=txn) == first
    with pytest.raises(MatrixError) as err:
        await hs.room_sender.send(room_id, BOB, "m.room.message", {"body": "after"},
                                  txn=TxnRecord(BOB, "DEV", "t2"))
    assert err.value.errcode == "M_FORBIDDEN"


@pytest.mark.parametrize("rv", [V10, V12], ids=lambda rv: f"v{rv.identifier}")
async def test_fork_resolves_state_and_merges(hs: Homeserver, fake_clock: FakeClock, rv: object) -> None:
    """Two events on the same parent fork the DAG; a later event merges the branches."""
    room_id = await make_room(hs, version=rv.identifier)  # type: ignore[attr-defined]
    room = await hs.room_store.get(room_id)
    assert room is not None
    async with hs.persister.locked(room_id):
        base_topic = await hs.room_sender.send_locked(
            room, ALICE, "m.room.topic", {"topic": "base"}, state_key=""
        )
        # Branch A: built on the current extremity.
        branch_a = await hs.event_builder.build(
            room, sender=ALICE, event_type="m.room.name", content={"name": "A"}, state_key=""
        )
        # Branch B: built on the same extremity before A is persisted, and later, so
        # its topic wins the tie-break (same power, later timestamp) over the base topic.
        fake_clock.advance(1000)
        branch_b = await hs.event_builder.build(
            room, sender=ALICE, event_type="m.room.topic", content={"topic": "B"}, state_key=""
        )
        assert branch_a.prev_event_ids == branch_b.prev_event_ids == [base_topic.event_id]
        await hs.persister.persist(room, branch_a)
        await hs.persister.persist(room, branch_b)
        async with hs.db.read() as conn:
            extremities = await hs.room_store.extremities(conn, room.room_nid)
        assert {x.event_id for x in extremities} == {branch_a.event_id, branch_b.event_id}
        # Current state is the resolution of both branches: A's name and B's topic.
        state = await current_state(hs, room_id)
        assert state[("m.room.name", "")] == branch_a.event_id
        assert state[("m.room.topic", "")] == branch_b.event_id
        merge = await hs.room_sender.send_locked(room, ALICE, "m.room.message", {"body": "merge"})
    assert set(merge.event.prev_event_ids) == {branch_a.event_id, branch_b.event_id}
    async with hs.db.read() as conn:
        extremities = await hs.room_store.extremities(conn, room.room_nid)
        before = await hs.state_store.load(conn, merge.state_before_nid)  # type: ignore[arg-type]
        evs = await hs.event_store.by_nids(conn, before.values())
    assert [x.event_id for x in extremities] == [merge.event_id]
    ids_before = {s.event_id for s in evs.values()}
    assert branch_a.event_id in ids_before and branch_b.event_id in ids_before


async def test_event_on_unknown_prev_is_rejected(hs: Homeserver) -> None:
    room_id = await make_room(hs)
    room = await hs.room_store.get(room_id)
    assert room is not None
    event = await hs.event_builder.build(room, sender=ALICE, event_type="m.room.message", content={})
    from hearth.core.pdu import build_event

    forged = build_event(
        {**event.pdu, "prev_events": ["$" + "A" * 43]}, room.room_version, SERVER_NAME, hs.signing_key
    )
    async with hs.persister.locked(room_id):
        with pytest.raises(EventRejected):
            await hs.persister.persist(room, forged)


async def _queued_sends(hs: Homeserver, room_id: str, sends: list[tuple[str, str, TxnRecord | None]]
                        ) -> list[str | BaseException]:
    """Queue `sends` (sender, body, txn) while the room's lock is held, so one holder sends them together."""
    async with hs.persister.locked(room_id):
        tasks = [
            asyncio.create_task(hs.room_sender.send(room_id, sender, "m.room.message",
                                                    {"msgtype": "m.text", "body": body}, txn=txn))
            for sender, body, txn in sends
        ]
        for _ in range(500):
            # (SQLite does not queue: each send waits for the lock itself.)
            if not hs.persister.chains or len(hs.room_sender._queued.get(room_id, [])) == len(sends):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_sends_queued_on_one_room_chain_in_order(hs: Homeserver) -> None:
    """Queued sends (one statement on PostgreSQL) each sit on the one before, with their rows."""
    room_id = await make_room(hs)
    await hs.room_sender.send(room_id, BOB, "m.room.member", {"membership": "join"}, state_key=BOB)
    head = await hs.room_sender.send(room_id, ALICE, "m.room.message", {"body": "before"})
    sends = [(ALICE if i % 2 else BOB, f"queued {i}", TxnRecord(ALICE if i % 2 else BOB, "D", f"q{i}"))
             for i in range(6)]
    ids = await _queued_sends(hs, room_id, sends)
    assert all(isinstance(i, str) for i in ids) and len(set(ids)) == 6
    async with hs.db.read() as conn:
        stored = await hs.event_store.by_ids(conn, [str(i) for i in ids])
    previous = head
    for event_id, (sender, body, txn) in zip(ids, sends, strict=True):
        assert isinstance(event_id, str) and txn is not None
        event = stored[event_id].event
        assert (event.sender, event.content["body"]) == (sender, body)
        rows = await _rows_of(hs, event_id)
        assert rows["prevs"] == [previous] and rows["auths"] == sorted(event.auth_event_ids)
        assert rows["text"] == [("content.body", body)] and rows["txns"] == [txn.txn_id]
        previous = event_id
    assert (await _rows_of(hs, previous))["heads"] is True
    streams = [stored[str(i)].stream_ordering for i in ids]
    assert streams == sorted(streams)  # type: ignore[type-var]


async def test_queued_sends_keep_txn_ids_and_refusals_apart(hs: Homeserver) -> None:
    """A repeated txn id (earlier or in the same queue) answers with its event; a refused send fails alone."""
    room_id = await make_room(hs)
    earlier = await hs.room_sender.send(room_id, ALICE, "m.room.message", {"body": "once"},
                                        txn=TxnRecord(ALICE, "D", "t0"))
    twice = TxnRecord(ALICE, "D", "t1")
    ids = await _queued_sends(hs, room_id, [
        (ALICE, "a", None), (ALICE, "b", twice), (BOB, "not a member", None), (ALICE, "b again", twice),
        (ALICE, "once", TxnRecord(ALICE, "D", "t0")), (ALICE, "c", None),
    ])
    a, b, refused, b_again, once, c = ids
    assert isinstance(refused, MatrixError) and refused.errcode == "M_FORBIDDEN"
    assert b_again == b and once == earlier
    assert len({a, b, c, earlier}) == 4
    async with hs.db.read() as conn:
        bodies = (await conn.execute(
            select(func.count()).select_from(events_table).where(events_table.c.type == "m.room.message")
        )).scalar_one()
    assert bodies == 4  # once, a, b, c
    assert (await _rows_of(hs, str(c)))["heads"] is True
