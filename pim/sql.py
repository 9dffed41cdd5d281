"""Dialect-aware statement builders shared by the set-based writers."""

import contextlib
import functools
import io
import operator
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import (
    CTE,
    JSON,
    ColumnElement,
    Float,
    Numeric,
    Select,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import ReturnTypeFromArgs
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.sql.type_api import TypeEngine

from pim.db import json_text, on_postgres

T = TypeVar("T")


def upsert(session: AsyncSession, table: Any) -> Any:
    """INSERT with ON CONFLICT support: the PostgreSQL or the SQLite flavour."""
    if on_postgres(session):
        return postgresql.insert(table)
    return sqlite.insert(table)


class greatest(ReturnTypeFromArgs[T]):
    """The largest of its arguments: GREATEST on PostgreSQL, the scalar max() on SQLite.
    SQLite's max() is NULL if any argument is: give it none."""

    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element: greatest[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values` for long lists: one array parameter on PostgreSQL (rendering
    thousands of bound parameters costs more than the query itself), IN elsewhere."""
    if on_postgres(session):
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def unique(values: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(values))


# Below this many rows a plain multi-row statement is as fast as COPY and cheaper to set up.
COPY_THRESHOLD = 50


def _encodable(table: Table, records: list[Any], columns: Sequence[str]) -> list[Any]:
    """COPY tuples with values in the form asyncpg's binary COPY encodes best."""
    converters = _converters(table, tuple(columns))
    if not converters:
        return records
    converted = []
    for record in records:
        values = list(record)
        for i, convert in converters:
            if values[i] is not None:
                values[i] = convert(values[i])
        converted.append(tuple(values))
    return converted


def _exact(value: Any) -> Any:
    # A float into NUMERIC would go through its exact binary expansion (9.6 is
    # 9.5999999999999996447…): measured 3.5 µs a value, against 1 µs from its shortest
    # decimal form, which is also the number the client wrote.
    return Decimal(repr(value)) if isinstance(value, float) else value


@functools.lru_cache(maxsize=256)
def _converters(table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, Any], ...]:
    found = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, JSON):
            found.append((i, json_text))  # JSON as text, which the binary COPY expects
        elif isinstance(kind, Numeric) and not isinstance(kind, Float):
            found.append((i, _exact))
    return tuple(found)


async def copy_upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT … ON CONFLICT DO UPDATE for many rows: COPY into a temporary table, then one
    INSERT … SELECT (PostgreSQL). Several times faster than executemany for big batches.

    Only the COPY goes through the driver directly; the other statements go through the
    session like any other (and show in its statement events). The scratch table goes
    with the transaction.
    """
    columns = list(rows[0])
    scratch = f"scratch_{table.name}_{secrets.token_hex(4)}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    assignments = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
    await session.execute(
        text(f'CREATE TEMP TABLE {scratch} (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP')
    )
    await _copy(session, table, scratch, rows, columns)
    await session.execute(
        text(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM {scratch} '
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments}"
        )
    )


async def _copy(
    session: AsyncSession,
    table: Table,
    target: str,
    rows: Sequence[dict[str, Any]],
    columns: list[str],
) -> None:
    """COPY `rows` into `target` (shaped like `table`) within the session's transaction."""
    pick = operator.itemgetter(*columns)
    await copy_records(session, table, target, [pick(row) for row in rows], columns)


async def copy_records(
    session: AsyncSession, table: Table, target: str, records: list[Any], columns: list[str]
) -> None:
    """COPY `records` (tuples of `columns`' values) into `target`, shaped like `table`,
    within the session's transaction (PostgreSQL)."""
    raw = await _copying(session)
    records = _encodable(table, records, columns)
    async with _copy_errors(target):
        await raw.copy_records_to_table(target, records=records, columns=columns)


async def copy_csv(session: AsyncSession, target: str, data: bytes, columns: list[str]) -> None:
    """COPY CSV text (one line per row of `columns`' values, an unquoted empty value for
    NULL) into `target` within the session's transaction (PostgreSQL): what a columnar
    engine writes at once, with no Python object per value."""
    raw = await _copying(session)
    async with _copy_errors(target):
        # A file object: asyncpg would take plain bytes for a path.
        await raw.copy_to_table(target, source=io.BytesIO(data), columns=columns, format="csv")


async def _copying(session: AsyncSession) -> Any:
    """The session's driver connection, in the session's transaction."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        # The driver opens its transaction with the first statement; a COPY before any
        # would commit on its own, whatever became of the session's transaction.
        await session.execute(text("SELECT 1"))
    return raw


@contextlib.asynccontextmanager
async def _copy_errors(target: str) -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as error:
        # Reported as the session's own statements report it: writers that decide again
        # after a lost race catch this one.
        raise IntegrityError(f"COPY {target}", None, error) from error
    except asyncpg.DataError as error:
        # A value the column cannot store: import_runs writes such rows apart.
        raise DataError(f"COPY {target}", None, error) from error


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Append `rows` in their order: COPY for big batches on PostgreSQL (rows keep their
    order, and so do the defaults they draw from sequences), one statement otherwise."""
    if not rows:
        return
    if on_postgres(session) and len(rows) >= COPY_THRESHOLD:
        await _copy(session, table, table.name, rows, list(rows[0]))
        return
    await session.execute(table.insert(), list(rows))


def unnested(
    table: Table,
    rows: Sequence[dict[str, Any]],
    name: str,
    types: Mapping[str, TypeEngine[Any]] | None = None,
    *,
    unsized: bool = False,
    ordinality: str | None = None,
) -> TableValuedAlias:
    """`rows` as a derived table `name` (PostgreSQL): one array parameter per column,
    unnested side by side. Thousands of rows travel as a handful of parameters of one
    statement: no per-row execution, no scratch table. A column is typed as `table`'s,
    or as `types` says: a column not of `table`, or values that need none of its
    type's conversions (a Python call a value).

    `unsized`: each array is read through a scalar subquery, so the planner does not
    see how many rows there are (it assumes 10). For a join of the rows to a big
    table: seeing 5,000, PostgreSQL's custom plans hash-joined a scan of the whole
    table below about 600,000 rows in it, where 5,000 primary-key probes are a tenth
    of the time (see docs/performance.md, figures 6b and 6d).

    `ordinality`: the name of one more column, each row's position in `rows` (from 1)."""
    columns = list(rows[0])
    types = types or {}
    arrays: list[ColumnElement[Any]] = [
        bindparam(
            None,
            [row[c] for row in rows],
            type_=postgresql.ARRAY(types[c] if c in types else table.c[c].type),
        )
        for c in columns
    ]
    if unsized:
        arrays = [select(array).scalar_subquery() for array in arrays]
    return (
        func.unnest(*arrays).table_valued(*columns, with_ordinality=ordinality).render_derived(name)
    )


def _unnest_ready(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> bool:
    """Whether `rows` go as one statement over unnest(arrays): PostgreSQL, many rows,
    no column that needs COPY."""
    return (
        on_postgres(session)
        and len(rows) >= COPY_THRESHOLD
        and not _converters(table, tuple(rows[0]))
    )


def _unnest_source(
    table: Table,
    rows: Sequence[dict[str, Any]],
    same: Mapping[str, Any],
    types: Mapping[str, TypeEngine[Any]] | None,
    positioned: Mapping[str, Callable[[ColumnElement[int]], ColumnElement[Any]]] | None,
    unsized: bool,
) -> Select[Any]:
    """The rows to write, whole: `rows`' columns, then `same`'s constants (the value of
    a column for every row travels once, not as an array of thousands of copies), then
    the `positioned` columns, computed in SQL from each row's position in `rows` (from
    0): values that follow from it travel as no array. `types` send columns' arrays as
    other types than `table`'s; `unsized`: see `unnested`."""
    positioned = positioned or {}
    given = unnested(
        table, rows, "given", types, unsized=unsized,
        ordinality="position" if positioned else None,
    )  # fmt: skip
    constants = [bindparam(None, v, type_=table.c[c].type).label(c) for c, v in same.items()]
    computed = [value(given.c.position - 1).label(c) for c, value in positioned.items()]
    return select(*(given.c[c] for c in rows[0]), *constants, *computed)


def unnest_write(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
    same: Mapping[str, Any],
    returning: Sequence[str],
    types: Mapping[str, TypeEngine[Any]] | None = None,
    positioned: Mapping[str, Callable[[ColumnElement[int]], ColumnElement[Any]]] | None = None,
) -> CTE | None:
    """What bulk_upsert writes, for rows whose `id` names the record they update if
    it exists (read before): a CTE of the rows written, with the `returning` columns,
    for the caller's statement to use; None where bulk_upsert takes another way than
    one statement over unnest(arrays).

    The records found by their id (a primary-key probe a row) are updated, the others
    inserted, with ON CONFLICT DO UPDATE for a record another writer inserted since
    (a record deleted since the read is inserted again, under its id): an upsert locks
    each row it updates before updating it, one WAL record a row more (5,000 stock
    records: 10,000 records against 5,000). The arrays are unsized (see `unnested`):
    the update joins the rows to the whole table, and so may a statement that uses
    what it wrote (the stamps' update, changes.stamp_written)."""
    if not _unnest_ready(session, table, rows):
        return None
    source = _unnest_source(table, rows, same, types, positioned, unsized=True).cte("source")
    given = source.c
    moved = (
        table.update()
        .where(table.c.id == given.id, *(table.c[c] == given[c] for c in same))
        .values({c: given[c] for c in update})
        .returning(*(table.c[c] for c in unique(["id", *returning])))
        .cte("updated")
    )
    unmoved = ~select(moved.c.id).where(moved.c.id == given.id).exists()
    added = postgresql.insert(table).from_select(list(given.keys()), select(source).where(unmoved))
    added_rows = (
        _updating(added, conflict, update)
        .returning(*(table.c[c] for c in returning))
        .cte("inserted")
    )
    return union_all(
        select(*(moved.c[c] for c in returning)), select(*(added_rows.c[c] for c in returning))
    ).cte("written")


async def bulk_upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
    same: Mapping[str, Any] | None = None,
) -> None:
    """Insert `rows`, updating `update` columns where `conflict` columns already match:
    on PostgreSQL one INSERT … SELECT FROM unnest(arrays) (COPY when a column needs
    its values converted for COPY: JSON, NUMERIC), one multi-row statement otherwise.
    `same` holds the columns whose value is the same for every row (the account): on
    PostgreSQL it travels once, not as an array of thousands of copies."""
    if not rows:
        return
    same = same or {}
    if _unnest_ready(session, table, rows):
        # Against a scratch table filled by COPY: 4 ms less in PostgreSQL for 5,000 rows
        # (no temporary table to create and fill), and one round trip instead of three.
        source = _unnest_source(table, rows, same, None, None, unsized=False)
        statement = postgresql.insert(table).from_select(
            list(source.selected_columns.keys()), source
        )
        await session.execute(_updating(statement, conflict, update))
        return
    whole = [{**row, **same} for row in rows]
    if on_postgres(session) and len(rows) >= COPY_THRESHOLD:
        await copy_upsert(session, table, whole, conflict=conflict, update=update)
        return
    await session.execute(_updating(upsert(session, table), conflict, update), whole)


def _updating(statement: Any, conflict: Sequence[str], update: Sequence[str]) -> Any:
    """`statement` (an INSERT) with ON CONFLICT (`conflict`) DO UPDATE of `update`."""
    return statement.on_conflict_do_update(
        index_elements=list(conflict), set_={c: statement.excluded[c] for c in update}
    )
