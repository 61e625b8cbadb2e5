"""Engine setup and the read/write discipline for both database engines.

SQLite allows one writer at a time; letting several asyncio tasks open write
transactions at once only produces `database is locked` retries. So on SQLite
every write transaction takes one asyncio lock (reads never wait for it: WAL lets
them run beside the writer). PostgreSQL handles concurrent writers itself, so no
lock is taken there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def async_url(url: str) -> str:
    """Map a config URL (sqlite:///..., postgresql://...) to its asyncio driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    raise ValueError(f"unsupported database url: {url}")


class Database:
    """An async engine plus the write lock SQLite needs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> Database:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            # aiosqlite runs each connection in its own thread; a small pool of
            # them gives parallel reads under WAL.
            kwargs["pool_size"] = max(2, pool_size // 2)
            kwargs["max_overflow"] = 0
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        engine = create_async_engine(async_url(url), **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    @classmethod
    def unpooled(cls, url: str) -> Database:
        """For one-shot tools (migrations, CLI commands): no idle connections kept."""
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries that change nothing."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block exits without an exception."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # aiosqlite's adapter opens in pysqlite's legacy transaction mode; make the
    # driver leave BEGIN to SQLAlchemy and set the durability/concurrency knobs.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
