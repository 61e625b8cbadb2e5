"""FiltersStore on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hearth.storage.db import Database
from hearth.storage.filters import FiltersStore
from hearth.storage.users import UsersStore

ALICE = "@alice:test.local"
BOB = "@bob:test.local"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url, pool_size=8)
    users = UsersStore(database)
    for user_id in (ALICE, BOB):
        await users.create(user_id, None, created_ts=0)
    yield database
    await database.close()


async def test_ids_count_up_per_user(db: Database) -> None:
    store = FiltersStore(db)
    assert await store.add(ALICE, '{"a":1}') == 0
    assert await store.add(ALICE, '{"a":2}') == 1
    assert await store.add(BOB, '{"a":1}') == 0
    assert await store.get(ALICE, 0) == '{"a":1}'
    assert await store.get(ALICE, 1) == '{"a":2}'
    assert await store.get(BOB, 0) == '{"a":1}'
    assert await store.get(BOB, 1) is None


async def test_identical_filter_is_reused(db: Database) -> None:
    store = FiltersStore(db)
    first = await store.add(ALICE, '{"room":{}}')
    await store.add(ALICE, "{}")
    assert await store.add(ALICE, '{"room":{}}') == first


async def test_concurrent_adds_get_distinct_ids(db: Database) -> None:
    store = FiltersStore(db)
    ids = await asyncio.gather(*(store.add(ALICE, f'{{"n":{n}}}') for n in range(10)))
    assert sorted(ids) == list(range(10))
    for n, filter_id in enumerate(ids):
        assert await store.get(ALICE, filter_id) == f'{{"n":{n}}}'


async def test_delete_all_removes_only_that_user(db: Database) -> None:
    store = FiltersStore(db)
    await store.add(ALICE, "{}")
    await store.add(BOB, "{}")
    async with db.write() as conn:
        await store.delete_all(conn, ALICE)
    assert await store.get(ALICE, 0) is None
    assert await store.get(BOB, 0) == "{}"
    assert await store.add(ALICE, "{}") == 0
