"""Stream positions: the stream_counters table and the committed positions kept in memory, on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hearth.storage.db import Database, after_commit
from hearth.storage.streams import StreamPositions, all_positions


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url, pool_size=8)
    yield database
    await database.close()


@pytest.fixture
async def positions(db: Database) -> StreamPositions:
    return await StreamPositions.load(db)


async def test_positions_start_at_one_and_increase(db: Database, positions: StreamPositions) -> None:
    assert positions.current("test") == 0
    taken = []
    for _ in range(3):
        async with db.write() as conn:
            taken.append(await positions.next(conn, "test"))
    assert taken == [1, 2, 3]
    assert positions.current("test") == 3


async def test_streams_are_independent(db: Database, positions: StreamPositions) -> None:
    async with db.write() as conn:
        assert await positions.next(conn, "a") == 1
        assert await positions.next(conn, "a") == 2
        assert await positions.next(conn, "b") == 1
    assert (positions.current("a"), positions.current("b")) == (2, 1)


async def test_a_position_is_current_only_once_committed(db: Database, positions: StreamPositions) -> None:
    async with db.write() as conn:
        assert await positions.next(conn, "test") == 1
        assert positions.current("test") == 0
    assert positions.current("test") == 1


async def test_rolled_back_position_is_not_current(db: Database, positions: StreamPositions) -> None:
    async with db.write() as conn:
        await positions.next(conn, "test")
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await positions.next(conn, "test")
            raise RuntimeError("abort")
    assert positions.current("test") == 1
    assert (await StreamPositions.load(db)).current("test") == 1
    async with db.write() as conn:
        assert await positions.next(conn, "test") == 2  # the rolled-back number is handed out again


async def test_concurrent_writers_get_distinct_positions(db: Database, positions: StreamPositions) -> None:
    async def take() -> int:
        async with db.write() as conn:
            pos = await positions.next(conn, "test")
            await asyncio.sleep(0)  # hold the transaction open across a switch
            return pos

    taken = await asyncio.gather(*(take() for _ in range(20)))
    assert sorted(taken) == list(range(1, 21))
    assert positions.current("test") == 20


async def test_position_is_visible_only_with_every_smaller_one(db: Database, positions: StreamPositions
                                                               ) -> None:
    """A second writer waits for the first to commit, so current never skips a position.

    On PostgreSQL the counter row's lock does this; on SQLite the write lock.
    """
    first_has_position = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> int:
        async with db.write() as conn:
            pos = await positions.next(conn, "test")
            first_has_position.set()
            await release_first.wait()
            return pos

    async def second() -> int:
        await first_has_position.wait()
        async with db.write() as conn:
            return await positions.next(conn, "test")

    t1 = asyncio.create_task(first())
    t2 = asyncio.create_task(second())
    await first_has_position.wait()
    # Give the second writer ample time to overtake; correct code blocks it forever.
    done, _ = await asyncio.wait({t2}, timeout=0.2)
    assert not done
    assert positions.current("test") == 0
    release_first.set()
    assert (await t1, await t2) == (1, 2)
    assert positions.current("test") == 2


async def test_load_reads_every_committed_stream(db: Database, positions: StreamPositions) -> None:
    async with db.read() as conn:
        seeded = await all_positions(conn)  # rows the migrations seed
    assert "a" not in seeded and "b" not in seeded
    async with db.write() as conn:
        await positions.next(conn, "a")
        await positions.next(conn, "a")
        await positions.next(conn, "b")
    async with db.read() as conn:
        assert await all_positions(conn) == {**seeded, "a": 2, "b": 1}
    reloaded = await StreamPositions.load(db)
    for name in [*seeded, "a", "b"]:
        assert reloaded.current(name) == positions.current(name)


async def test_after_commit_needs_a_write_connection(db: Database) -> None:
    async with db.read() as conn:
        with pytest.raises(RuntimeError):
            after_commit(conn, lambda: None)
