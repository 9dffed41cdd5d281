"""What the per-EAN batch updates (stock, prices) share: item validation, the size
limit, one lookup of the batch's products, per-item results, and the set-based
stamp of the products they change."""

import functools
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Numeric,
    Select,
    Table,
    bindparam,
    cast,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product
from pim.auth import Caller
from pim.clock import MICROSECOND
from pim.db import on_postgres, read_rows
from pim.sql import unique, unnested
from resolvers import changes, keys
from resolvers.bounds import nul_errors
from resolvers.ean import EAN_LENGTHS, FORMAT_MESSAGE, is_well_formed
from resolvers.errors import FieldError, ValidationFailed
from resolvers.permissions import Operation, require
from resolvers.validation import parse

PRODUCTS: Table = Product.__table__  # type: ignore[assignment]
MAX_ITEMS = 5000
ItemStatus = Literal["ok", "not_found", "error"]
# A batch item's fields by name, as its model gives them.
Item = dict[str, Any]


@dataclass(slots=True)
class EanItemResult:
    """One item of a per-EAN batch, in input order.

    `ok` means the value now is what the client sent; `changed` says whether it
    differed before (an unchanged item writes nothing and emits nothing).
    """

    index: int
    ean: str | None
    status: ItemStatus = "ok"
    changed: bool = False
    product_id: uuid.UUID | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def updated(self) -> bool:
        return self.status == "ok"


@dataclass(slots=True)
class EanBatchResult:
    results: list[EanItemResult]

    def count(self, status: ItemStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def changed(self) -> int:
        return sum(1 for r in self.results if r.changed)


# update_stock, update_prices: (session, caller, *, items) -> EanBatchResult
BatchUpdate = Callable[..., Awaitable[EanBatchResult]]
# The batch's products (id, ean, account_id) -> a table to outer-join to them, on
# which condition, and the columns read from it.
Joined = Callable[
    [FromClause], tuple[FromClause, ColumnElement[bool], Sequence[ColumnElement[Any]]]
]


@dataclass(frozen=True, slots=True)
class Along:
    """What a batch's lookup reads with each product: product columns by name, and the
    rows `join` outer-joins to it (the rows the batch writes: one statement, not two).
    Module constants: the lookup's statement is built once per Along."""

    columns: tuple[str, ...] = ()
    join: Joined | None = None


@dataclass(slots=True)
class Valid:
    """An item that passed validation (its fields by name), with its result still to be
    decided."""

    result: EanItemResult
    item: Item

    @property
    def product_id(self) -> uuid.UUID:
        """Known once load_products has found the item's product."""
        assert self.result.product_id is not None
        return self.result.product_id


@dataclass(slots=True)
class Prepared:
    """A validated batch: every item's result, the items whose product exists, and
    those products' current values (what prepare was asked to read along), by id."""

    results: list[EanItemResult]
    found: list[Valid]
    current: dict[uuid.UUID, Mapping[str, Any]]


async def prepare(
    session: AsyncSession,
    caller: Caller,
    model: type[BaseModel],
    items: Sequence[Any],
    *,
    max_items: int,
    key: Callable[[Item], Hashable],
    check: Callable[[Item], FieldError | None] = lambda _item: None,
    plain: TypeAdapter[list[Any]] | None = None,
    along: Along = Along(),
) -> Prepared:
    """Permission, size limit, per-item validation (validate_items) and one lookup of
    the products, with what `along` names."""
    require(caller, Operation.PRODUCTS_UPDATE)
    check_size(items, max_items)
    await keys.hold_account(session, caller)
    results, valid = validate_items(model, items, key=key, check=check, plain=plain)
    found, current = await load_products(session, caller.account_id, valid, along)
    return Prepared(results=results, found=found, current=current)


def check_size(items: Sequence[Any], max_items: int) -> None:
    if len(items) > max_items:
        raise ValidationFailed.of(
            [FieldError("", f"{len(items)} éléments : au plus {max_items} par appel", "too_many")]
        )


def validate_items(
    model: type[BaseModel],
    items: Sequence[Any],
    *,
    key: Callable[[Item], Hashable],
    check: Callable[[Item], FieldError | None] = lambda _item: None,
    plain: TypeAdapter[list[Any]] | None = None,
) -> tuple[list[EanItemResult], list[Valid]]:
    """Every item on its own; a key seen twice in one batch fails the later items.

    Each item's fields come as a dict, as `model` gives them (its fields by name).
    `plain`, a strict twin of `model` over the whole list, checks in one call into
    pydantic-core what most batches hold (EANs as text, numbers as numbers), with no
    model object and no Python call per item but the cents' rounding: 5,000 items cost
    1.5–4 ms against 7–10 through the model. It must give what `model` gives for every
    item it accepts (tests/test_batch_items.py); a batch it refuses, and any item whose
    EAN it leaves malformed (`model` strips more), goes through `model`, whose values
    and messages decide."""
    checked = _plain_fields(plain, items)
    results = [EanItemResult(index, None) for index in range(len(items))]
    fields: list[Item | None]
    # Whether every item's EAN is known well formed (the usual batch): then no item
    # needs the per-item test.
    shaped = checked is not None and _all_well_formed([item["ean"] for item in checked])
    if checked is None:
        pairs = zip(items, results, strict=True)
        fields = [_parse_item(model, raw, result) for raw, result in pairs]
    elif not shaped:
        fields = [
            item if is_well_formed(item["ean"]) else _parse_item(model, raw, result)
            for item, raw, result in zip(checked, items, results, strict=True)
        ]
    else:
        fields = list(checked)
    valid: list[Valid] = []
    seen: set[Hashable] = set()
    for result, item in zip(results, fields, strict=True):
        if item is None:
            continue
        result.ean = ean = item["ean"]
        identity = key(item)
        if not (shaped or is_well_formed(ean)):
            problem: FieldError | None = FieldError("ean", FORMAT_MESSAGE, "invalid_ean")
        elif identity in seen:
            problem = FieldError(
                "ean",
                "en double dans le lot : seule la première occurrence est traitée",
                "duplicate",
            )
        else:
            problem = check(item)
        if problem is not None:
            _fail(result, problem)
            continue
        seen.add(identity)
        valid.append(Valid(result, item))
    return results, valid


def _plain_fields(plain: TypeAdapter[list[Any]] | None, items: Sequence[Any]) -> list[Item] | None:
    """Every item's fields by the strict twin, or None if it refuses one (or there is none)."""
    if plain is None or nul_errors(items):
        return None
    try:
        fields: list[Item] = plain.validate_python(items)
    except ValidationError:
        return None
    return fields


def _all_well_formed(eans: list[str]) -> bool:
    """is_well_formed for a whole batch at C speed: `\\d` is a Unicode decimal digit, as
    `str.isdecimal`."""
    return "".join(eans).isdecimal() and set(map(len, eans)) <= EAN_LENGTHS


def _parse_item(model: type[BaseModel], raw: Any, result: EanItemResult) -> Item | None:
    """The item's fields, or None with its errors in `result` (a batch holding a refused
    item comes this way, item by item)."""
    hint = raw.get("ean") if isinstance(raw, dict) else None
    result.ean = str(hint) if hint is not None else None
    if not isinstance(raw, dict):
        _fail(result, FieldError("", "objet JSON attendu", "type_error"))
        return None
    item, errors = parse(model, raw)
    if item is None:
        result.status, result.errors = "error", errors
        return None
    return vars(item)


def _fail(result: EanItemResult, error: FieldError) -> None:
    result.status = "error"
    result.errors.append(error)


async def load_products(
    session: AsyncSession,
    account_id: uuid.UUID,
    valid: list[Valid],
    along: Along = Along(),
) -> tuple[list[Valid], dict[uuid.UUID, Mapping[str, Any]]]:
    """The live products the items name, in one query; items naming none become not_found."""
    if not valid:
        return [], {}
    eans = unique(v.result.ean for v in valid)
    rows = await read_rows(
        session, _lookup(on_postgres(session), along), {"account_id": account_id, "eans": eans}
    )
    ids = {row["ean"]: row["id"] for row in rows}
    found: list[Valid] = []
    for entry in valid:
        product_id = ids.get(entry.result.ean)
        if product_id is None:
            _fail(entry.result, FieldError("ean", "produit introuvable", "not_found"))
            entry.result.status = "not_found"
            continue
        entry.result.product_id = product_id
        found.append(entry)
    return found, {row["id"]: row for row in rows} if along.columns or along.join else {}


@functools.cache
def _lookup(postgres: bool, along: Along) -> Select[Any]:
    """The products a batch names (`eans`) in the account, with what `along` reads: built
    once per shape, so that read_rows runs it on the driver's connection.

    On PostgreSQL one index probe per EAN, whatever the catalog's size: `ean = ANY(…)`
    was planned as a parallel scan of all products below about 600,000 of them (5,000
    EANs; 120–260 ms against 15–25 ms), until the connection's prepared statement
    switched to a generic plan after five runs. Each EAN's product, LIMIT 1 (the EAN
    is unique in the account), is a lateral subquery the planner cannot turn into a
    hash join over the whole table. SQLite has no arrays: `ean IN (…)`."""
    wanted = [_as_core_reads(PRODUCTS.c[c]) for c in along.columns]
    named = select(PRODUCTS.c.id, PRODUCTS.c.ean, PRODUCTS.c.account_id, *wanted).where(
        PRODUCTS.c.account_id == bindparam("account_id"), PRODUCTS.c.deleted_at.is_(None)
    )
    products: FromClause
    if postgres:
        given = (
            # Cast, not typed: an ARRAY-typed parameter has a bind processor (a list
            # copied per call), which would keep the statement off the driver.
            func.unnest(cast(bindparam("eans"), postgresql.ARRAY(PRODUCTS.c.ean.type)))
            .table_valued("ean")
            .render_derived("given")
        )
        products = named.where(PRODUCTS.c.ean == given.c.ean).limit(1).lateral("named")
        statement = select(products.c.id, products.c.ean, *(products.c[c] for c in along.columns))
        statement = statement.select_from(given).join(products, true())
    else:
        products = named.where(PRODUCTS.c.ean.in_(bindparam("eans", expanding=True))).subquery(
            "named"
        )
        statement = select(products.c.id, products.c.ean, *(products.c[c] for c in along.columns))
    if along.join is not None:
        target, condition, columns = along.join(products)
        statement = statement.add_columns(*columns).outerjoin(target, condition)
    return statement


def _as_core_reads(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Core reads a NUMERIC price as a float: read as one in SQL, the driver gives the
    same value."""
    kind = column.type
    if isinstance(kind, Numeric) and not kind.asdecimal:
        return cast(column, Float).label(column.key)
    return column


def stamps(product_ids: Sequence[uuid.UUID], stamp: datetime) -> dict[uuid.UUID, datetime]:
    """Distinct stamps within one write keep delta pages small and ordered (as the writer does)."""
    ordered = unique(product_ids)
    return {pid: stamp + offset * MICROSECOND for offset, pid in enumerate(ordered)}


async def update_products(
    session: AsyncSession,
    account_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    stamp: datetime,
) -> None:
    """Write each row's values to the product its `id` names, in one statement, and
    stamp each product (changes.stamp) at `stamp` plus its row's position in
    microseconds (as `stamps` times them).

    Every row has the same keys: `id` and product columns, one row a product. A None
    value keeps the stored one (coalesce), even if another writer changed it since the
    batch read it. On PostgreSQL the rows travel as one array per column (UPDATE …
    FROM unnest), their times are computed from their positions, and the update's
    RETURNING feeds the stamps' upsert: thousands of rows cost one statement instead
    of one execution each, and the ids go once.
    """
    if not rows:
        return
    names = [name for name in rows[0] if name != "id"]
    if on_postgres(session):
        given = unnested(PRODUCTS, rows, "given", unsized=True, ordinality="position")
        written = (
            update(PRODUCTS)
            .where(PRODUCTS.c.account_id == account_id, PRODUCTS.c.id == given.c.id)
            .values({name: func.coalesce(given.c[name], PRODUCTS.c[name]) for name in names})
            .returning(
                PRODUCTS.c.id, changes.at_offset(stamp)(given.c.position - 1).label("changed_at")
            )
            .cte("written")
        )
        await changes.stamp_written(session, account_id, written.c.id, written.c.changed_at)
        return
    # SQLite has no arrays: one execution per row, by the driver's executemany. The
    # parameters are renamed: SQLAlchemy keeps bind names equal to column names for SET.
    statement = (
        update(PRODUCTS)
        .where(PRODUCTS.c.account_id == account_id, PRODUCTS.c.id == bindparam("b_id"))
        .values(
            {
                name: func.coalesce(
                    bindparam(f"b_{name}", type_=PRODUCTS.c[name].type), PRODUCTS.c[name]
                )
                for name in names
            }
        )
    )
    await session.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
    await changes.stamp(session, account_id, stamps([row["id"] for row in rows], stamp))
