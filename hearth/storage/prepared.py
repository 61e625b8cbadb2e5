"""Hot statements that SQLite runs straight on its driver.

Profiles of sends, pushes and syncs on SQLite showed SQLAlchemy's per-call
work around a statement (cache key, execution context, parameter and result
processing, events) costing several times the statement itself: ~0.1 ms
against ~0.02 ms for an indexed lookup or a one-row insert. A statement that
is built once at import and run often is marked with `prepared()`; on SQLite,
`DbConnection.execute` then compiles it once per set of parameter names (with
SQLAlchemy, so the SQL is exactly what SQLAlchemy would send) and afterwards
hands the SQL and the processed parameters to the sqlite3 driver itself.
On PostgreSQL the same compiled forms go to asyncpg directly, inside
SQLAlchemy's transaction (`run_prepared_asyncpg`): there SQLAlchemy's asyncio
bridge adds two greenlet switches to every statement besides its per-call
work. Any statement whose compiled form needs SQLAlchemy at run time
(Python-side column defaults, an empty expanding list; on PostgreSQL any
expanding list) takes SQLAlchemy's own path unchanged.

What the fast path keeps from SQLAlchemy: bind and result type processing
(e.g. booleans), expanding `IN` parameters, the transaction the connection
is in (it begins one exactly as SQLAlchemy's autobegin would), and driver
errors wrapped as SQLAlchemy's exception classes (`IntegrityError`, ...),
so callers catch the same exceptions on both paths. Results support the part
of SQLAlchemy's result interface the stores use (see `Result`).
"""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_POSTCOMPILE = "__[POSTCOMPILE_{}]"
Processor = Callable[[Any], Any] | None
S = TypeVar("S", bound=Executable)


class Result(Protocol):
    """The part of a SQLAlchemy result that stores use; both paths provide it."""

    @property
    def rowcount(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def all(self) -> Sequence[Any]: ...

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def one_or_none(self) -> Any: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...

    def scalars(self) -> Any: ...

    def mappings(self) -> Any: ...


# id(statement) -> its compiled forms; the statements are kept alive here, so
# an id is never reused for another statement.
_REGISTRY: dict[int, _Prepared] = {}


def prepared(statement: S) -> S:
    """Mark a statement built once (at import) as worth running on SQLite's driver directly."""
    _REGISTRY[id(statement)] = _Prepared(statement)
    return statement


def run_prepared(conn: Connection, statement: Any, parameters: Any) -> FastResult | None:
    """Run a `prepared()` statement on SQLite's driver; None if it is not one or needs SQLAlchemy."""
    entry = _REGISTRY.get(id(statement))
    if entry is None:
        return None
    many = isinstance(parameters, list)
    if many and not parameters:
        return None
    first: Mapping[str, Any] = (parameters[0] if many else parameters) or {}
    form = entry.form(conn.dialect, first)
    if form is None:
        return None
    if many:
        if form.expanding:
            return None
        rows_params = [form.positional(p) for p in parameters]
        sql = form.sql
    else:
        built = form.expand(first)
        if built is None:
            return None
        sql, params = built
    if not conn.in_transaction():
        conn.begin()  # what SQLAlchemy's autobegin does (and our BEGIN hook runs)
    driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        cursor = driver.executemany(sql, rows_params) if many else driver.execute(sql, params)
        rows = cursor.fetchall() if form.columns else []
    except sqlite3.Error as e:
        raise exc.DBAPIError.instance(sql, parameters, e, sqlite3.Error) from e
    return FastResult(form.make_rows(rows), cursor.rowcount, form)


def is_prepared(statement: Any) -> bool:
    return id(statement) in _REGISTRY


async def run_prepared_asyncpg(conn: AsyncConnection, statement: Any, parameters: Any, *, alone: bool = False
                               ) -> FastResult | None:
    """Run a `prepared()` statement on asyncpg directly; None if it needs SQLAlchemy.

    Inside SQLAlchemy's transaction: the statement goes through the adapter
    connection SQLAlchemy's asyncpg dialect wraps around asyncpg, under its
    lock, starting the adapter's transaction as its own cursor would and using
    its cache of server-side prepared statements, so SQLAlchemy's commit and
    rollback cover it. What this skips is SQLAlchemy's per-call machinery and
    the greenlet switches of its asyncio bridge. These are the adapter's
    underscored members (SQLAlchemy 2.x): a test runs the path on PostgreSQL.

    `alone`: the statement is the whole of its write transaction. If nothing
    has run on the connection yet, it runs without BEGIN and so commits by
    itself (the adapter's commit then has nothing to do): two round trips
    fewer. The caller must run nothing after it in the same transaction.
    """
    many = isinstance(parameters, list)
    if many and not parameters:
        return None
    sync_conn = conn.sync_connection
    assert sync_conn is not None
    dialect = sync_conn.dialect
    params: Mapping[str, Any] = (parameters[0] if many else parameters) or {}
    form = _REGISTRY[id(statement)].form(dialect, params)
    if form is None or form.expanding:
        return None  # (numbered placeholders would need renumbering)
    if many and form.columns:
        return None  # rows back from many executes: SQLAlchemy's "insertmanyvalues" does that
    adapter: Any = sync_conn.connection.dbapi_connection
    sql = form.sql
    args = [form.positional(p) for p in parameters] if many else form.positional(params)
    rows: list[Any] = []
    status: str | None = None
    async with adapter._execute_mutex:
        try:
            if adapter._transaction is None and not alone:
                await adapter._start_transaction()
            stmt, _attributes = await adapter._prepare(sql, dialect._invalidate_schema_cache_asof)  # type: ignore[attr-defined]
            if many:
                # asyncpg sends every row's execute in one round trip (no count comes back).
                await stmt.executemany(args)
            else:
                rows = await stmt.fetch(*args)
                status = stmt.get_statusmsg()
        except Exception as e:
            _raise_translated(adapter, sql, args, e)
    counted = _STATUS_COUNT.match(status or "")
    # (An INSERT compiled for PostgreSQL returns its primary key for SQLAlchemy's
    # own use even when the statement names no RETURNING columns: not a result.)
    made = form.make_rows(rows) if form.columns else []
    return FastResult(made, int(counted.group(1)) if counted else -1, form)


# asyncpg's command status ("INSERT 0 1", "UPDATE 3", "SELECT 2"): the row count.
_STATUS_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def _raise_translated(adapter: Any, sql: str, params: Any, error: Exception) -> NoReturn:
    """Raise an asyncpg error as SQLAlchemy would (`IntegrityError`, ...), so callers catch one kind."""
    try:
        adapter._handle_exception(error)  # raises the DB-API form of the error
    except adapter.dbapi.Error as translated:
        raise exc.DBAPIError.instance(sql, params, translated, adapter.dbapi.Error) from error
    raise error


class _Prepared:
    __slots__ = ("_forms", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # (dialect, parameter names) -> compiled form (None: SQLAlchemy must run it).
        # A server has one dialect; the tests run both in one process.
        self._forms: dict[tuple[str, frozenset[str]], _Form | None] = {}

    def form(self, dialect: Dialect, parameters: Mapping[str, Any]) -> _Form | None:
        key = (dialect.name, frozenset(parameters))
        try:
            return self._forms[key]
        except KeyError:
            form = self._forms[key] = _Form.compile(self.statement, dialect, key[1])
            return form


class _Form:
    """One compiled shape of a prepared statement: SQL, parameter order and processors."""

    __slots__ = (
        "bind_procs", "columns", "defaults", "expanding", "names", "processed", "result_procs", "row_type",
        "sql",
    )

    def __init__(self) -> None:
        self.sql = ""
        self.names: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.bind_procs: list[Processor] = []
        self.processed: tuple[int, ...] = ()  # indexes of the parameters with a bind processor
        self.expanding: frozenset[str] = frozenset()
        self.columns: list[str] = []
        self.result_procs: list[Processor] = []
        self.row_type: Any = None

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect, keys: frozenset[str]) -> _Form | None:
        compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))  # type: ignore[attr-defined]
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            return None  # Python-side column defaults: SQLAlchemy fills them in
        form = cls()
        form.sql = compiled.string
        form.names = list(compiled.positiontup or ())
        expanding = set()
        for name in form.names:
            bind = compiled.binds[name]
            if bind.callable is not None:
                return None
            if bind.expanding:
                expanding.add(name)
            elif _POSTCOMPILE.format(name) in form.sql:
                return None  # a literal rendered at run time
            if name not in keys:
                if bind.required:
                    return None  # let SQLAlchemy raise its own error for the missing value
                form.defaults[name] = bind.value
            form.bind_procs.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
        form.expanding = frozenset(expanding)
        form.processed = tuple(i for i, proc in enumerate(form.bind_procs) if proc is not None)
        exported = getattr(statement, "exported_columns", None)
        if exported is not None and len(exported):
            form.columns = list(exported.keys())
            form.result_procs = [
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in exported
            ]
            form.row_type = namedtuple("Row", form.columns, rename=True)  # type: ignore[misc]
        return form

    def positional(self, parameters: Mapping[str, Any]) -> list[Any]:
        if not self.defaults:
            # The common case, per row of an executemany: every value given.
            out = [parameters[name] for name in self.names]
            for i in self.processed:
                value = out[i]
                if value is not None:
                    out[i] = self.bind_procs[i](value)  # type: ignore[misc]
            return out
        out = []
        for name, proc in zip(self.names, self.bind_procs, strict=True):
            value = parameters[name] if name in parameters else self.defaults[name]
            out.append(value if proc is None or value is None else proc(value))
        return out

    def expand(self, parameters: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL and positional parameters, with expanding lists spliced in (None: an empty list)."""
        if not self.expanding:
            return self.sql, self.positional(parameters)
        sql = self.sql
        out: list[Any] = []
        for name, proc in zip(self.names, self.bind_procs, strict=True):
            value = parameters[name] if name in parameters else self.defaults[name]
            if name in self.expanding:
                values = list(value)
                if not values:
                    return None  # SQLAlchemy renders its "empty set" expression
                sql = sql.replace(_POSTCOMPILE.format(name), ", ".join("?" * len(values)), 1)
                out.extend(v if proc is None or v is None else proc(v) for v in values)
            else:
                out.append(value if proc is None or value is None else proc(value))
        return sql, out

    def make_rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        if not raw:
            return []
        make = self.row_type._make
        procs = self.result_procs
        if not any(procs):
            return [make(r) for r in raw]
        return [make([v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True)])
                for r in raw]


class _Items:
    """A buffered list of rows (or of `scalars()` / `mappings()` values): iterate, or take all, first, one."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def all(self) -> list[Any]:
        return list(self._items)

    def first(self) -> Any:
        return self._items[0] if self._items else None

    def one(self) -> Any:
        if not self._items:
            raise exc.NoResultFound("No row was found")
        if len(self._items) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found")
        return self._items[0]

    def one_or_none(self) -> Any:
        if len(self._items) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found")
        return self._items[0] if self._items else None


class FastResult(_Items):
    """A buffered result of the fast path, with the methods `Result` names."""

    __slots__ = ("_form", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, form: _Form) -> None:
        super().__init__(rows)
        self.rowcount = rowcount
        self._form = form

    def fetchall(self) -> list[Any]:
        return list(self._items)

    def scalar(self) -> Any:
        return self._items[0][0] if self._items else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> _Items:
        return _Items([r[0] for r in self._items])

    def mappings(self) -> _Items:
        return _Items([dict(zip(self._form.columns, r, strict=True)) for r in self._items])
