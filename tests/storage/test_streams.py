"""Stream positions from the stream_counters table, on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hearth.storage import streams
from hearth.storage.db import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url, pool_size=8)
    yield database
    await database.close()


async def test_positions_start_at_one_and_increase(db: Database) -> None:
    async with db.read() as conn:
        assert await streams.current_position(conn, "test") == 0
    taken = []
    for _ in range(3):
        async with db.write() as conn:
            taken.append(await streams.next_position(conn, "test"))
    assert taken == [1, 2, 3]
    async with db.read() as conn:
        assert await streams.current_position(conn, "test") == 3


async def test_streams_are_independent(db: Database) -> None:
    async with db.write() as conn:
        assert await streams.next_position(conn, "a") == 1
        assert await streams.next_position(conn, "a") == 2
        assert await streams.next_position(conn, "b") == 1
    async with db.read() as conn:
        assert await streams.current_position(conn, "a") == 2
        assert await streams.current_position(conn, "b") == 1


async def test_rolled_back_position_is_not_current(db: Database) -> None:
    async with db.write() as conn:
        await streams.next_position(conn, "test")
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await streams.next_position(conn, "test")
            raise RuntimeError("abort")
    async with db.read() as conn:
        assert await streams.current_position(conn, "test") == 1


async def test_concurrent_writers_get_distinct_positions(db: Database) -> None:
    async def take() -> int:
        async with db.write() as conn:
            pos = await streams.next_position(conn, "test")
            await asyncio.sleep(0)  # hold the transaction open across a switch
            return pos

    taken = await asyncio.gather(*(take() for _ in range(20)))
    assert sorted(taken) == list(range(1, 21))
    async with db.read() as conn:
        assert await streams.current_position(conn, "test") == 20


async def test_position_is_visible_only_with_every_smaller_one(db: Database) -> None:
    """A second writer waits for the first to commit, so current never skips a position.

    On PostgreSQL the counter row's lock does this; on SQLite the write lock.
    """
    first_has_position = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> int:
        async with db.write() as conn:
            pos = await streams.next_position(conn, "test")
            first_has_position.set()
            await release_first.wait()
            return pos

    async def second() -> int:
        await first_has_position.wait()
        async with db.write() as conn:
            return await streams.next_position(conn, "test")

    t1 = asyncio.create_task(first())
    t2 = asyncio.create_task(second())
    await first_has_position.wait()
    # Give the second writer ample time to overtake; correct code blocks it forever.
    done, _ = await asyncio.wait({t2}, timeout=0.2)
    assert not done
    async with db.read() as conn:
        assert await streams.current_position(conn, "test") == 0
    release_first.set()
    assert (await t1, await t2) == (1, 2)


async def test_all_positions_reads_every_stream_at_once(db: Database) -> None:
    async with db.read() as conn:
        before = await streams.all_positions(conn)  # rows the migrations seed
    assert "a" not in before and "b" not in before
    async with db.write() as conn:
        await streams.next_position(conn, "a")
        await streams.next_position(conn, "a")
        await streams.next_position(conn, "b")
    async with db.read() as conn:
        positions = await streams.all_positions(conn)
        assert positions == {**before, "a": 2, "b": 1}
        for name, position in positions.items():
            assert position == await streams.current_position(conn, name)
