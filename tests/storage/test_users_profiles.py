"""UsersStore's profile and deactivation methods on both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hearth.storage.db import Database
from hearth.storage.users import Profile, UsersStore

ALICE = "@alice:test.local"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.close()


@pytest.fixture
async def users(db: Database) -> UsersStore:
    store = UsersStore(db)
    await store.create(ALICE, "hash", created_ts=0, displayname="alice")
    return store


async def test_profile_of_new_and_unknown_users(users: UsersStore) -> None:
    assert await users.get_profile(ALICE) == Profile("alice", None)
    assert await users.get_profile("@nobody:test.local") is None


async def test_set_and_clear_profile_fields(users: UsersStore) -> None:
    await users.set_profile_field(ALICE, "avatar_url", "mxc://test.local/a")
    await users.set_profile_field(ALICE, "displayname", "Alice")
    assert await users.get_profile(ALICE) == Profile("Alice", "mxc://test.local/a")
    await users.set_profile_field(ALICE, "displayname", None)
    assert await users.get_profile(ALICE) == Profile(None, "mxc://test.local/a")


async def test_only_profile_columns_can_be_set(users: UsersStore) -> None:
    with pytest.raises(ValueError):
        await users.set_profile_field(ALICE, "password_hash", "x")


async def test_deactivate_keeps_profile_unless_erased(db: Database, users: UsersStore) -> None:
    async with db.write() as conn:
        await users.deactivate(conn, ALICE, erase=False)
    account = await users.get(ALICE)
    assert account is not None and account.deactivated and account.password_hash is None
    assert await users.get_profile(ALICE) is None
    assert await users.get_profile(ALICE, include_deactivated=True) == Profile("alice", None)
    assert not await users.is_erased(ALICE)


async def test_deactivate_with_erase_clears_profile(db: Database, users: UsersStore) -> None:
    await users.set_profile_field(ALICE, "avatar_url", "mxc://test.local/a")
    async with db.write() as conn:
        await users.deactivate(conn, ALICE, erase=True)
    assert await users.get_profile(ALICE, include_deactivated=True) == Profile(None, None)
    assert await users.is_erased(ALICE)


async def test_new_accounts_are_not_erased(users: UsersStore) -> None:
    assert not await users.is_erased(ALICE)
    assert not await users.is_erased("@nobody:test.local")
