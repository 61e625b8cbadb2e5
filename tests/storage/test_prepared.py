"""The fast paths for `prepared()` statements (SQLite's driver, asyncpg) answer exactly as SQLAlchemy does.

Every test runs on both engines. On PostgreSQL an expanding `IN` list takes
SQLAlchemy's path (numbered placeholders would need renumbering), so the
expected fast calls differ there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    delete,
    exc,
    insert,
    select,
    text,
    update,
)

from hearth.storage import db as db_module
from hearth.storage.db import Database
from hearth.storage.prepared import prepared

_meta = MetaData()
_things = Table(
    "things",
    _meta,
    Column("nid", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("flag", Boolean, nullable=False),
    Column("blob", LargeBinary, nullable=True),
    Column("kind", Text, nullable=False, default="plain"),  # a Python-side default
)


class _Shouted(TypeDecorator[str]):
    """Stored upper-case, read back lower-case: shows whether bind and result processors ran."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.upper()

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.lower()


_notes = Table(
    "notes", _meta, Column("nid", Integer, primary_key=True), Column("text", _Shouted, nullable=True),
)
_INSERT_NOTE = prepared(insert(_notes))
_NOTES = prepared(select(_notes.c.nid, _notes.c.text).order_by(_notes.c.nid))


def _both(build: Callable[[], Any]) -> tuple[Any, Any]:
    """The same statement twice: one run on the fast path, one through SQLAlchemy."""
    return prepared(build()), build()


_INSERT, _INSERT_SLOW = _both(lambda: insert(_things))
_INSERT_RETURNING, _INSERT_RETURNING_SLOW = _both(lambda: insert(_things).returning(_things.c.nid))
_BY_NAMES, _BY_NAMES_SLOW = _both(
    lambda: select(_things.c.nid, _things.c.name, _things.c.flag, _things.c.blob)
    .where(_things.c.name.in_(bindparam("names", expanding=True)), _things.c.flag.is_(True))
    .order_by(_things.c.nid)
)
_COUNT_KIND, _COUNT_KIND_SLOW = _both(
    lambda: select(_things.c.kind, _things.c.nid).where(_things.c.kind == "plain").order_by(_things.c.nid)
)
_RENAME, _RENAME_SLOW = _both(
    lambda: update(_things).where(_things.c.nid == bindparam("n")).values(name=bindparam("new_name"))
)
_DELETE_FLAGGED, _DELETE_FLAGGED_SLOW = _both(lambda: delete(_things).where(_things.c.flag == bindparam("f")))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url, pool_size=4)
    async with database.write() as conn:
        await conn.run_sync(_meta.create_all)
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'prepared.db'}", pool_size=4)
    async with database.write() as conn:
        await conn.run_sync(_meta.create_all)
    yield database
    await database.close()


_WATCHED = (_INSERT, _INSERT_RETURNING, _BY_NAMES, _COUNT_KIND, _RENAME, _DELETE_FLAGGED)


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each execute of a prepared statement took the fast path (either engine's)."""
    calls: list[bool] = []
    sqlite_path, asyncpg_path = db_module.run_prepared, db_module.run_prepared_asyncpg

    def sqlite_spy(conn: Any, statement: Any, parameters: Any) -> Any:
        result = sqlite_path(conn, statement, parameters)
        if statement in _WATCHED:
            calls.append(result is not None)
        return result

    async def asyncpg_spy(conn: Any, statement: Any, parameters: Any, *, alone: bool = False) -> Any:
        result = await asyncpg_path(conn, statement, parameters, alone=alone)
        if statement in _WATCHED:
            calls.append(result is not None)
        return result

    monkeypatch.setattr(db_module, "run_prepared", sqlite_spy)
    monkeypatch.setattr(db_module, "run_prepared_asyncpg", asyncpg_spy)
    return calls


_ROWS = [
    {"name": "a", "flag": True, "blob": b"\x00\x01", "kind": "plain"},
    {"name": "b", "flag": False, "blob": None, "kind": "plain"},
    {"name": "c", "flag": True, "blob": None, "kind": "odd"},
]


async def test_fast_and_slow_paths_agree(db: Database, fast_calls: list[bool]) -> None:
    async with db.write() as conn:
        # Many rows: SQLite's driver counts them; asyncpg's executemany reports no count.
        many = await conn.execute(_INSERT, _ROWS)
        assert many.rowcount == (3 if db.is_sqlite else -1)
    async with db.read() as conn:
        names = {"names": ["a", "b", "c", "zzz"]}
        fast_rows = (await conn.execute(_BY_NAMES, names)).all()
        slow_rows = (await conn.execute(_BY_NAMES_SLOW, names)).all()
    assert [tuple(r) for r in fast_rows] == [tuple(r) for r in slow_rows] == [(1, "a", True, b"\x00\x01"),
                                                                             (3, "c", True, None)]
    assert all(type(r.flag) is bool for r in fast_rows)  # the Boolean result processor ran
    assert [r.name for r in fast_rows] == ["a", "c"]  # rows are named like SQLAlchemy's
    # The many-row insert is fast on both engines; the expanding IN list only on SQLite.
    assert fast_calls == [True, db.is_sqlite]


async def test_result_methods(db: Database) -> None:
    async with db.write() as conn:
        nid = (await conn.execute(_INSERT_RETURNING, {**_ROWS[0]})).scalar_one()
        slow_nid = (await conn.execute(_INSERT_RETURNING_SLOW, {**_ROWS[1]})).scalar_one()
    assert (nid, slow_nid) == (1, 2)
    async with db.read() as conn:
        for statement in (_BY_NAMES, _BY_NAMES_SLOW):
            one = {"names": ["a"]}
            assert (await conn.execute(statement, one)).scalar_one_or_none() == 1
            assert (await conn.execute(statement, {"names": ["b"]})).scalar_one_or_none() is None
            assert (await conn.execute(statement, one)).scalars().all() == [1]
            assert (await conn.execute(statement, one)).mappings().first()["name"] == "a"
            assert (await conn.execute(statement, one)).first()[1] == "a"
            with pytest.raises(exc.NoResultFound):
                (await conn.execute(statement, {"names": ["b"]})).one()


async def test_update_and_delete_report_rowcounts(db: Database, fast_calls: list[bool]) -> None:
    async with db.write() as conn:
        await conn.execute(_INSERT, _ROWS)
        assert (await conn.execute(_RENAME, {"n": 1, "new_name": "a2"})).rowcount == 1
        assert (await conn.execute(_RENAME, {"n": 99, "new_name": "x"})).rowcount == 0
        assert (await conn.execute(_DELETE_FLAGGED, {"f": True})).rowcount == 2
        assert (await conn.execute(_DELETE_FLAGGED_SLOW, {"f": False})).rowcount == 1
    assert fast_calls == [True, True, True, True]


async def test_driver_errors_are_sqlalchemy_errors(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(_INSERT, {**_ROWS[0]})
    with pytest.raises(exc.IntegrityError):
        async with db.write() as conn:
            await conn.execute(_INSERT, {**_ROWS[0]})  # unique name
    with pytest.raises(exc.IntegrityError):
        async with db.write() as conn:
            await conn.execute(_INSERT, [_ROWS[1], _ROWS[0]])  # many rows, the second one clashes
    async with db.read() as conn:
        assert (await conn.execute(_BY_NAMES, {"names": ["a"]})).all() != []
        assert (await conn.execute(_BY_NAMES, {"names": ["b"]})).all() == []  # rolled back with it


async def test_what_needs_sqlalchemy_still_works(db: Database, fast_calls: list[bool]) -> None:
    """A Python-side default and an empty expanding list go through SQLAlchemy, with its answer."""
    async with db.write() as conn:
        await conn.execute(_INSERT, [{"name": "d", "flag": True}])  # no kind: its default applies
    async with db.read() as conn:
        assert (await conn.execute(_BY_NAMES, {"names": []})).all() == []
        kinds = (await conn.execute(_COUNT_KIND)).all()
        assert [tuple(r) for r in kinds] == [tuple(r) for r in (await conn.execute(_COUNT_KIND_SLOW)).all()]
    assert [tuple(r) for r in kinds] == [("plain", 1)]
    # the insert without `kind` and the empty list fell back; the select without parameters did not
    assert fast_calls == [False, False, True]


async def test_a_fast_read_sees_one_snapshot(sqlite_db: Database) -> None:
    """A read connection begins a transaction before its first fast statement, as SQLAlchemy would.

    SQLite only: a PostgreSQL read runs at READ COMMITTED, each statement in
    its own snapshot, on either path.
    """
    db = sqlite_db
    async with db.write() as conn:
        await conn.execute(_INSERT, [_ROWS[0]])
    async with db.read() as reader:
        before = (await reader.execute(_BY_NAMES, {"names": ["a", "c"]})).all()
        async with db.write() as writer:
            await writer.execute(_INSERT, [_ROWS[2]])
        after = (await reader.execute(_BY_NAMES, {"names": ["a", "c"]})).all()
    assert len(before) == len(after) == 1
    async with db.read() as reader:
        assert len((await reader.execute(_BY_NAMES, {"names": ["a", "c"]})).all()) == 2


async def test_a_rolled_back_write_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(_INSERT, [_ROWS[0]])
            raise RuntimeError("abort")
    async with db.read() as conn:
        assert (await conn.execute(_BY_NAMES, {"names": ["a"]})).all() == []


async def test_a_statement_alone_commits_by_itself_only_when_first(db: Database) -> None:
    """`alone` on PostgreSQL: the first statement of a write runs as its own transaction.

    After another statement it is part of the block's transaction like any
    other. SQLite's write has begun before the first statement: no effect there.
    """
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(_INSERT, {**_ROWS[0]}, alone=True)
            raise RuntimeError("abort")
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(_INSERT, {**_ROWS[1]})
            await conn.execute(_INSERT, {**_ROWS[2]}, alone=True)
            raise RuntimeError("abort")
    async with db.write() as conn:
        await conn.execute(_INSERT, {"name": "d", "flag": True, "blob": None, "kind": "plain"}, alone=True)
    async with db.read() as conn:
        names = (await conn.execute(_BY_NAMES, {"names": ["a", "b", "c", "d"]})).all()
    assert sorted(r.name for r in names) == (["d"] if db.is_sqlite else ["a", "d"])


async def test_bind_and_result_processors_run_on_every_row(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(_INSERT_NOTE, {"nid": 1, "text": "one"})
        await conn.execute(_INSERT_NOTE, [{"nid": 2, "text": "two"}, {"nid": 3, "text": None},
                                          {"nid": 4, "text": "four"}])
    async with db.read() as conn:
        stored = (await conn.execute(text("SELECT text FROM notes ORDER BY nid"))).all()
        read = (await conn.execute(_NOTES)).all()
    assert [r[0] for r in stored] == ["ONE", "TWO", None, "FOUR"]
    assert [tuple(r) for r in read] == [(1, "one"), (2, "two"), (3, None), (4, "four")]


async def test_fast_and_slow_statements_share_one_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(_INSERT, [_ROWS[0]])
            await conn.execute(_INSERT_SLOW, [_ROWS[1]])
            raise RuntimeError("abort")
    async with db.write() as conn:
        await conn.execute(_INSERT_SLOW, [_ROWS[0]])
        await conn.execute(_INSERT, [_ROWS[1]])
        # each path sees what the other wrote, before the commit
        assert (await conn.execute(_BY_NAMES_SLOW, {"names": ["a"]})).scalar_one() is not None
        assert len((await conn.execute(_COUNT_KIND)).all()) == 2
    async with db.read() as conn:
        assert [r.name for r in (await conn.execute(select(_things.c.name).order_by(_things.c.name))).all()] \
            == ["a", "b"]
