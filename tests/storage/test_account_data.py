"""AccountDataStore on both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hearth.storage.account_data import GLOBAL, AccountDataStore
from hearth.storage.db import Database
from hearth.storage.streams import StreamPositions
from hearth.storage.users import UsersStore

ALICE = "@alice:test.local"
BOB = "@bob:test.local"
ROOM = "!room:test.local"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    users = UsersStore(database)
    for user_id in (ALICE, BOB):
        await users.create(user_id, None, created_ts=0)
    yield database
    await database.close()


@pytest.fixture
async def store(db: Database) -> AccountDataStore:
    return AccountDataStore(db, await StreamPositions.load(db))


async def test_put_get_and_replace(store: AccountDataStore) -> None:
    assert await store.get(ALICE, GLOBAL, "a.b") is None
    await store.put(ALICE, GLOBAL, "a.b", {"x": [1, {"y": None}], "é": "ü"})
    assert await store.get(ALICE, GLOBAL, "a.b") == {"x": [1, {"y": None}], "é": "ü"}
    await store.put(ALICE, GLOBAL, "a.b", {})
    assert await store.get(ALICE, GLOBAL, "a.b") == {}


async def test_entries_are_per_user_room_and_type(store: AccountDataStore) -> None:
    await store.put(ALICE, GLOBAL, "t", {"who": "alice-global"})
    await store.put(ALICE, ROOM, "t", {"who": "alice-room"})
    await store.put(BOB, GLOBAL, "t", {"who": "bob-global"})
    assert await store.get(ALICE, GLOBAL, "t") == {"who": "alice-global"}
    assert await store.get(ALICE, ROOM, "t") == {"who": "alice-room"}
    assert await store.get(BOB, GLOBAL, "t") == {"who": "bob-global"}
    assert await store.get(BOB, ROOM, "t") is None


async def test_positions_and_changes_since(store: AccountDataStore) -> None:
    assert store.current_position() == 0
    p1 = await store.put(ALICE, GLOBAL, "one", {"v": 1})
    p2 = await store.put(BOB, GLOBAL, "other", {})
    p3 = await store.put(ALICE, ROOM, "two", {"v": 2})
    p4 = await store.put(ALICE, GLOBAL, "one", {"v": 3})
    assert [p1, p2, p3, p4] == [1, 2, 3, 4]
    assert store.current_position() == 4
    everything = await store.changed_since(ALICE, 0)
    assert [(e.room_id, e.type, e.content, e.stream_id) for e in everything] == [
        (ROOM, "two", {"v": 2}, 3), (GLOBAL, "one", {"v": 3}, 4)]
    assert [e.type for e in await store.changed_since(ALICE, 3)] == ["one"]
    assert [e.type for e in await store.changed_since(ALICE, 0, upto=3)] == ["two"]
    assert await store.changed_since(ALICE, 4) == []


async def test_nul_and_lone_surrogates_are_stored_safely(store: AccountDataStore) -> None:
    content = {"nul": "a\u0000b", "lone": "\ud800", "text": "日本"}
    await store.put(ALICE, GLOBAL, "t", content)
    assert await store.get(ALICE, GLOBAL, "t") == content


async def test_delete_all_removes_only_that_user(db: Database, store: AccountDataStore) -> None:
    await store.put(ALICE, GLOBAL, "t", {})
    await store.put(ALICE, ROOM, "t", {})
    await store.put(BOB, GLOBAL, "t", {"kept": True})
    async with db.write() as conn:
        await store.delete_all(conn, ALICE)
    assert await store.changed_since(ALICE, 0) == []
    assert await store.get(BOB, GLOBAL, "t") == {"kept": True}
