"""Engine setup and the read/write discipline for both database engines.

Stores write SQLAlchemy Core once and run it through `Database.read()` /
`Database.write()`, which yield a `DbConnection`: `await conn.execute(stmt)`
returns an ordinary (buffered) result on either engine.

PostgreSQL runs on asyncpg through SQLAlchemy's asyncio engine: every statement
is a network round trip that the event loop overlaps with other work.

SQLite runs on the standard library driver, *inline on the event loop*. The
design started with aiosqlite, which runs every statement on a helper thread;
measured on the message-send path (about 15 statements a message) that cost
~40 ms per message, almost all of it thread hand-offs and GIL convoys around
aiosqlite's queue, capping sends at ~20 per second. An indexed SQLite statement
in WAL mode with synchronous=NORMAL takes microseconds, far less than a thread
hop, so running it directly is both simpler and an order of magnitude faster.
The cost: a slow query blocks the loop while it runs, so queries stay indexed
and bounded.

SQLite allows one writer at a time. Every write transaction takes one asyncio
lock, so coroutines queue for it instead of meeting "database is locked"; it
starts with BEGIN IMMEDIATE so another process holding the write lock is waited
for (busy timeout) rather than deadlocked on an upgrade. Reads never take the
lock: WAL lets them run beside the writer, each in its own snapshot.
PostgreSQL handles concurrent writers itself, so no lock is taken there.

Code that must act only once a write is durable (publishing a stream position
to readers) registers a callback with `after_commit`; it runs after the
transaction commits and never if it rolls back.

SQLAlchemy's asyncio extension is imported only when a PostgreSQL engine is
made: it pulls in the ORM, which a SQLite server never uses (~0.1 s of CPU and
~6.5 MiB of resident memory at every start).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import NullPool

from hearth.storage.prepared import Result, is_prepared, run_prepared, run_prepared_asyncpg

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

# What `after_commit` queues on a write transaction's connection.
AfterCommit = Callable[[], None]

_SQLITE_BUSY_TIMEOUT_MS = 5000
# Checkpoint the WAL every 10,000 pages (about 40 MiB) rather than SQLite's
# 1,000. Every send commits its own transaction, which rewrites the same few
# hot pages (the ends of the events indexes); a checkpoint copies each page in
# the WAL to the database once and syncs twice, on the committing request's
# path. Ten times fewer checkpoints made sends into one busy room about 10%
# cheaper, for a larger -wal file between checkpoints.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000


class DbConnection(Protocol):
    """What stores may do with a connection, on either engine."""

    # The write transaction's after-commit callbacks; None on a read connection.
    after_commit_callbacks: list[AfterCommit] | None

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Any, parameters: Any = None, *, alone: bool = False) -> Result:
        """Run a statement; `alone` (a `prepared()` write with nothing after it in
        the transaction) lets PostgreSQL run it as its own transaction when it is
        also the first (see `run_prepared_asyncpg`)."""
        ...

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T: ...


class _Connection:
    """What both engines' `DbConnection`s share: the wrapped connection and the after-commit callbacks."""

    __slots__ = ("_conn", "after_commit_callbacks")

    def __init__(
        self, conn: Connection | AsyncConnection, after_commit_callbacks: list[AfterCommit] | None = None
    ) -> None:
        self._conn = conn
        self.after_commit_callbacks = after_commit_callbacks

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect


class _InlineConnection(_Connection):
    """A sync SQLite connection behind the async `DbConnection` interface."""

    __slots__ = ()
    _conn: Connection

    async def execute(self, statement: Any, parameters: Any = None, *, alone: bool = False) -> Result:
        fast = run_prepared(self._conn, statement, parameters)
        if fast is not None:
            return fast
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._conn, *args)


class _AsyncConnection(_Connection):
    """A PostgreSQL (asyncio) connection behind `DbConnection`."""

    __slots__ = ()
    _conn: AsyncConnection

    async def execute(self, statement: Any, parameters: Any = None, *, alone: bool = False) -> Result:
        if is_prepared(statement):
            fast = await run_prepared_asyncpg(self._conn, statement, parameters, alone=alone)
            if fast is not None:
                return fast
        return await self._conn.execute(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._conn.run_sync(fn, *args)


def _sync_sqlite_url(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unsupported database url: {url}")
    return url


def async_pg_url(url: str) -> str:
    """Map a config URL (postgresql://...) to SQLAlchemy's asyncpg driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    raise ValueError(f"unsupported database url: {url}")


class Database:
    """The engine for one database URL, and the read/write transaction helpers."""

    def __init__(self, *, sqlite: Engine | None = None, postgres: AsyncEngine | None = None) -> None:
        if (sqlite is None) == (postgres is None):
            raise ValueError("exactly one engine")
        self._sqlite = sqlite
        self._postgres = postgres
        self.is_sqlite = sqlite is not None
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def engine(self) -> Engine | AsyncEngine:
        """The underlying SQLAlchemy engine (for pool metrics)."""
        return self._sqlite if self._sqlite is not None else self._postgres  # type: ignore[return-value]

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 25) -> Database:
        if url.startswith("sqlite"):
            return cls(sqlite=_sqlite_engine(url, pool_size=pool_size))
        return cls(postgres=_postgres_engine(url, pool_size=pool_size, max_overflow=pool_size))

    @classmethod
    def unpooled(cls, url: str) -> Database:
        """For one-shot tools (migrations, CLI commands): no idle connections kept."""
        if url.startswith("sqlite"):
            return cls(sqlite=_sqlite_engine(url, pool_size=None))
        return cls(postgres=_postgres_engine(url, poolclass=NullPool))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[DbConnection]:
        """A connection for queries that change nothing (one consistent snapshot)."""
        if self._sqlite is not None:
            with self._sqlite.connect() as conn:
                yield _InlineConnection(conn)
            return
        assert self._postgres is not None
        async with self._postgres.connect() as aconn:
            yield _AsyncConnection(aconn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[DbConnection]:
        """One transaction, committed when the block exits without an exception."""
        callbacks: list[AfterCommit] = []
        if self._sqlite is not None:
            assert self._write_lock is not None
            async with self._write_lock:
                conn = self._sqlite.connect().execution_options(hearth_begin="BEGIN IMMEDIATE")
                with conn, conn.begin():
                    yield _InlineConnection(conn, callbacks)
        else:
            assert self._postgres is not None
            async with self._postgres.begin() as aconn:
                yield _AsyncConnection(aconn, callbacks)
        for callback in callbacks:
            callback()

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()
        elif self._postgres is not None:
            await self._postgres.dispose()


def after_commit(conn: DbConnection, callback: AfterCommit) -> None:
    """Run `callback` once `conn`'s write transaction has committed (not at all if it rolls back)."""
    if conn.after_commit_callbacks is None:
        raise RuntimeError("after_commit needs a connection from Database.write()")
    conn.after_commit_callbacks.append(callback)


def _postgres_engine(url: str, **kwargs: Any) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine  # PostgreSQL only (see the module doc)

    return create_async_engine(async_pg_url(url), **kwargs)


def _sqlite_engine(url: str, *, pool_size: int | None) -> Engine:
    kwargs: dict[str, Any] = {}
    if pool_size is None:
        kwargs["poolclass"] = NullPool
    else:
        # Coroutines may each hold a connection across awaits; keep enough.
        kwargs["pool_size"] = max(5, pool_size)
        kwargs["max_overflow"] = 4 * max(5, pool_size)
    # No rollback on return to the pool: closing a Connection already rolls
    # back its (always auto-begun) transaction, so the pool's would be a second.
    engine = create_engine(_sync_sqlite_url(url), pool_reset_on_return=None, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Leave BEGIN to us (see _sqlite_on_begin): pysqlite's own transaction
    # handling would run a write transaction's first SELECTs outside it.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Straight to the driver: going through exec_driver_sql builds a whole
    # execution context for BEGIN, about 5% of the CPU of a woken /sync.
    options: Mapping[str, Any] = conn.get_execution_options()
    conn.connection.driver_connection.execute(options.get("hearth_begin", "BEGIN"))  # type: ignore[union-attr]
