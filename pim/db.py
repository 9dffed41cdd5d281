"""Engine and sessions. The request edge (or the job) owns the transaction."""

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import Dialect, Row, Select, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from pim import json_encoding, metrics, tracing
from pim.jobs import PendingJob, take_pending
from pim.private_files import private_sqlite_file
from pim.settings import Settings


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (else the embedded SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


_Ts = TypeVarTuple("_Ts")


async def fetch(
    session: AsyncSession, statement: Select[*_Ts], params: dict[str, Any] | None = None
) -> Sequence[Row[*_Ts]]:
    """The rows of a statement that loads no ORM entities, through Core: on pages of wide
    rows or batches of thousands, the ORM's result machinery costs more than the query."""
    connection = await session.connection()
    return (await connection.execute(statement, params)).all()


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A statement rendered once for asyncpg: its SQL, and where each $n comes from."""

    sql: str
    names: tuple[str, ...]  # the bound parameters, in $n order
    fixed: dict[str, Any]  # the values written into the statement (its literals)
    types: tuple[Any, ...]  # the result columns' SQLAlchemy types


@functools.lru_cache(maxsize=512)
def _rendered(statement: Select[Any], dialect: Dialect) -> _Rendered | None:
    """None when the driver alone would not take it as SQLAlchemy does: a type that
    converts a value on the way in, or a parameter expanded at execution."""
    compiled = statement.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    if any(b.type._cached_bind_processor(dialect) for b in compiled.binds.values()):
        return None
    fixed = compiled.construct_params(_check=False)
    types = tuple(c[3] for c in compiled._result_columns)
    return _Rendered(compiled.string, tuple(compiled.positiontup or ()), dict(fixed), types)


# By rendered SQL: whether the driver's values are the rows' values as they are. Known
# from the columns' types in the database (a NUMERIC read as a float is converted), so
# asked of the server once, on first use.
_AS_READ: dict[str, bool] = {}


async def _as_read(driver: Any, rendered: _Rendered, dialect: Dialect) -> bool:
    known = _AS_READ.get(rendered.sql)
    if known is None:
        columns = (await driver.prepare(rendered.sql)).get_attributes()
        known = _AS_READ[rendered.sql] = not any(
            t._cached_result_processor(dialect, c.type.oid)
            for t, c in zip(rendered.types, columns, strict=True)
        )
    return known


def _driver_ready(session: AsyncSession, statement: Select[Any]) -> _Rendered | None:
    bind = session.bind
    # Spans and echo come from SQLAlchemy's execution: those keep it.
    if (
        not isinstance(bind, AsyncEngine)
        or bind.dialect.name != "postgresql"
        or bind.echo
        or tracing.enabled()
    ):
        return None
    rendered = _rendered(statement, bind.dialect)
    return None if rendered is None or _AS_READ.get(rendered.sql) is False else rendered


async def _unit_driver(session: AsyncSession) -> Any:
    """The driver connection of a unit that has begun, if its transaction has begun on
    it too (asyncpg begins with SQLAlchemy's first statement): a read there sees what
    the unit wrote, under the locks it holds. None before that first statement."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    return driver if driver is not None and driver.is_in_transaction() else None


async def read_rows(
    session: AsyncSession, statement: Select[Any], params: dict[str, Any]
) -> Sequence[Mapping[Any, Any]]:
    """The rows of a read statement, each a mapping of column name to value.

    On PostgreSQL the statement (rendered once) runs on the driver's connection: in a
    read unit that has not begun, a pooled asyncpg connection of its own; in a unit that
    has begun (a write's transaction), the unit's own, in its transaction. The session,
    Core's execution and its rows cost twice the driver's time on a page of 50 products
    (see docs/performance.md, figure 3) and a third of a 5,000-item batch's lookup
    (figures 6b, 6d). Elsewhere (SQLite, tracing or echo on, a parameter expanded at
    execution, a unit whose transaction has not begun), or if a column's type converts
    what the driver reads, through Core, as `fetch`. For statements built once (cached
    per shape): the SQL rendered is kept by statement.
    """
    rendered = _driver_ready(session, statement)
    if rendered is not None:
        assert isinstance(session.bind, AsyncEngine)
        args = [params[n] if n in params else rendered.fixed[n] for n in rendered.names]
        dialect = session.bind.dialect
        if session.in_transaction():
            driver = await _unit_driver(session)
            if driver is not None and await _as_read(driver, rendered, dialect):
                rows: Sequence[Mapping[Any, Any]] = await driver.fetch(rendered.sql, *args)
                return rows
        else:
            pooled = await session.bind.raw_connection()
            try:
                driver = pooled.driver_connection
                assert driver is not None
                if await _as_read(driver, rendered, dialect):
                    rows = await driver.fetch(rendered.sql, *args)
                    return rows
            finally:
                # Checking in may close a connection beyond the pool's size: driver calls
                # need SQLAlchemy's greenlet.
                await greenlet_spawn(pooled.close)
    return [row._mapping for row in await fetch(session, statement, params)]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer holds the lock; the timeout queues writers.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # Instead of pool_pre_ping, which costs three round trips per checkout on asyncpg
    # (BEGIN, a ping, ROLLBACK): a connection the server closed (restart, terminated
    # backend, idle timeout) is already known closed to asyncpg, and the pool then
    # takes or opens another one. A connection that dies silently still fails its
    # statement and is replaced by the pool's disconnect handling.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("connection closed by the server")


def json_text(value: Any) -> str:
    """The text of a JSON column's value. By orjson: the standard library's encoder cost
    5 µs a product of an import's change set (figure 1), orjson's 0.5."""
    return json_encoding.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        private_sqlite_file(settings)
        engine = create_async_engine(url, echo=settings.sql_echo, json_serializer=json_text)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return _observed(engine)
    engine = create_async_engine(
        url,
        echo=settings.sql_echo,
        json_serializer=json_text,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return _observed(engine)


def _observed(engine: AsyncEngine) -> AsyncEngine:
    # After _drop_closed: a connection it refuses is never counted as in use.
    metrics.watch_pool(engine)
    tracing.instrument_engine(engine)
    return engine


Dispatch = Callable[[list[PendingJob]], Awaitable[None]]
# What a unit of work hands to resolvers; the layers above name it without SQLAlchemy.
DbSession = AsyncSession


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._read_sessions = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )
        # Set by the runtime: enqueues the jobs a transaction deferred, after its commit.
        self.dispatch: Dispatch | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back if it raises.

        Jobs deferred with `pim.jobs.defer` are enqueued after the commit only.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            pending = take_pending(session)
        if pending and self.dispatch is not None:
            await self.dispatch(pending)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A unit of reads only: no BEGIN and COMMIT round trips around them.

        Each statement sees what was committed when it started, as it would inside
        a READ COMMITTED transaction. Never write here: each statement would commit
        on its own.
        """
        session = self._read_sessions()
        try:
            yield session
        finally:
            # A read that went through the driver's own connection (`read_rows`) never
            # began the session: closing it anyway shields a task and waits a turn of the
            # loop for nothing (about a twentieth of a page request's CPU, figure 3).
            if session.in_transaction() or session.sync_session.identity_map:
                await session.close()

    async def dispose(self) -> None:
        await self.engine.dispose()
