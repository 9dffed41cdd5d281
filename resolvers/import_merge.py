"""Import chunks merged by the database (decision 2 of issue 19).

The row writer (product_writes) loads every product a chunk names, decides each row in
Python and sends back every row it writes. Here a chunk is loaded into a staging table
(COPY on PostgreSQL, one executemany on SQLite), and one statement compares it with the
products (`IS DISTINCT FROM` on the columns the file gives): it returns only the rows
that create or change something, with the columns that changed. Unchanged rows cost
their share of the COPY and of that statement, and nothing else: no write, no event, no
change stamp. The chunk reaches the COPY as columns (`Items`): a file read as columns
is COPYed from the CSV text polars writes, and Python objects are made only for the
rows the compare returns. Python then keeps what the row writer's bookkeeping needs
(ids, the times of the writes, the outbox events, exactly as the row writer makes
them), and set-based statements write the products and their stock from the staging
table.

What is rare or needs more than a column compare goes to the row writer, a whole chunk
at a time, before anything is written: dry runs, `is_active` and `category_id` columns,
a JSON field, an EAN repeated within a chunk, and, found by the compare, a product
created again after its deletion or a new product without a name (whose error the row
writer words). Supplier stock (a supplier code with the stock) is merged: written whenever given, as
the row writer writes it.
"""

import datetime as dt
import functools
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import polars as pl
from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import Grouping

from pim.auth import Caller
from pim.clock import MICROSECOND, write_timestamp
from pim.db import fetch, on_postgres
from pim.ids import uuid7s
from pim.sql import copy_csv, copy_records, upsert
from resolvers import catalog, changes, counts, events, keys
from resolvers.change_sets import ProductChange
from resolvers.errors import FieldError
from resolvers.permissions import Operation, allows, require
from resolvers.product_fields import NON_COLUMN_INPUTS, ProductFields
from resolvers.product_writes import (
    FRESH,
    PRODUCT_STOCKS,
    PRODUCTS,
    SUPPLIER_PRODUCTS,
    WRITABLE_COLUMNS,
    BatchResult,
    Checked,
    CheckedItem,
    ItemResult,
    WriteOptions,
    write_checked,
    write_operation,
)

# The fields a chunk may give to be merged: the product's own columns, its brand by
# name and its stock (the supplier's, with a supplier code).
MERGED_FIELDS = frozenset(
    {
        name
        for name in ProductFields.model_fields
        if name in WRITABLE_COLUMNS and name not in NON_COLUMN_INPUTS
    }
    | {"brand_name", "stock"}
)

_TABLES = MetaData()
# Every column a staging row may have: `position` in the chunk's merged items, the
# columns its fields write (brand_id for brand_name, ean_checksum_valid with the EAN)
# and its stock. A chunk is staged in a table of only the columns it fills
# (`_stage_table`): the 70 columns of this one cost 0.5 µs a row of COPY and 0.1–0.4 of
# compare against 18 (the NULLs of the others built into every row and read past).
# No index, not even on `position` (unique by construction): every chunk's COPY would
# build one (measured 0.3 µs a row of the COPY's 3–5, runs in turn), and no statement
# needs it (the compare reads the whole table; the writes join it to import_decided,
# whose key is `position`).
STAGE = Table(
    "import_stage",
    _TABLES,
    Column("position", Integer, nullable=False, autoincrement=False),
    Column("stock", PRODUCT_STOCKS.c.quantity.type),
    *(Column(name, PRODUCTS.c[name].type) for name in WRITABLE_COLUMNS),
)
# What Python decided for the rows that change something: the product's id, the time
# of its change, whether it is inserted, updated or only stamped (stock alone changed),
# and the id of its stock row when its stock is written.
DECIDED = Table(
    "import_decided",
    _TABLES,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("id", PRODUCTS.c.id.type),
    Column("at", PRODUCTS.c.updated_at.type),
    Column("action", String(8)),
    Column("stock_id", PRODUCT_STOCKS.c.id.type),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


_DTYPES = {str: pl.String(), int: pl.Int64(), float: pl.Float64(), bool: pl.Boolean(),
           dt.date: pl.Date()}  # fmt: skip


def _dtype(field: str) -> pl.DataType | None:
    """The polars type of a merged field's values, from the column it fills; None for a
    JSON document, whose chunk goes to the row writer."""
    if field == "brand_name":
        return pl.String()
    try:
        return _DTYPES.get(STAGE.c[field].type.python_type)
    except NotImplementedError:  # SQLAlchemy's JSON type has no Python type to give
        return None


DTYPES = {name: dtype for name in MERGED_FIELDS if (dtype := _dtype(name)) is not None}


@dataclass(frozen=True, slots=True)
class Items:
    """A chunk's items as the merge reads them, a column per field (issue 19, figure 1b:
    a chunk read as columns stays columns down to the staging table's COPY).

    `frame` holds the items that passed their checks, in chunk order: `_index` (the
    item's index among the chunk's written rows, which results are told by),
    `_checksum_valid`, and each field some item gives (null where an item does not).
    `warnings` holds, by index, the EAN and the warnings of the items that have some;
    `rejected` the items refused by their own checks.
    """

    frame: pl.DataFrame
    warnings: dict[int, tuple[str | None, tuple[FieldError, ...]]]
    rejected: list[ItemResult]

    @classmethod
    def of(cls, checked: Sequence[Checked]) -> "Items | None":
        """The items of a chunk checked row by row; None when it goes to the row writer."""
        items = [item for item in checked if isinstance(item, CheckedItem)]
        if any(item.ean is None or item.target_id is not None for item in items):
            return None  # a row without an EAN, or a pinned product
        fields = sorted(set().union(*(item.given for item in items)))
        if not set(fields) <= DTYPES.keys():
            return None
        frame = pl.DataFrame(
            [
                pl.Series("_index", [item.index for item in items], pl.Int64),
                pl.Series("_checksum_valid", [_checksum_valid(item) for item in items], pl.Boolean),
                *(pl.Series(f, [item.given.get(f) for item in items], DTYPES[f]) for f in fields),
            ]
        )
        warned = {item.index: (item.ean, item.warnings) for item in items if item.warnings}
        return cls(frame, warned, [item for item in checked if isinstance(item, ItemResult)])

    def joined(self, clean: pl.DataFrame) -> "Items | None":
        """These items and the rows of `clean`, which passed every check as columns
        (`_index` and the fields' typed values); None when the chunk goes to the row
        writer."""
        given = [c for c in clean.columns if c != "_index" and clean[c].null_count() < clean.height]
        if not set(given) <= DTYPES.keys():
            return None
        clean = clean.select("_index", *(pl.col(f).cast(DTYPES[f]) for f in given))
        clean = clean.with_columns(pl.lit(True).alias("_checksum_valid"))
        frame = pl.concat([clean, self.frame], how="diagonal").sort("_index")
        return Items(frame, self.warnings, self.rejected)

    @property
    def fields(self) -> list[str]:
        return [c for c in self.frame.columns if not c.startswith("_")]

    def distinct(self, field: str) -> set[str]:
        """The texts the items give for `field`."""
        if field not in self.frame.columns:
            return set()
        return {text for text in self.frame[field].drop_nulls().unique().to_list() if text}

    def described(self, positions: list[int], fresh: list[bool]) -> list["Described"]:
        """What the writes need of the items at `positions` (those that create or change
        something): the index and EAN of each and, for those `fresh` (no live product,
        so created), which fields they give, not their values. Read as a mask of 0s and
        1s a row rather than a Python object a value: 1.3 µs a row of 15 fields instead
        of 7 (figure 1); and only for the fresh ones, which alone write what they give:
        an updated row writes what the compare found changed."""
        fields = self.fields
        given = pl.concat_str(
            [pl.col(f).is_not_null().cast(pl.UInt8).cast(pl.String) for f in fields]
        )
        named = pl.col("name").str.len_bytes() > 0 if "name" in fields else pl.lit(False)
        picked = self.frame[positions]
        created = picked.filter(pl.Series(fresh, dtype=pl.Boolean)).select(
            given.alias("_given"), named.fill_null(False).alias("_named")
        )
        names: dict[str, tuple[str, ...]] = {}
        gives = []
        for mask, has_name in created.iter_rows():
            fresh_gives = names.get(mask)
            if fresh_gives is None:
                bits = zip(fields, mask, strict=True)
                fresh_gives = names[mask] = tuple(sorted(f for f, bit in bits if bit == "1"))
            gives.append((fresh_gives, has_name))
        told = iter(gives)
        return [
            Described(index, ean, *(next(told) if new else _KNOWN))
            for index, ean, new in zip(
                picked["_index"].to_list(), picked["ean"].to_list(), fresh, strict=True
            )
        ]


class Described(NamedTuple):
    """An item that creates or changes something: its index among the chunk's items,
    its EAN and, when it has no live product, the names of the fields it gives (sorted)
    and whether it gives a name to create a product with."""

    item_index: int
    ean: str
    gives: tuple[str, ...]
    named: bool


# What `described` tells of an item with a live product: nothing of its fields.
_KNOWN: tuple[tuple[str, ...], bool] = ((), False)


@dataclass(frozen=True, slots=True)
class References:
    """The ids of the brands (by catalog.brand_key) and suppliers (by code) a chunk
    names, as the chunk's own transaction found or created them (create_references)."""

    brands: dict[str, uuid.UUID]
    suppliers: dict[str, uuid.UUID]


async def create_references(
    session: AsyncSession, account_id: uuid.UUID, names: set[str], codes: set[str]
) -> References:
    """The brands and suppliers named, created if missing."""
    brands = await catalog.brand_ids_for(session, account_id, names) if names else {}
    suppliers = await catalog.supplier_ids_for(session, account_id, codes) if codes else {}
    return References(brands, suppliers)


class Mergeable(Protocol):
    """A chunk to write: its checked items, as rows and as the merge reads them."""

    @property
    def checked(self) -> Sequence[Checked]: ...

    def merge_items(self) -> Items | None: ...


@dataclass(slots=True)
class Outcome:
    """What writing a chunk did: the counts, and the results of the items the job's
    logs tell about (errors, warnings, skipped rows; the row writer gives them all)."""

    results: list[ItemResult]
    created: int
    updated: int
    failed: int

    @classmethod
    def of(cls, batch: BatchResult) -> "Outcome":
        return cls(
            batch.results,
            batch.count("created"),
            batch.count("updated"),
            batch.count("error", "not_found"),
        )


async def write_chunk(
    session: AsyncSession,
    caller: Caller,
    chunk: Mergeable,
    options: WriteOptions,
    references: References | None = None,
) -> Outcome:
    """Write an import chunk's checked items: merged by the database when it can be,
    else by the row writer, with the same results. `references`, the chunk's brands and
    suppliers as an earlier transaction left them, spare looking them up again."""
    items = mergeable(caller, chunk, options)
    if items is not None:
        require(caller, write_operation(options.mode))
        await keys.hold_account(session, caller)
        if on_postgres(session):
            try:
                async with session.begin_nested():
                    merged = await _merge(session, caller.account_id, items, options, references)
            except IntegrityError:
                # Another transaction created one of the chunk's new EANs after the
                # compare, or deleted a brand or supplier since `references` were
                # found: the row writer decides again from what is there now.
                merged = None
        else:
            # SQLite: import_runs holds the write lock from the chunk's start, no race,
            # but a brand may have been deleted before it: references are looked up.
            merged = await _merge(session, caller.account_id, items, options, None)
        if merged is not None:
            return merged
    return Outcome.of(await write_checked(session, caller, chunk.checked, options))


def mergeable(caller: Caller, chunk: Mergeable, options: WriteOptions) -> Items | None:
    """The chunk's items to merge, or None when the chunk goes to the row writer."""
    plain_mode = (
        options.mode == "upsert"
        or (options.mode == "create" and options.skip_existing)
        or (options.mode == "update" and options.skip_missing)
    )
    if options.dry_run or options.match_reference or not plain_mode:
        return None
    if options.mode != "update" and not allows(caller, Operation.PRODUCTS_CREATE):
        return None
    items = chunk.merge_items()
    if items is None or (items.frame.height and items.frame["ean"].is_duplicated().any()):
        return None  # an EAN repeated within the chunk
    return items


def _stage_columns(fields: set[str]) -> list[str]:
    """The staging columns the given fields fill, in table order."""
    wanted = (fields - {"brand_name"}) | {"ean_checksum_valid"}
    if "brand_name" in fields:
        wanted.add("brand_id")
    if "supplier_code" in fields:
        wanted.add("supplier_id")
    return [c.name for c in STAGE.columns if c.name in wanted]


async def _merge(
    session: AsyncSession,
    account_id: uuid.UUID,
    items: Items,
    options: WriteOptions,
    references: References | None,
) -> Outcome | None:
    # Warnings are logged whatever becomes of their row; skipped rows join them below.
    told = {
        index: ItemResult(index, "unchanged", ean, warnings=list(warnings))
        for index, (ean, warnings) in items.warnings.items()
    }
    outcome = Outcome(list(items.rejected), 0, 0, len(items.rejected))
    if items.frame.height and not await _staged_and_decided(
        session, account_id, items, options, references, told, outcome
    ):
        return None
    outcome.results.extend(told.values())
    outcome.results.sort(key=lambda result: result.index)
    return outcome


async def _staged_and_decided(
    session: AsyncSession,
    account_id: uuid.UUID,
    items: Items,
    options: WriteOptions,
    references: References | None,
    told: dict[int, ItemResult],
    outcome: Outcome,
) -> bool:
    """Stage, compare and write the items; False (with nothing written) when the chunk
    goes to the row writer."""
    columns = _stage_columns(set(items.fields))
    ids = await _reference_ids(session, account_id, items, references)
    numbered = on_postgres(session)
    stage = _stage_table(tuple(columns), numbered)
    rows, brand_ids = _staged(items, columns, ids, numbered)
    await _create(session, stage)
    await _stage(session, stage, rows)
    staging = _Staging.of(stage, brand_ids)
    found = await fetch(session, _compare(account_id, staging, options))
    if not found:
        return True
    writes = _Writes(account_id, staging, await write_timestamp(session))
    fresh = [row[1] is None or bool(row[2]) for row in found]
    described = items.described([row[0] for row in found], fresh)
    for (position, product_id, deleted, reference, stock_changed, *flags), (
        index,
        ean,
        gives,
        named,
    ) in zip(found, described, strict=True):
        alive = product_id is not None and not deleted
        if (options.mode == "create" and alive) or (options.mode == "update" and not alive):
            skipped = told.setdefault(index, ItemResult(index, "skipped", ean))
            skipped.status = "skipped"
            continue
        if not alive and (deleted or not named):
            return False  # created again after its deletion, or nameless: the row writer's case
        writes.add(position, ean, gives, product_id, reference, bool(stock_changed), flags)
    if writes.decided:
        await writes.write(session)
        outcome.created = writes.created
        outcome.updated = len(writes.decided) - writes.created
    return True


async def _reference_ids(
    session: AsyncSession, account_id: uuid.UUID, items: Items, known: References | None
) -> dict[str, dict[str, uuid.UUID | None]]:
    """The brand id of each brand name and the supplier id of each supplier code the
    chunk gives (created if missing), by the staging column they fill: from `known`
    when it names them all (a lookup cost a tenth of the writer's CPU a chunk)."""
    names = items.distinct("brand_name")
    codes = items.distinct("supplier_code")
    if known is None or not (
        {catalog.brand_key(name) for name in names} <= known.brands.keys()
        and codes <= known.suppliers.keys()
    ):
        known = await create_references(session, account_id, names, codes)
    return {
        "brand_id": {name: known.brands.get(catalog.brand_key(name)) for name in names},
        "supplier_id": {code: known.suppliers.get(code) for code in codes},
    }


# Staging columns holding the id of what a field names.
_REFERENCES = {"brand_id": "brand_name", "supplier_id": "supplier_code"}


def _staged(
    items: Items,
    columns: list[str],
    references: dict[str, dict[str, uuid.UUID | None]],
    numbered: bool,
) -> tuple[pl.DataFrame, list[uuid.UUID] | None]:
    """The staging rows, `position` being the row's in the items' frame; `numbered`, a
    brand as its number (from 1) in the brand ids returned, not as its id's text (a
    36-character text a row to write, send and parse: 0.5 µs a row of the COPY)."""
    values = [pl.int_range(pl.len(), dtype=pl.Int64).alias("position")]
    brand_ids: list[uuid.UUID] | None = [] if numbered else None
    for name in columns:
        if name == "brand_id" and numbered:
            found = [(key, id_) for key, id_ in references[name].items() if id_ is not None]
            brand_ids = [id_ for _, id_ in found]
            numbers = {key: n for n, (key, _) in enumerate(found, start=1)}
            number = pl.col("brand_name").replace_strict(
                numbers, default=None, return_dtype=pl.Int32
            )
            values.append((number if numbers else pl.lit(None, pl.Int32)).alias(name))
        elif name in _REFERENCES:
            ids = {key: str(id_) for key, id_ in references[name].items() if id_ is not None}
            named = pl.col(_REFERENCES[name])
            value = named.replace_strict(ids, default=None, return_dtype=pl.String)
            values.append((value if ids else pl.lit(None, pl.String)).alias(name))
        elif name == "ean_checksum_valid":
            values.append(pl.col("_checksum_valid").alias(name))
        else:
            values.append(pl.col(name))
    return items.frame.select(values), brand_ids


class _Staging(NamedTuple):
    """A chunk's staging table, and what each of its product columns writes: the
    column, but a numbered brand's id from the chunk's brand ids (`_staged`)."""

    table: Table
    values: dict[str, ColumnElement[Any]]

    @classmethod
    def of(cls, table: Table, brand_ids: list[uuid.UUID] | None) -> "_Staging":
        values: dict[str, ColumnElement[Any]] = {c: table.c[c] for c in _compared(table.c.keys())}
        if brand_ids is not None and "brand_id" in values:
            ids = bindparam("brand_ids", brand_ids, type_=ARRAY(PRODUCTS.c.brand_id.type))
            values["brand_id"] = Grouping(ids)[table.c.brand_id]  # ($n::UUID[])[number]
        return cls(table, values)


def _checksum_valid(item: CheckedItem) -> bool:
    return not any(w.code == "ean_checksum" for w in item.warnings)


def _compare(account_id: uuid.UUID, staging: _Staging, options: WriteOptions) -> Any:
    """The staged rows that create or change something (all of them in create-only
    mode, where existing products are skipped): position, the product's id, whether it
    is deleted, its reference after the write, whether its stock changes, then for each
    compared column (`_compared`) whether it changes."""
    stage = staging.table
    staged, product, stock = stage.c, PRODUCTS.c, PRODUCT_STOCKS.c
    columns = stage.c.keys()
    flags = [
        and_(staged[c].is_not(None), value.is_distinct_from(product[c]))
        for c, value in staging.values.items()
    ]
    stock_changed: ColumnElement[bool] = false()
    source = stage.outerjoin(
        PRODUCTS, and_(product.account_id == account_id, product.ean == staged.ean)
    )
    if "stock" in columns:
        stock_changed = and_(
            staged.stock.is_not(None), staged.stock.is_distinct_from(stock.quantity)
        )
        if "supplier_code" in columns:
            # A supplier's stock is written whenever given, as the row writer does.
            stock_changed = or_(
                and_(staged.supplier_code.is_not(None), staged.stock.is_not(None)),
                and_(staged.supplier_code.is_(None), stock_changed),
            )
        source = source.outerjoin(
            PRODUCT_STOCKS, and_(stock.account_id == account_id, stock.product_id == product.id)
        )
    reference: ColumnElement[Any] = product.reference
    if "reference" in columns:
        reference = func.coalesce(staged.reference, product.reference)
    wanted: ColumnElement[bool] = true()
    if options.mode != "create":
        wanted = or_(product.id.is_(None), product.deleted_at.is_not(None), stock_changed, *flags)
    return (
        select(
            staged.position,
            product.id,
            product.deleted_at.is_not(None),
            reference,
            stock_changed,
            *flags,
        )
        .select_from(source)
        .where(wanted)
        .order_by(staged.position)
    )


def _compared(columns: list[str]) -> list[str]:
    """The staged columns that are product columns."""
    return [c for c in columns if c in PRODUCTS.c]


# Ids drawn at once by a chunk's writes: at most this many go unused.
_ID_BLOCK = 1_000


class _Writes:
    """The writes of the rows that create or change something, in chunk order, as the
    row writer makes them: each change at its own microsecond after `stamp`, a
    product.created or product.updated change per product (one change set for the chunk
    from events.CHANGE_SET_MIN products on), a narrow stamp (and no row write, no
    product event) for a product whose stock alone changed, and one stock.updated event
    for the chunk's stock writes."""

    def __init__(self, account_id: uuid.UUID, staging: _Staging, stamp: datetime) -> None:
        self.account_id = account_id
        self.stage = staging.table
        self.values = staging.values
        self.columns = self.stage.c.keys()
        self.compared = list(self.values)
        self.stamp = stamp
        self.decided: list[tuple[Any, ...]] = []
        self.created = 0
        self.updated_columns: set[str] = set()
        self.stamped: dict[uuid.UUID, datetime] = {}
        self.changes: list[ProductChange] = []
        self.stock_eans: list[str | None] = []
        # An updated row's changed fields by its compare flags and stock flag: a few
        # distinct lists a chunk, shared by its changes (which never alter them).
        self._changed: dict[tuple[bool, ...], tuple[list[str], str]] = {}
        self._ids: list[uuid.UUID] = []

    def add(
        self,
        position: int,
        ean: str,
        gives: tuple[str, ...],
        product_id: uuid.UUID | None,
        reference: str | None,
        stock_changed: bool,
        flags: Sequence[bool],
    ) -> None:
        when = self.stamp + len(self.decided) * MICROSECOND
        if product_id is None:
            product_id, action = self._new_id(), "insert"
            changed = list(gives)
            stock_written = "stock" in gives
            self.created += 1
        else:
            key = (*flags, stock_changed)
            known = self._changed.get(key)
            if known is None:
                known = self._changed[key] = self._changed_fields(flags, stock_changed)
            changed, action = known
            if action == "stamp":
                self.stamped[product_id] = when  # told by the stock.updated event
            stock_written = stock_changed
        if stock_written:
            self.stock_eans.append(ean)
        stock_id = self._new_id() if stock_written else None
        self.decided.append((position, product_id, when, action, stock_id))
        if action != "stamp":
            self.changes.append(
                ProductChange(product_id, ean, reference, changed, action == "insert", when)
            )

    def _changed_fields(self, flags: Sequence[bool], stock_changed: bool) -> tuple[list[str], str]:
        """An existing product's changed fields and its write: updated, or only stamped
        when its stock alone changed."""
        changed = [c for c, flag in zip(self.compared, flags, strict=True) if flag]
        self.updated_columns.update(changed)
        return [*changed, "stock"] if stock_changed else changed, "update" if changed else "stamp"

    def _new_id(self) -> uuid.UUID:
        """The next of ids drawn a block at a time (a chunk's thousands of new rows and
        stock rows), in increasing order."""
        if not self._ids:
            self._ids = uuid7s(_ID_BLOCK)
            self._ids.reverse()
        return self._ids.pop()

    async def write(self, session: AsyncSession) -> None:
        await _fill(session, DECIDED, [c.name for c in DECIDED.columns], self.decided)
        if self.created:
            await session.execute(self._insert())
        if self.updated_columns:
            await session.execute(self._update())
        await changes.stamp(session, self.account_id, self.stamped)
        told = events.product_events(self.account_id, self.changes)
        if self.stock_eans:
            await session.execute(self._stock(session))
            if "supplier_code" in self.columns:
                await session.execute(self._supplier_stock(session))
            payload = events.batch_payload(self.stock_eans)
            told.append(events.event_row(self.account_id, "stock.updated", payload, self.stamp))
        await events.record(session, told)
        await counts.add_live_products(session, self.account_id, self.created)

    def _insert(self) -> Any:
        """New products: the staged columns, the defaults of a product never written,
        the barcode from the EAN when the file gives none."""
        staged, decided = self.stage.c, DECIDED.c
        values: dict[str, Any] = {
            "id": decided.id,
            "account_id": literal(self.account_id, PRODUCTS.c.account_id.type),
            "created_at": decided.at,
            "updated_at": decided.at,
        }
        values |= self.values
        for name, fresh in FRESH.items():
            if fresh is not None:
                default = literal(fresh, PRODUCTS.c[name].type)
                values[name] = func.coalesce(values[name], default) if name in values else default
        values["barcode"] = func.coalesce(values.get("barcode", staged.ean), staged.ean)
        rows = select(*values.values()).where(
            decided.position == staged.position, decided.action == "insert"
        )
        return PRODUCTS.insert().from_select(list(values), rows)

    def _update(self) -> Any:
        """Changed products: the columns changed in any row, each row keeping its own
        value where the file gives none."""
        staged, decided, product = self.stage.c, DECIDED.c, PRODUCTS.c
        written = [c for c in self.compared if c in self.updated_columns]
        return (
            update(PRODUCTS)
            .where(
                product.account_id == self.account_id,
                product.id == decided.id,
                decided.position == staged.position,
                decided.action == "update",
            )
            .values({c: func.coalesce(self.values[c], product[c]) for c in written})
            .values(updated_at=decided.at)
        )

    def _stock(self, session: AsyncSession) -> Any:
        """Generic stock rows (the rows without a supplier code)."""
        staged = self.stage.c
        generic = staged.supplier_code.is_(None) if "supplier_code" in self.columns else true()
        return self._stock_upsert(
            session, PRODUCT_STOCKS, {"quantity": staged.stock}, ["account_id", "product_id"],
            generic,
        )  # fmt: skip

    def _supplier_stock(self, session: AsyncSession) -> Any:
        """The supplier's stock rows (the rows with a supplier code)."""
        staged = self.stage.c
        return self._stock_upsert(
            session, SUPPLIER_PRODUCTS, {"supplier_id": staged.supplier_id, "stock": staged.stock},
            ["account_id", "product_id", "supplier_id"], staged.supplier_code.is_not(None),
        )  # fmt: skip

    def _stock_upsert(
        self,
        session: AsyncSession,
        table: Table,
        values: dict[str, Any],
        conflict: list[str],
        which: ColumnElement[bool],
    ) -> Any:
        staged, decided = self.stage.c, DECIDED.c
        columns = {
            "id": decided.stock_id,
            "account_id": literal(self.account_id, table.c.account_id.type),
            "product_id": decided.id,
            **values,
            "updated_at": literal(self.stamp, table.c.updated_at.type),
        }
        rows = select(*columns.values()).where(
            decided.position == staged.position, decided.stock_id.is_not(None), which
        )
        statement = upsert(session, table).from_select(list(columns), rows)
        written = [name for name in values if name not in conflict] + ["updated_at"]
        return statement.on_conflict_do_update(
            index_elements=conflict, set_={name: statement.excluded[name] for name in written}
        )


@functools.lru_cache(maxsize=64)
def _stage_table(columns: tuple[str, ...], numbered: bool) -> Table:
    """The staging table of a set of STAGE's columns (`position` first, then the others
    in STAGE's order), named after the set: each connection creates the ones it uses
    (`_create`). `numbered`: brand_id holds a brand's number (see `_staged`)."""
    names = ("position", *columns)
    mask = sum(1 << i for i, column in enumerate(STAGE.columns) if column.name in names)
    return Table(
        f"{_STAGE_PREFIX}{mask:x}",
        MetaData(),
        *(Column(c.name, Integer() if numbered and c.name == "brand_id" else c.type,
                 nullable=c.nullable, autoincrement=False)
          for c in STAGE.columns if c.name in names),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )  # fmt: skip


_STAGE_PREFIX = "import_stage_"
# Staging tables a connection keeps (a file's chunks fill one set of columns, or two
# when a column is empty in some of them): PostgreSQL empties every ON COMMIT DELETE
# ROWS table of the connection at each commit that touched one, 0.3 ms a table with a
# TOAST table (measured), so a connection that met more sets drops the others.
_STAGE_TABLES_KEPT = 4
# Where a connection remembers the staging tables it created (its driver connection's
# `info`, which lives as long as the connection).
_STAGE_TABLES_MADE = "import_stage_tables"


async def _create(session: AsyncSession, stage: Table) -> None:
    """Empty staging tables. Temporary, so each connection has its own, and kept with
    the connection: creating and dropping their catalog rows cost 10–40 ms a chunk
    (PostgreSQL empties them at each commit, by truncation)."""
    connection = await session.connection()
    made: set[str] = connection.info.setdefault(_STAGE_TABLES_MADE, set())
    if stage.name not in made:
        await _drop_stage_tables(connection, made, keep=stage.name)
        made.add(stage.name)
    for table, create in zip((stage, DECIDED), _creates(connection.dialect, stage), strict=True):
        # IF NOT EXISTS: a transaction rolled back undoes a CREATE that `made` remembers.
        await connection.exec_driver_sql(create)
        # A chunk written in halves merges twice in one transaction; SQLite keeps rows.
        await session.execute(table.delete())


async def _drop_stage_tables(connection: AsyncConnection, made: set[str], keep: str) -> None:
    """Drop the connection's staging tables but `keep` once it has _STAGE_TABLES_KEPT
    (the catalog says which exist: a rollback may have undone a CREATE or a DROP)."""
    pattern = _STAGE_PREFIX.replace("_", "\\_") + "%"
    listed = _TEMP_TABLES[connection.dialect.name]
    names = (await connection.execute(listed, {"pattern": pattern})).scalars().all()
    if len(names) < _STAGE_TABLES_KEPT:
        return
    quote = connection.dialect.identifier_preparer.quote
    for name in names:
        if name != keep:
            await connection.exec_driver_sql(f"DROP TABLE {quote(name)}")
    made.clear()


_TEMP_TABLES = {
    "postgresql": text(
        "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema()"
        " AND relkind = 'r' AND relname LIKE :pattern ESCAPE '\\'"
    ),
    "sqlite": text(
        "SELECT name FROM sqlite_temp_master WHERE type = 'table'"
        " AND name LIKE :pattern ESCAPE '\\'"
    ),
}


@functools.lru_cache(maxsize=64)
def _creates(dialect: Dialect, stage: Table) -> list[str]:
    """The staging tables' CREATE … IF NOT EXISTS, compiled once for each kind of
    database: SQLAlchemy does not cache DDL, and compiling 80 columns cost 1.4 ms of the
    writer's CPU a chunk."""
    tables = (stage, DECIDED)
    return [str(CreateTable(t, if_not_exists=True).compile(dialect=dialect)) for t in tables]


async def _fill(
    session: AsyncSession, table: Table, columns: list[str], records: list[tuple[Any, ...]]
) -> None:
    if on_postgres(session):
        await copy_records(session, table, table.name, records, columns)
    else:
        await session.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in records])


async def _stage(session: AsyncSession, stage: Table, staged: pl.DataFrame) -> None:
    """Load the staging rows: on PostgreSQL as the CSV text polars writes, COPYed (no
    Python object per value); on SQLite, which has no COPY, as one executemany."""
    if on_postgres(session):
        # Every text quoted, so an unquoted empty value is NULL and nothing else. Written
        # as bytes: a str would be decoded from polars' UTF-8, then encoded back.
        data = io.BytesIO()
        staged.write_csv(data, include_header=False, quote_style="non_numeric")
        await copy_csv(session, stage.name, data.getvalue(), staged.columns)
        return
    ids = [c for c in _REFERENCES if c in staged.columns]
    rows = staged.to_dicts()
    for row in rows:
        for name in ids:
            if row[name] is not None:
                row[name] = uuid.UUID(row[name])
    await session.execute(stage.insert(), rows)
