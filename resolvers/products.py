"""Reading, writing and deleting products, scoped to the caller's account."""

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models import Brand, Product, ProductStock
from pim.auth import Caller
from pim.clock import MICROSECOND, stable_horizon, write_timestamp
from pim.db import fetch, read_rows
from pim.shared_cache import Memo
from pim.sql import among, like_pattern
from resolvers import counts, events, keys
from resolvers.batches import check_size
from resolvers.bounds import (
    check_text,
    check_window,
    nul_errors,
    page_window,
    text_errors,
    utc_moment,
)
from resolvers.changes import (
    LATEST,
    WITH_CHANGES,
    Side,
    changed_in,
    newest_change,
    row_side,
    sides,
)
from resolvers.ean import is_well_formed
from resolvers.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
    product_not_found,
)
from resolvers.paging import decode_cursor, encode_cursor
from resolvers.permissions import Operation, require
from resolvers.policies import BatchPolicy
from resolvers.product_writes import (
    PRODUCTS,
    BatchResult,
    ItemResult,
    WriteItem,
    WriteMode,
    WriteOptions,
    write_operation,
    write_products,
)

MAX_PAGE_SIZE = 500
# The columns is_active and shown_status read.
STATUS_COLUMNS = ("status", "deleted_at")

# Finding a product to read or to write it.
ADDRESS = Operation.PRODUCTS_ADDRESS
SortField = Literal["created_at", "updated_at", "name", "price", "ean"]
SortOrder = Literal["asc", "desc"]


# Functions of a row's mapping, not properties: surfaces showing many products read the
# mapping once per product (an attribute of a Core row costs several times a key).
def is_active(values: Mapping[Any, Any]) -> bool:
    """Only the `active` status is active: inactive, archived and deleted are not."""
    return bool(values["status"] == "active")


def shown_status(values: Mapping[Any, Any]) -> str:
    """The status the surfaces show: a soft-deleted product is "deleted", whatever its status."""
    return "deleted" if values["deleted_at"] else str(values["status"])


class ProductRecord:
    """A product as read for display: every column as an attribute, plus the values
    every surface derives alike (`is_active`; see is_active and shown_status above).

    Backed by the row as read (the driver's record, or a Core row's mapping) rather
    than an ORM instance: a page of hundreds of products with ninety columns each
    loads several times faster that way.
    """

    __slots__ = ("values",)

    def __init__(self, values: Mapping[Any, Any]) -> None:
        # Column name → value, the fastest way to read many fields.
        self.values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    @property
    def is_active(self) -> bool:
        return is_active(self.values)

    def pairs(self) -> Iterable[tuple[str, Any]]:
        """(column name, value) of every column read, the fastest way to copy them all."""
        return self.values.items()


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product with the few related values every list shows."""

    product: ProductRecord
    brand_name: str | None
    stock: int | None


@dataclass(frozen=True, slots=True)
class ProductFilter:
    search: str | None = None
    ean: str | None = None
    supplier_code: str | None = None
    supplier_id: uuid.UUID | None = None
    brand_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    is_active: bool | None = None
    status: str | None = None
    updated_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProductSort:
    field: SortField = "created_at"
    order: SortOrder = "asc"


@dataclass(frozen=True, slots=True)
class ProductPage:
    rows: list[ProductRow]
    total: int
    sort: ProductSort
    has_next: bool = False

    def cursor(self, row: ProductRow) -> str:
        """Keyset position of a row: pass it as `after` to continue from it."""
        return encode_cursor([_sort_value(row, self.sort), str(row.product.id)])

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(self.rows[-1]) if self.rows else None


@dataclass(frozen=True, slots=True)
class DeltaPage:
    rows: list[ProductRow]
    # Feed back as the next `since`: every change before it has been returned.
    high_water: datetime
    # Changes from `since` up to the horizon, this page included.
    total: int


def _with_related(names: Sequence[str]) -> Select[Any]:
    """Product columns with the brand name and stock every product read shows. The stock
    join names the product's account (the same as the caller's, which the WHERE fixes),
    so the unique (account_id, product_id) index serves it. `updated_at` is the
    product's latest change, stock and price stamps included."""
    columns = [LATEST.label(n) if n == "updated_at" else PRODUCTS.c[n] for n in names]
    return (
        select(
            *columns, Brand.name.label("brand_name"), ProductStock.quantity.label("stock_quantity")
        )
        .select_from(WITH_CHANGES)
        .outerjoin(Brand, Brand.id == Product.brand_id)
        .outerjoin(
            ProductStock,
            and_(
                ProductStock.product_id == Product.id, ProductStock.account_id == Product.account_id
            ),
        )
    )


# Built once: only the account's condition changes from call to call.
_SCOPED: Select[Any] = _with_related(PRODUCTS.c.keys())


@functools.lru_cache(maxsize=64)
def _reading(columns: tuple[str, ...] | None) -> Select[Any]:
    """Products with their related values: every column, or only `columns`."""
    return _SCOPED if columns is None else _with_related(columns)


def _scoped(caller: Caller) -> Select[Any]:
    return _SCOPED.where(Product.account_id == caller.account_id)


# The label of the page total in list_products' rows.
_TOTAL = "listing_total"


def _rows(result: Sequence[Mapping[Any, Any]]) -> list[ProductRow]:
    return [
        ProductRow(product=ProductRecord(r), brand_name=r["brand_name"], stock=r["stock_quantity"])
        for r in result
    ]


async def _read(session: AsyncSession, statement: Select[Any]) -> list[ProductRow]:
    """Through Core: for statements built on each call, which read_rows' cache of
    rendered SQL would not hold."""
    return _rows([r._mapping for r in await fetch(session, statement)])


_LIVE = Product.deleted_at.is_(None)


# Each filter's condition; its value is bound at execution, under the filter's name.
FILTER_MAX_LENGTH = 255
_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "search": lambda: or_(
        *(
            c.ilike(bindparam("search"), escape="\\")
            for c in (Product.name, Product.ean, Product.reference)
        )
    ),
    "ean": lambda: Product.ean == bindparam("ean"),
    "supplier_code": lambda: Product.supplier_code == bindparam("supplier_code"),
    "supplier_id": lambda: Product.supplier_id == bindparam("supplier_id"),
    "brand_id": lambda: Product.brand_id == bindparam("brand_id"),
    "category_id": lambda: Product.category_id == bindparam("category_id"),
    "status": lambda: Product.status == bindparam("status"),
    # By both change orders' indexes, rather than LATEST over every product.
    "updated_since": lambda: Product.id.in_(
        changed_in(_ACCOUNT, lambda at: [at > bindparam("updated_since")])
    ),
}


def _filter_values(flt: ProductFilter) -> dict[str, Any]:
    """The given filters' values, by filter name (is_active is part of the shape)."""
    values = {name: getattr(flt, name) for name in _FILTERS if getattr(flt, name)}
    if "updated_since" in values:
        values["updated_since"] = utc_moment("updated_since", values["updated_since"])
    # No searched column is longer than 255: a longer text can match nothing, and
    # a megabyte of LIKE pattern costs the database for every row.
    texts = [(name, v) for name, v in values.items() if isinstance(v, str)]
    if errors := [e for name, v in texts for e in text_errors(name, v, FILTER_MAX_LENGTH)]:
        raise ValidationFailed.of(errors)
    if "search" in values:
        values["search"] = like_pattern(values["search"].strip())
    return values


def _conditions(filters: tuple[str, ...], is_active: bool | None) -> list[ColumnElement[bool]]:
    conditions = [_LIVE, *(_FILTERS[name]() for name in filters)]
    if is_active is not None:
        active = Product.status == "active"
        conditions.append(active if is_active else ~active)
    return conditions


_SORT_COLUMNS: dict[str, Any] = {
    "created_at": Product.created_at,
    "updated_at": LATEST,
    "name": func.coalesce(Product.name, ""),
    "price": func.coalesce(Product.price, -1.0),
    "ean": func.coalesce(Product.ean, ""),
}


def _sort_column(sort: ProductSort) -> ColumnElement[Any]:
    return _SORT_COLUMNS[sort.field]


def _sort_value(row: ProductRow, sort: ProductSort) -> Any:
    value = getattr(row.product, sort.field)
    if value is None:
        return "" if sort.field in ("name", "ean") else -1.0
    return value.isoformat() if isinstance(value, datetime) else value


def _after_values(sort: ProductSort, cursor: str) -> tuple[Any, uuid.UUID]:
    """The sort value and id a keyset cursor holds."""
    raw_value, raw_id = decode_cursor(cursor)
    # A cursor comes back from the client: its value must be of the sort column's type.
    expected: tuple[type, ...] = (int, float) if sort.field == "price" else (str,)
    try:
        last_id = uuid.UUID(str(raw_id))
        if (
            not isinstance(raw_value, expected)
            or isinstance(raw_value, bool)
            or nul_errors(raw_value)
        ):
            raise TypeError(raw_value)
        value: Any = (
            datetime.fromisoformat(str(raw_value)) if sort.field.endswith("_at") else raw_value
        )
    except (TypeError, ValueError) as exc:
        raise ValidationFailed.of([FieldError("after", "curseur invalide")]) from exc
    return value, last_id


def _after(sort: ProductSort) -> ColumnElement[bool]:
    column = _sort_column(sort)
    value: ColumnElement[Any] = bindparam("after_value")
    last_id: ColumnElement[Any] = bindparam("after_id")
    if sort.order == "asc":
        return or_(column > value, and_(column == value, Product.id > last_id))
    return or_(column < value, and_(column == value, Product.id < last_id))


@dataclass(frozen=True, slots=True)
class _ListShape:
    """What a listing's statement depends on; every value is bound at execution."""

    filters: tuple[str, ...]
    is_active: bool | None
    sort: ProductSort
    by_offset: bool
    after: bool
    columns: tuple[str, ...] | None  # the product columns read; None: every one


_ACCOUNT: BindParameter[uuid.UUID] = bindparam("account_id", type_=Product.account_id.type)


def _total(shape: _ListShape) -> ScalarSelect[int]:
    """The exact total of the listing's products."""
    if shape.filters or shape.is_active is not None:
        return (
            select(func.count())
            .select_from(WITH_CHANGES)
            .where(Product.account_id == _ACCOUNT, *_conditions(shape.filters, shape.is_active))
            .scalar_subquery()
        )
    return counts.live_products_query(_ACCOUNT)


@functools.lru_cache(maxsize=256)
def _listing(shape: _ListShape) -> Select[Any]:
    """One page of a listing with its total, built once per shape: building and keying a
    statement cost more than running it (measured: a quarter of a request's CPU)."""
    conditions = _conditions(shape.filters, shape.is_active)
    column = _sort_column(shape.sort)
    ordering = (
        (column.asc(), Product.id.asc())
        if shape.sort.order == "asc"
        else (column.desc(), Product.id.desc())
    )
    limit = bindparam("limit", type_=Integer)
    scoped = _reading(shape.columns)
    if shape.by_offset:
        # Deferred join: skip `offset` rows on the narrow index alone, then load only
        # the page's full rows (an OFFSET over the joined rows would build them all).
        page = (
            select(Product.id)
            .select_from(WITH_CHANGES)
            .where(Product.account_id == _ACCOUNT, *conditions)
            .order_by(*ordering)
            .offset(bindparam("offset", type_=Integer))
            .limit(limit)
            .subquery()
        )
        stmt = scoped.where(Product.account_id == _ACCOUNT).join(page, page.c.id == Product.id)
    else:
        stmt = scoped.where(Product.account_id == _ACCOUNT, *conditions)
        if shape.after:
            stmt = stmt.where(_after(shape.sort))
        stmt = stmt.limit(limit)
    # The exact total rides along with the page as a scalar subquery (computed once):
    # one statement and one round trip instead of two.
    return stmt.add_columns(_total(shape).label(_TOTAL)).order_by(*ordering)


@functools.lru_cache(maxsize=256)
def _total_alone(shape: _ListShape) -> Select[tuple[int]]:
    return select(_total(shape))


async def list_products(
    session: AsyncSession,
    caller: Caller,
    *,
    filters: ProductFilter = ProductFilter(),
    sort: ProductSort = ProductSort(),
    limit: int = 50,
    offset: int = 0,
    after: str | None = None,
    columns: Sequence[str] | None = None,
) -> ProductPage:
    """One page of products and the exact total; by offset or after a keyset cursor.

    `columns`: the product columns the caller shows, if not all: a page of wide rows
    costs the database, the driver and the decoding several times what a surface
    showing a third of them needs. The id and the sort column are always read.
    """
    require(caller, Operation.PRODUCTS_READ)
    check_window(limit, offset, MAX_PAGE_SIZE)
    values = _filter_values(filters)
    cursor = after if after and not offset else None  # an offset wins over a cursor
    read = None if columns is None else tuple(dict.fromkeys(("id", sort.field, *columns)))
    shape = _ListShape(tuple(values), filters.is_active, sort, offset > 0, cursor is not None, read)
    params = {"account_id": caller.account_id, "limit": limit + 1, "offset": offset, **values}
    if cursor is not None:
        params["after_value"], params["after_id"] = _after_values(sort, cursor)
    result = await read_rows(session, _listing(shape), params)
    if result:
        total = result[0][_TOTAL]
    else:
        # An empty page carries no total: ask for it alone.
        total = await session.scalar(_total_alone(shape), params)
    rows = _rows(result)
    has_next = len(rows) > limit
    rows = rows[:limit]
    return ProductPage(rows=rows, total=total or 0, sort=sort, has_next=has_next)


async def delta(
    session: AsyncSession,
    caller: Caller,
    *,
    since: datetime,
    limit: int = 100,
    page: int = 1,
    supplier_code: str | None = None,
    memo: Memo | None = None,
    columns: Sequence[str] | None = None,
) -> DeltaPage:
    """Changes at or after `since`, oldest first, deletions included as tombstones.

    The page stops at the stable horizon (see pim.clock), so nothing committed
    later can land behind the returned high-water mark. Rows sharing the last
    timestamp all go in the same page, so the mark can move strictly past them:
    a polling loop feeding `high_water` back as `since` sees every change once
    and always terminates.

    `page` > 1 skips the first (page - 1) × limit changes, for clients that walk
    pages from one `since`. That walk may repeat a row (those sharing a page's last
    timestamp) and, unlike the high-water loop, may miss one that a product changed
    during the walk pushed back.

    `columns`: the product columns the caller shows, if not all (see list_products).
    """
    require(caller, Operation.PRODUCTS_READ)
    skipped = page_window(page, limit, MAX_PAGE_SIZE, size_field="page_size")
    since = utc_moment("since", since)
    check_text("supplier_code", supplier_code, 64)
    horizon = await stable_horizon(session)
    only = [Product.supplier_code == supplier_code] if supplier_code else []

    def within(at: ColumnElement[datetime]) -> list[ColumnElement[bool]]:
        return [at >= since, at < horizon]

    read = _reading(
        None if columns is None else tuple(dict.fromkeys(("id", "updated_at", *columns)))
    )
    scoped = read.where(Product.account_id == caller.account_id)
    window = sides(caller.account_id, within, *only)
    walk = row_side(read, caller.account_id, within, *only)
    changes = await _delta_rows(session, scoped, walk, window[1], skipped + limit, skipped)
    rows = [row for _, row in changes]
    if len(rows) < limit:
        # A short page is the whole rest of the window: with what it skipped, its total.
        total = skipped + len(rows)
        if skipped and not rows:  # past the end: how far the end is, unknown
            total = await _delta_total(session, caller, since, horizon, window, supplier_code, memo)
        return DeltaPage(rows=rows, high_water=max(horizon, since), total=total)
    # The change the walk found, not the product's updated_at read after it: a change
    # committed in between may be past the horizon, and the mark must not jump there.
    last, last_id = changes[-1][0]
    tied = changed_in(caller.account_id, lambda at: [at == last], *only)
    tied_ids = await session.scalars(tied.where(tied.selected_columns.id > last_id))
    rows += await _by_id(session, scoped, sorted(tied_ids))
    total = await _delta_total(session, caller, since, horizon, window, supplier_code, memo)
    high_water = last + MICROSECOND
    if memo is not None and not skipped:
        # What remains after this page, for the loop's next call from `high_water`.
        await memo.set(
            _delta_key(caller, high_water, supplier_code),
            [total - len(rows), horizon.isoformat()],
        )
    return DeltaPage(rows=rows, high_water=high_water, total=total)


# A change in delta's order: (at, product id).
_Change = tuple[datetime, uuid.UUID]


async def _delta_rows(
    session: AsyncSession,
    scoped: Select[Any],
    walk: Select[Any],
    stamps: Side,
    first: int,
    skipped: int,
) -> list[tuple[_Change, ProductRow]]:
    """The first `first` changes of a window after `skipped`, in (at, id) order, with
    their products: the first of each side, merged. The row side's `walk` reads its
    products whole (most of a page); the `stamps` walk stops at the row side's last
    change (a later stamp cannot enter the page), and only the products it brings are
    read by id from `scoped`."""
    walked = await _read(session, walk.limit(first))
    changes: list[tuple[_Change, ProductRow | None]] = [
        ((row.product.updated_at, row.product.id), row) for row in walked
    ]
    if len(walked) == first:
        stamps = stamps.where(stamps.selected_columns.at <= changes[-1][0][0])
    changes += [((at, id), None) for id, at in (await session.execute(stamps.limit(first))).all()]
    page = sorted(changes, key=lambda change: change[0])[skipped:first]
    stamped = iter(await _by_id(session, scoped, [id for (_, id), row in page if row is None]))
    return [(key, next(stamped) if row is None else row) for key, row in page]


async def _by_id(
    session: AsyncSession, scoped: Select[Any], ids: list[uuid.UUID]
) -> list[ProductRow]:
    """The products of `ids` read from `scoped`, in that order."""
    if not ids:
        return []
    found = {
        r.product.id: r for r in await _read(session, scoped.where(among(session, Product.id, ids)))
    }
    return [found[i] for i in ids]


def _delta_key(caller: Caller, since: datetime, supplier_code: str | None) -> str:
    return f"delta:{caller.account_id}:{supplier_code or ''}:{since.isoformat()}"


async def _delta_total(
    session: AsyncSession,
    caller: Caller,
    since: datetime,
    horizon: datetime,
    window: tuple[Side, Side],
    supplier_code: str | None,
    memo: Memo | None,
) -> int:
    """Changes in [since, horizon). Counting them on every page of a loop over a big
    catalog costs more than the pages; so the previous page leaves what remained, which
    still holds while no product of the account changed since it was counted."""
    known = await memo.get(_delta_key(caller, since, supplier_code)) if memo else None
    if known is not None:
        remaining, counted_at = known[0], datetime.fromisoformat(known[1])
        newest = (await session.execute(newest_change(caller.account_id))).one()
        if all(at is None or at < counted_at for at in newest):
            return int(remaining)
    # Unordered: a subquery keeps its ORDER BY, and PostgreSQL sorted the whole window
    # (a million rows on a first page) before counting it.
    rows, stamps = (
        select(func.count()).select_from(side.order_by(None).subquery()).scalar_subquery()
        for side in window
    )
    total = await session.scalar(select(rows + stamps))
    if memo is not None:
        # For the pages a client walks from this same `since`.
        await memo.set(_delta_key(caller, since, supplier_code), [total or 0, horizon.isoformat()])
    return total or 0


async def get_product(
    session: AsyncSession,
    caller: Caller,
    *,
    id: uuid.UUID | None = None,
    ean: str | None = None,
    reference: str | None = None,
    operation: Operation = Operation.PRODUCTS_READ,
) -> ProductRow:
    """A live product by id, EAN or reference; NotFound otherwise (malformed EANs too).

    Writers look up the product they write with `operation=ADDRESS`: a write-only key
    may address and read back what it writes.
    """
    require(caller, operation)
    check_text("ean", ean)
    check_text("ref", reference)
    stmt = _scoped(caller).where(_LIVE)
    if id is not None:
        stmt = stmt.where(Product.id == id)
    elif ean is not None:
        if not is_well_formed(ean):
            raise product_not_found(ean)
        stmt = stmt.where(Product.ean == ean)
    elif reference is not None:
        stmt = stmt.where(Product.reference == reference).order_by(Product.updated_at.desc())
    else:
        raise ValidationFailed.of([FieldError("id", "un identifiant ou un EAN est requis")])
    rows = await _read(session, stmt.limit(1))
    if not rows:
        raise _not_found(id=id, ean=ean, reference=reference)
    return rows[0]


async def find_product(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID | None = None, ean: str | None = None
) -> ProductRow | None:
    """Like get_product, but None when there is no such product."""
    try:
        return await get_product(session, caller, id=id, ean=ean)
    except NotFound:
        return None


def _not_found(*, id: uuid.UUID | None, ean: str | None, reference: str | None) -> NotFound:
    if ean is not None:
        return product_not_found(ean)
    if reference is not None:
        return NotFound(message=f"Produit introuvable pour la référence : {reference}", field="ref")
    return NotFound(message=f"Produit '{id}' introuvable.", field="id")


async def write_batch(
    session: AsyncSession,
    caller: Caller,
    *,
    items: Sequence[dict[str, Any]],
    options: WriteOptions = WriteOptions(),
    max_items: int,
) -> BatchResult:
    """A batch of independent items; the size limit is the surface's documented one."""
    require(caller, write_operation(options.mode))
    if len(items) > max_items:
        raise ValidationFailed.of(
            [
                FieldError(
                    "products", f"{len(items)} éléments : au plus {max_items} par appel", "too_many"
                )
            ]
        )
    return await write_products(
        session, caller, items=[WriteItem(data=item) for item in items], options=options
    )


async def write_one(
    session: AsyncSession,
    caller: Caller,
    *,
    data: dict[str, Any],
    mode: WriteMode,
    id: uuid.UUID | None = None,
    ean: str | None = None,
    ean_lengths: frozenset[int] | None = None,
) -> tuple[ItemResult, ProductRow]:
    """One product: upsert, create, update (PATCH) or replace (PUT), addressed by id or EAN.

    `ean_lengths` narrows the accepted EAN lengths for surfaces that document fewer.
    """
    require(caller, write_operation(mode))
    target_id = id
    if ean is not None and mode in ("update", "replace"):
        target_id = (await get_product(session, caller, ean=ean, operation=ADDRESS)).product.id
    result = (
        await write_products(
            session,
            caller,
            items=[WriteItem(data=data, target_id=target_id)],
            options=WriteOptions(mode=mode, ean_lengths=ean_lengths),
        )
    ).results[0]
    if result.status == "not_found":
        raise _not_found(id=id, ean=ean, reference=None)
    if result.status == "error":
        raise _item_error(result)
    assert result.id is not None
    return result, await get_product(session, caller, id=result.id, operation=ADDRESS)


def _item_error(result: ItemResult) -> Exception:
    refused = next((e for e in result.errors if e.code == "scope_missing"), None)
    if refused is not None:
        return Forbidden(message=refused.message, field=refused.field)
    conflict = next((e for e in result.errors if e.code == "conflict"), None)
    if conflict is not None:
        return Conflict(message=str(conflict), field=conflict.field)
    return ValidationFailed.of(result.errors)


async def delete_product(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID | None = None, ean: str | None = None
) -> uuid.UUID:
    """Soft delete: the row stays for audit and shows in delta sync as a tombstone."""
    require(caller, Operation.PRODUCTS_DELETE)
    await keys.hold_account(session, caller)
    row = await get_product(session, caller, id=id, ean=ean, operation=ADDRESS)
    product = row.product
    stamp = await write_timestamp(session)
    await session.execute(
        update(Product)
        .where(Product.account_id == caller.account_id, Product.id == product.id)
        .values(deleted_at=stamp, updated_at=stamp)
    )
    payload = {"id": str(product.id), "ean": product.ean, "reference": product.reference}
    await events.record(
        session,
        [events.event_row(caller.account_id, "product.deleted", payload, stamp, product.id)],
    )
    await counts.add_live_products(session, caller.account_id, -1)
    return product.id


async def get_by_reference_or_ean(session: AsyncSession, caller: Caller, *, ref: str) -> ProductRow:
    """WinDev addressing: `ref` is tried as the manufacturer reference, then as an EAN."""
    check_text("ref", ref)
    try:
        return await get_product(session, caller, reference=ref, operation=ADDRESS)
    except NotFound:
        pass
    try:
        return await get_product(session, caller, ean=ref, operation=ADDRESS)
    except NotFound:
        raise _not_found(id=None, ean=None, reference=ref) from None


async def update_by_reference_or_ean(
    session: AsyncSession, caller: Caller, *, ref: str, data: dict[str, Any]
) -> ProductRow:
    """A partial update (PATCH) of the product `ref` names: reference first, then EAN."""
    target = await get_by_reference_or_ean(session, caller, ref=ref)
    _, row = await write_one(session, caller, data=data, mode="update", id=target.product.id)
    return row


async def set_active(
    session: AsyncSession,
    caller: Caller,
    *,
    active: bool,
    id: uuid.UUID | None = None,
    ref: str | None = None,
) -> ProductRow:
    """Activate (status active) or deactivate (status inactive) a product given by id or
    by reference-or-EAN; a no-op changes nothing."""
    require(caller, Operation.PRODUCTS_UPDATE)
    if id is None:
        if not ref:
            raise ValidationFailed.of(
                [FieldError("ref", "un identifiant ou une référence est requis")]
            )
        id = (await get_by_reference_or_ean(session, caller, ref=ref)).product.id
    _, row = await write_one(
        session, caller, data={"status": "active" if active else "inactive"}, mode="update", id=id
    )
    return row


async def sync_products(
    session: AsyncSession,
    caller: Caller,
    *,
    items: Sequence[Any],
    policy: BatchPolicy,
) -> BatchResult:
    """A batch matched by EAN, else by reference (WinDev sync), where every item must
    carry the policy's required fields; an item missing one fails alone."""
    require(caller, write_operation("upsert"))
    check_size(items, policy.max_items)
    rejected: list[ItemResult] = []
    kept: list[tuple[int, Any]] = []
    for index, item in enumerate(items):
        missing = [
            FieldError(name, "champ obligatoire", "missing")
            for name in policy.required
            if isinstance(item, dict) and _blank(item.get(name))
        ]
        if missing:
            rejected.append(
                ItemResult(index=index, status="error", ean=item.get("ean"),
                           reference=item.get("reference"), errors=missing)
            )  # fmt: skip
        else:
            kept.append((index, item))
    batch = await write_batch(
        session,
        caller,
        items=[item for _, item in kept],
        options=WriteOptions(mode="upsert", match_reference=True),
        max_items=policy.max_items,
    )
    for (index, _), result in zip(kept, batch.results, strict=True):
        result.index = index
    return BatchResult(sorted([*batch.results, *rejected], key=lambda r: r.index))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
