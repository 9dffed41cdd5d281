"""Import chunks merged by the database (decision 2 of issue 19).

The row writer (product_writes) loads every product a chunk names, decides each row in
Python and sends back every row it writes. Here a chunk is loaded into a staging table
(COPY on PostgreSQL, one executemany on SQLite), and one statement compares it with the
products (`IS DISTINCT FROM` on the columns the file gives): it returns only the rows
that create or change something, with the columns that changed. Unchanged rows cost
their share of the COPY and of that statement, and nothing else: no write, no event, no
change stamp. Python then keeps what the row writer's bookkeeping needs (ids, the
times of the writes, the outbox events, exactly as the row writer makes them), and
set-based statements write the products and their stock from the staging table.

What is rare or needs more than a column compare goes to the row writer, a whole chunk
at a time, before anything is written: dry runs, `is_active` and `category_id` columns,
an EAN repeated within a chunk, and, found by the compare, a product created again
after its deletion or a new product without a name (whose error the row writer words).
Supplier stock (a supplier code with the stock) is merged: written whenever given, as
the row writer writes it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from pim.auth import Caller
from pim.clock import MICROSECOND, write_timestamp
from pim.db import fetch, on_postgres
from pim.ids import uuid7
from pim.sql import copy_records, upsert
from resolvers import catalog, changes, counts, events, keys
from resolvers.change_sets import ProductChange
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
# One row per merged item: `position` in the chunk's merged items, the columns its
# fields write (brand_id for brand_name, ean_checksum_valid with the EAN) and its stock.
STAGE = Table(
    "import_stage",
    _TABLES,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("stock", PRODUCT_STOCKS.c.quantity.type),
    *(Column(name, PRODUCTS.c[name].type) for name in WRITABLE_COLUMNS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
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
    session: AsyncSession, caller: Caller, checked: Sequence[Checked], options: WriteOptions
) -> Outcome:
    """Write an import chunk's checked items: merged by the database when it can be,
    else by the row writer, with the same results."""
    items = mergeable(caller, checked, options)
    if items is not None:
        require(caller, write_operation(options.mode))
        await keys.hold_account(session, caller)
        if on_postgres(session):
            try:
                async with session.begin_nested():
                    merged = await _merge(session, caller.account_id, checked, items, options)
            except IntegrityError:
                # Another transaction created one of the chunk's new EANs after the
                # compare: the row writer decides again from what is there now.
                merged = None
        else:
            # SQLite: import_runs holds the write lock from the chunk's start, no race.
            merged = await _merge(session, caller.account_id, checked, items, options)
        if merged is not None:
            return merged
    return Outcome.of(await write_checked(session, caller, checked, options))


def mergeable(
    caller: Caller, checked: Sequence[Checked], options: WriteOptions
) -> list[CheckedItem] | None:
    """The chunk's items to merge (those that passed their checks), or None when the
    chunk goes to the row writer."""
    plain_mode = (
        options.mode == "upsert"
        or (options.mode == "create" and options.skip_existing)
        or (options.mode == "update" and options.skip_missing)
    )
    if options.dry_run or options.match_reference or not plain_mode:
        return None
    if options.mode != "update" and not allows(caller, Operation.PRODUCTS_CREATE):
        return None
    items = [item for item in checked if isinstance(item, CheckedItem)]
    eans = {item.ean for item in items}
    if None in eans or len(eans) != len(items):
        return None  # a row without an EAN, or an EAN repeated within the chunk
    if any(item.target_id is not None for item in items):
        return None
    if not set().union(*(item.given for item in items)) <= MERGED_FIELDS:
        return None
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
    checked: Sequence[Checked],
    items: list[CheckedItem],
    options: WriteOptions,
) -> Outcome | None:
    rejected = [item for item in checked if isinstance(item, ItemResult)]
    # Warnings are logged whatever becomes of their row; skipped rows join them below.
    told = {
        position: ItemResult(item.index, "unchanged", item.ean, warnings=list(item.warnings))
        for position, item in enumerate(items)
        if item.warnings
    }
    outcome = Outcome(rejected, 0, 0, len(rejected))
    if items and not await _staged_and_decided(session, account_id, items, options, told, outcome):
        return None
    outcome.results.extend(told.values())
    outcome.results.sort(key=lambda result: result.index)
    return outcome


async def _staged_and_decided(
    session: AsyncSession,
    account_id: uuid.UUID,
    items: list[CheckedItem],
    options: WriteOptions,
    told: dict[int, ItemResult],
    outcome: Outcome,
) -> bool:
    """Stage, compare and write the items; False (with nothing written) when the chunk
    goes to the row writer."""
    columns = _stage_columns(set().union(*(item.given for item in items)))
    references = await _references(session, account_id, items)
    await _create(session)
    await _fill(session, STAGE, ["position", *columns], _staged(items, columns, references))
    found = await fetch(session, _compare(account_id, columns, options))
    writes = _Writes(account_id, columns, await write_timestamp(session)) if found else None
    for position, product_id, deleted, reference, stock_changed, *flags in found:
        item = items[position]
        alive = product_id is not None and not deleted
        if (options.mode == "create" and alive) or (options.mode == "update" and not alive):
            skipped = told.setdefault(position, ItemResult(item.index, "skipped", item.ean))
            skipped.status = "skipped"
            continue
        if not alive and (deleted or not item.given.get("name")):
            return False  # created again after its deletion, or nameless: the row writer's case
        assert writes is not None
        writes.add(position, item, product_id, reference, bool(stock_changed), flags)
    if writes is not None and writes.decided:
        await writes.write(session)
        outcome.created = writes.created
        outcome.updated = len(writes.decided) - writes.created
    return True


async def _references(
    session: AsyncSession, account_id: uuid.UUID, items: list[CheckedItem]
) -> dict[str, dict[str, uuid.UUID | None]]:
    """The brand id of each brand name and the supplier id of each supplier code the
    chunk gives (created if missing), by the staging column they fill."""
    names = {name for item in items if (name := item.given.get("brand_name"))}
    codes = {code for item in items if (code := item.given.get("supplier_code"))}
    brands = await catalog.brand_ids_for(session, account_id, names) if names else {}
    suppliers = await catalog.supplier_ids_for(session, account_id, codes) if codes else {}
    return {
        "brand_id": {name: brands.get(catalog.brand_key(name)) for name in names},
        "supplier_id": {code: suppliers.get(code) for code in codes},
    }


# Staging columns holding the id of what a field names.
_REFERENCES = {"brand_id": "brand_name", "supplier_id": "supplier_code"}


def _staged(
    items: list[CheckedItem],
    columns: list[str],
    references: dict[str, dict[str, uuid.UUID | None]],
) -> list[tuple[Any, ...]]:
    """The staging rows, built a column at a time."""
    givens = [item.given for item in items]
    values: list[list[Any]] = [list(range(len(items)))]
    for name in columns:
        if name in _REFERENCES:
            ids, field = references[name], _REFERENCES[name]
            values.append([ids.get(g.get(field, "")) for g in givens])
        elif name == "ean_checksum_valid":
            values.append([_checksum_valid(item) for item in items])
        else:
            values.append([g.get(name) for g in givens])
    return list(zip(*values, strict=True))


def _checksum_valid(item: CheckedItem) -> bool:
    return not any(w.code == "ean_checksum" for w in item.warnings)


def _compare(account_id: uuid.UUID, columns: list[str], options: WriteOptions) -> Any:
    """The staged rows that create or change something (all of them in create-only
    mode, where existing products are skipped): position, the product's id, whether it
    is deleted, its reference after the write, whether its stock changes, then for each
    compared column (`_compared`) whether it changes."""
    staged, product, stock = STAGE.c, PRODUCTS.c, PRODUCT_STOCKS.c
    flags = [
        and_(staged[c].is_not(None), staged[c].is_distinct_from(product[c]))
        for c in _compared(columns)
    ]
    stock_changed: ColumnElement[bool] = false()
    source = STAGE.outerjoin(
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


class _Writes:
    """The writes of the rows that create or change something, in chunk order, as the
    row writer makes them: each change at its own microsecond after `stamp`, a
    product.created or product.updated change per product (one change set for the chunk
    from events.CHANGE_SET_MIN products on), a narrow stamp (and no row write, no
    product event) for a product whose stock alone changed, and one stock.updated event
    for the chunk's stock writes."""

    def __init__(self, account_id: uuid.UUID, columns: list[str], stamp: datetime) -> None:
        self.account_id = account_id
        self.columns = columns
        self.compared = _compared(columns)
        self.stamp = stamp
        self.decided: list[tuple[Any, ...]] = []
        self.created = 0
        self.updated_columns: set[str] = set()
        self.stamped: dict[uuid.UUID, datetime] = {}
        self.changes: list[ProductChange] = []
        self.stock_eans: list[str | None] = []

    def add(
        self,
        position: int,
        item: CheckedItem,
        product_id: uuid.UUID | None,
        reference: str | None,
        stock_changed: bool,
        flags: Sequence[bool],
    ) -> None:
        when = self.stamp + len(self.decided) * MICROSECOND
        if product_id is None:
            product_id, action = uuid7(), "insert"
            changed = sorted(item.given)
            stock_written = "stock" in item.given
            self.created += 1
        else:
            changed = [c for c, flag in zip(self.compared, flags, strict=True) if flag]
            self.updated_columns.update(changed)
            action = "update" if changed else "stamp"
            if not changed:
                self.stamped[product_id] = when  # told by the stock.updated event
            stock_written = stock_changed
            changed += ["stock"] if stock_changed else []
        if stock_written:
            self.stock_eans.append(item.ean)
        stock_id = uuid7() if stock_written else None
        self.decided.append((position, product_id, when, action, stock_id))
        if action != "stamp":
            self.changes.append(ProductChange(id=product_id, ean=item.ean, reference=reference,
                                              changed=changed, created=action == "insert",
                                              at=when))  # fmt: skip

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
        staged, decided = STAGE.c, DECIDED.c
        values: dict[str, Any] = {
            "id": decided.id,
            "account_id": literal(self.account_id, PRODUCTS.c.account_id.type),
            "created_at": decided.at,
            "updated_at": decided.at,
        }
        values |= {c: staged[c] for c in self.compared}
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
        staged, decided, product = STAGE.c, DECIDED.c, PRODUCTS.c
        written = [c for c in self.compared if c in self.updated_columns]
        return (
            update(PRODUCTS)
            .where(
                product.account_id == self.account_id,
                product.id == decided.id,
                decided.position == staged.position,
                decided.action == "update",
            )
            .values({c: func.coalesce(staged[c], product[c]) for c in written})
            .values(updated_at=decided.at)
        )

    def _stock(self, session: AsyncSession) -> Any:
        """Generic stock rows (the rows without a supplier code)."""
        staged = STAGE.c
        generic = staged.supplier_code.is_(None) if "supplier_code" in self.columns else true()
        return self._stock_upsert(
            session, PRODUCT_STOCKS, {"quantity": staged.stock}, ["account_id", "product_id"],
            generic,
        )  # fmt: skip

    def _supplier_stock(self, session: AsyncSession) -> Any:
        """The supplier's stock rows (the rows with a supplier code)."""
        staged = STAGE.c
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
        staged, decided = STAGE.c, DECIDED.c
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


async def _create(session: AsyncSession) -> None:
    """Empty staging tables. Temporary, so each connection has its own, and kept with
    the connection: creating and dropping 80 columns' catalog rows cost 40 ms a chunk
    (PostgreSQL empties them at each commit, by truncation)."""
    for table in (STAGE, DECIDED):
        await session.execute(CreateTable(table, if_not_exists=True))
        # A chunk written in halves merges twice in one transaction; SQLite keeps rows.
        await session.execute(table.delete())


async def _fill(
    session: AsyncSession, table: Table, columns: list[str], records: list[tuple[Any, ...]]
) -> None:
    if on_postgres(session):
        await copy_records(session, table, table.name, records, columns)
    else:
        await session.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in records])
