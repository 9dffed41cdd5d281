"""The one product writer behind every create, upsert, update, replace and batch.

Each call validates every item on its own, loads what it needs in a few
set-based queries, decides per item (created / updated / unchanged / skipped /
not found / error), then writes all changed rows in one statement per table.
A dry run stops before the writes and returns exactly the same results.
"""

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, ProductStock, SupplierProduct
from pim.auth import Caller
from pim.clock import MICROSECOND, write_timestamp
from pim.db import fetch, on_postgres
from pim.ids import uuid7
from pim.sql import among, bulk_insert, bulk_upsert, unique
from resolvers import catalog, changes, counts, events, keys
from resolvers.change_sets import ProductChange
from resolvers.ean import CHECKSUM_MESSAGE, FORMAT_MESSAGE, check_ean
from resolvers.errors import Conflict, FieldError
from resolvers.permissions import ALLOWED, Operation, allows, require
from resolvers.product_fields import NON_COLUMN_INPUTS, REPLACEABLE_FIELDS, check_fields

WriteMode = Literal["upsert", "create", "update", "replace"]
RACE_ATTEMPTS = 3
ItemStatus = Literal["created", "updated", "unchanged", "skipped", "not_found", "error"]

PRODUCTS: Table = Product.__table__  # type: ignore[assignment]
PRODUCT_STOCKS: Table = ProductStock.__table__  # type: ignore[assignment]
SUPPLIER_PRODUCTS: Table = SupplierProduct.__table__  # type: ignore[assignment]
SYSTEM_COLUMNS = frozenset({"id", "account_id", "created_at", "updated_at", "deleted_at"})
COLUMNS = tuple(c.name for c in PRODUCTS.columns)
WRITABLE_COLUMNS = tuple(c for c in COLUMNS if c not in SYSTEM_COLUMNS)
# The state of a product that has never been written: what PUT resets fields to.
FRESH: dict[str, Any] = {
    name: getattr(PRODUCTS.c[name].default, "arg", None) for name in WRITABLE_COLUMNS
}
FRESH["ean_checksum_valid"] = True


@dataclass(frozen=True, slots=True)
class WriteItem:
    """One raw item as the client sent it, with our own field names.

    `target_id` pins the product (routes addressed by id or by path EAN).
    """

    data: dict[str, Any]
    target_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class WriteOptions:
    mode: WriteMode = "upsert"
    dry_run: bool = False
    # WinDev items without an EAN are matched by reference.
    match_reference: bool = False
    skip_existing: bool = False
    skip_missing: bool = False
    default_supplier_code: str | None = None
    # A surface may accept fewer EAN lengths than the general rule (the Products
    # API takes EAN-8 and EAN-13 only); None accepts every well-formed EAN.
    ean_lengths: frozenset[int] | None = None


@dataclass(slots=True)
class ItemResult:
    index: int
    status: ItemStatus
    ean: str | None = None
    reference: str | None = None
    id: uuid.UUID | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    changed_fields: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status not in ("error", "not_found")


@dataclass(slots=True)
class BatchResult:
    results: list[ItemResult]

    def count(self, *statuses: ItemStatus) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def product_ids(self) -> list[uuid.UUID]:
        return [r.id for r in self.results if r.id is not None]


@dataclass(frozen=True, slots=True)
class CheckedItem:
    """An item that passed every check it can pass alone, ready to be decided."""

    index: int
    ean: str | None
    reference: str | None
    given: dict[str, Any]
    target_id: uuid.UUID | None
    warnings: tuple[FieldError, ...]

    def __reduce__(self) -> tuple[type["CheckedItem"], tuple[Any, ...]]:
        # Imports send thousands a second between processes; the __getstate__ that
        # dataclasses give frozen slotted classes walks fields() for each one (measured:
        # a tenth of both processes' time).
        return (
            CheckedItem,
            (self.index, self.ean, self.reference, self.given, self.target_id, self.warnings),
        )


# What check_items makes of each item: checked, or rejected for good.
Checked = CheckedItem | ItemResult


@dataclass(slots=True)
class _Plan:
    """A checked item on its way to a decision, within one write attempt."""

    result: ItemResult
    ean: str | None
    reference: str | None
    target_id: uuid.UUID | None
    given: dict[str, Any]
    current: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    stock: int | None = None


def write_operation(mode: WriteMode) -> Operation:
    """What a write needs at least; an upsert that creates needs PRODUCTS_CREATE too,
    checked per item (a key that may only update still updates the products that exist)."""
    return Operation.PRODUCTS_CREATE if mode == "create" else Operation.PRODUCTS_UPDATE


_CREATE_FORBIDDEN = "Portée requise manquante pour créer un produit : " + " ou ".join(
    sorted(ALLOWED[Operation.PRODUCTS_CREATE])
)


async def write_products(
    session: AsyncSession,
    caller: Caller,
    *,
    items: Sequence[WriteItem],
    options: WriteOptions = WriteOptions(),
) -> BatchResult:
    checked = check_items(items, options, strict_ean=caller.strict_ean)
    return await write_checked(session, caller, checked, options)


def check_items(
    items: Sequence[WriteItem], options: WriteOptions, *, strict_ean: bool
) -> list[Checked]:
    """The per-item checks, which need no database: pure, so an import runs them in its
    reader process for the next chunk while the current one is being written."""
    return [
        check_item(index, item, options, strict_ean=strict_ean) for index, item in enumerate(items)
    ]


async def write_checked(
    session: AsyncSession, caller: Caller, checked: Sequence[Checked], options: WriteOptions
) -> BatchResult:
    require(caller, write_operation(options.mode))
    if options.dry_run:
        return await _write_once(session, caller, checked, options)
    await keys.hold_account(session, caller)
    if on_postgres(session):
        for _ in range(RACE_ATTEMPTS):
            try:
                async with session.begin_nested():
                    return await _write_once(session, caller, checked, options)
            except IntegrityError:
                # Another transaction created one of our "new" EANs after we looked:
                # decide again from what is there now, so its item is updated, not lost.
                continue
    else:
        # SQLite's driver makes SAVEPOINT unusable (releasing one commits it all), so a
        # lost race is reported as a conflict, for the client to retry.
        try:
            return await _write_once(session, caller, checked, options)
        except IntegrityError:
            pass
    raise Conflict(
        message="Conflit avec des écritures simultanées sur les mêmes produits : réessayez.",
        field="ean",
    )


async def _write_once(
    session: AsyncSession, caller: Caller, checked: Sequence[Checked], options: WriteOptions
) -> BatchResult:
    results: list[ItemResult] = []
    plans: list[_Plan] = []
    for item in checked:
        if isinstance(item, ItemResult):
            results.append(item)  # rejected by its own checks: final whatever the database says
            continue
        plan = _plan(item)
        results.append(plan.result)
        plans.append(plan)
    _reject_duplicate_keys(plans)
    plans = [p for p in plans if p.result.status != "error"]
    if not plans:
        return BatchResult(results)

    columns = _columns_needed(plans, options)
    await _load_current(session, caller.account_id, plans, columns)
    if not allows(caller, Operation.PRODUCTS_CREATE):
        # Refused before the brands and suppliers they name are created on their way.
        plans = _refuse_creations(plans, options)
    refs = await _resolve_references(session, caller.account_id, plans, create=not options.dry_run)
    stamp = await write_timestamp(session) if not options.dry_run else None
    for plan in plans:
        _decide(plan, options, refs, caller.account_id)
    if options.dry_run or stamp is None:
        return BatchResult(results)
    await _write(session, caller.account_id, plans, refs, stamp, columns)
    return BatchResult(results)


def _plan(item: CheckedItem) -> _Plan:
    result = ItemResult(
        index=item.index,
        status="unchanged",
        ean=item.ean,
        reference=item.reference,
        warnings=list(item.warnings),
    )
    return _Plan(result, item.ean, item.reference, item.target_id, item.given)


def check_item(index: int, item: WriteItem, options: WriteOptions, *, strict_ean: bool) -> Checked:
    raw = item.data
    if not isinstance(raw, dict):
        return _rejected(index, None, FieldError("", "objet JSON attendu", "type_error"))
    # A PATCH-like write leaves a field alone when it is null; PUT and creates
    # take the client's nulls at face value.
    given, errors = check_fields(raw, drop_nulls=options.mode in ("upsert", "update"))
    if given is None:
        return _rejected(index, raw.get("ean"), *errors)
    ean, reference = given.get("ean"), given.get("reference")
    warnings: tuple[FieldError, ...] = ()
    if ean is not None:
        check = check_ean(ean)
        lengths = options.ean_lengths
        if not check.well_formed or (lengths is not None and len(ean) not in lengths):
            return _rejected(index, ean, FieldError("ean", _format_message(lengths), "invalid_ean"))
        if not check.checksum_valid:
            issue = FieldError("ean", CHECKSUM_MESSAGE, "ean_checksum")
            if strict_ean:
                return _rejected(index, ean, issue)
            warnings = (issue,)
    elif item.target_id is None and not (options.match_reference and reference):
        missing = "ean ou reference" if options.match_reference else "ean"
        return _rejected(index, ean, FieldError(missing, "champ obligatoire", "missing"))
    if options.default_supplier_code and "supplier_code" not in given:
        given["supplier_code"] = options.default_supplier_code
    return CheckedItem(index, ean, reference, given, item.target_id, warnings)


def _rejected(index: int, ean: object, *errors: FieldError) -> ItemResult:
    return ItemResult(index, "error", ean=str(ean) if ean else None, errors=list(errors))


def _fail(result: ItemResult, error: FieldError, status: ItemStatus = "error") -> None:
    result.status = status
    result.errors.append(error)


def _format_message(lengths: frozenset[int] | None) -> str:
    if lengths is None:
        return FORMAT_MESSAGE
    return f"format invalide ({' ou '.join(str(n) for n in sorted(lengths))} chiffres attendus)"


def _key(plan: _Plan) -> tuple[str, str]:
    if plan.target_id is not None:
        return ("id", str(plan.target_id))
    if plan.ean is not None:
        return ("ean", plan.ean)
    return ("reference", plan.reference or "")


def _reject_duplicate_keys(plans: list[_Plan]) -> None:
    seen: set[tuple[str, str]] = set()
    for plan in plans:
        key = _key(plan)
        if key in seen:
            message = "en double dans le lot : seule la première occurrence est traitée"
            _fail(plan.result, FieldError(key[0], message, "duplicate"))
        seen.add(key)


# Read and written whatever fields a batch gives: identity, the columns a creation sets
# without being asked (barcode from the EAN, the non-null defaults) and bookkeeping.
_ALWAYS_COLUMNS = (
    SYSTEM_COLUMNS
    | {"ean", "reference", "barcode"}
    | {name for name, value in FRESH.items() if value is not None}
)


def _columns_needed(plans: list[_Plan], options: WriteOptions) -> tuple[str, ...]:
    """The product columns this batch reads and writes.

    A PATCH-like write of 15 fields reads, compares and sends about 25 of the 73
    columns; the rest keep their values (or their defaults, for new rows).
    """
    if options.mode == "replace":
        return COLUMNS
    return _columns_for_fields(frozenset().union(*(p.given.keys() for p in plans)))


@functools.lru_cache(maxsize=256)
def _columns_for_fields(fields: frozenset[str]) -> tuple[str, ...]:
    touched = set(_columns_for(fields))
    return tuple(c for c in COLUMNS if c in touched or c in _ALWAYS_COLUMNS)


async def _load_current(
    session: AsyncSession, account_id: uuid.UUID, plans: list[_Plan], columns: Sequence[str]
) -> None:
    """Attach to each plan the row it targets, with one query for the whole batch."""
    targets = _Targets.of(await _fetch_targets(session, account_id, plans, columns))
    with_stock = any("stock" in p.given for p in plans)
    stocks = await _current_stock(session, account_id, list(targets.by_id)) if with_stock else {}
    for plan in plans:
        plan.current = targets.target_of(plan)
        if plan.current is not None:
            plan.current["_stock"] = stocks.get(plan.current["id"])
            _refuse_taken_ean(plan, targets.by_ean.get(plan.ean or ""))


async def _fetch_targets(
    session: AsyncSession, account_id: uuid.UUID, plans: list[_Plan], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The rows any plan may target, by id, EAN or (without an EAN) reference."""
    keys = (
        (PRODUCTS.c.id, unique(p.target_id for p in plans if p.target_id is not None)),
        (PRODUCTS.c.ean, unique(p.ean for p in plans if p.ean is not None)),
        (PRODUCTS.c.reference, unique(p.reference for p in plans if p.ean is None and p.reference)),
    )
    conditions = [among(session, column, values) for column, values in keys if values]
    # updated_at is written afresh, never compared: not worth decoding.
    names = [c for c in columns if c != "updated_at"]
    rows = await fetch(
        session,
        select(*(PRODUCTS.c[c] for c in names)).where(
            PRODUCTS.c.account_id == account_id, or_(*conditions)
        ),
    )
    return [dict(zip(names, values, strict=True)) for values in rows]


@dataclass(slots=True)
class _Targets:
    """The rows of a batch, by each key an item may name them with."""

    by_id: dict[uuid.UUID, dict[str, Any]]
    by_ean: dict[str, dict[str, Any]]
    by_reference: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> "_Targets":
        targets = cls({}, {}, {})
        for record in records:
            targets.by_id[record["id"]] = record
            if record["ean"] is not None:
                targets.by_ean[record["ean"]] = record
            # Live products win over deleted ones sharing a reference.
            ref = record["reference"]
            if ref is not None and not _alive(targets.by_reference.get(ref)):
                targets.by_reference[ref] = record
        return targets

    def target_of(self, plan: _Plan) -> dict[str, Any] | None:
        """The row the plan's own key names (the same precedence as `_key`)."""
        if plan.target_id is not None:
            return self.by_id.get(plan.target_id)
        if plan.ean is not None:
            return self.by_ean.get(plan.ean)
        return self.by_reference.get(plan.reference or "")


def _refuse_taken_ean(plan: _Plan, holder: dict[str, Any] | None) -> None:
    """An EAN moved onto another product's EAN would break uniqueness."""
    if plan.current is not None and holder is not None and holder["id"] != plan.current["id"]:
        message = f"l'EAN {plan.ean} appartient déjà à un autre produit"
        _fail(plan.result, FieldError("ean", message, "conflict"))


async def _current_stock(
    session: AsyncSession, account_id: uuid.UUID, product_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not product_ids:
        return {}
    rows = await fetch(
        session,
        select(PRODUCT_STOCKS.c.product_id, PRODUCT_STOCKS.c.quantity).where(
            PRODUCT_STOCKS.c.account_id == account_id,
            among(session, PRODUCT_STOCKS.c.product_id, product_ids),
        ),
    )
    return {product_id: quantity for product_id, quantity in rows}


@dataclass(slots=True)
class _References:
    brands: dict[str, uuid.UUID]
    suppliers: dict[str, uuid.UUID]
    categories: set[uuid.UUID]


async def _resolve_references(
    session: AsyncSession, account_id: uuid.UUID, plans: list[_Plan], *, create: bool
) -> _References:
    live = [p for p in plans if p.result.status != "error"]
    brand_names = {p.given["brand_name"] for p in live if p.given.get("brand_name")}
    codes = {p.given["supplier_code"] for p in live if p.given.get("supplier_code")}
    category_ids: set[uuid.UUID] = set()
    for plan in live:
        raw = plan.given.get("category_id")
        if raw is None:
            continue
        try:
            category_ids.add(uuid.UUID(str(raw)))
        except ValueError:
            _fail(plan.result, FieldError("category_id", "UUID invalide", "uuid_parsing"))
    brands = await catalog.brand_ids_for(session, account_id, brand_names, create=create)
    suppliers = await catalog.supplier_ids_for(session, account_id, codes, create=create)
    categories = await catalog.existing_category_ids(session, account_id, category_ids)
    return _References(brands=brands, suppliers=suppliers, categories=categories)


def _refuse_creations(plans: list[_Plan], options: WriteOptions) -> list[_Plan]:
    """The plans left once those that would create a product fail as forbidden."""
    if options.mode not in ("upsert", "create"):
        return plans  # a missing product is not found, whoever asks
    kept = []
    for plan in plans:
        if not _alive(plan.current):
            _fail(plan.result, FieldError("ean", _CREATE_FORBIDDEN, "scope_missing"))
        else:
            kept.append(plan)
    return kept


def _alive(row: dict[str, Any] | None) -> bool:
    return row is not None and row["deleted_at"] is None


def _decide(plan: _Plan, options: WriteOptions, refs: _References, account_id: uuid.UUID) -> None:
    """Settle one item: refused, skipped, unchanged, or the row it creates or updates."""
    if plan.result.status == "error":
        return
    creating = not _alive(plan.current)
    if _refused_by_mode(plan, options, creating=creating):
        return
    if creating and _refused_as_incomplete(plan):
        return
    try:
        new = _apply(_base_row(plan, options, creating=creating), plan, refs)
    except _ItemError as exc:
        _fail(plan.result, exc.error)
        return
    plan.stock = plan.given.get("stock")
    plan.result.ean = new.get("ean")
    plan.result.reference = new.get("reference")
    if creating:
        _decide_created(plan, new, options, account_id)
    else:
        _decide_updated(plan, new, options)


def _refused_by_mode(plan: _Plan, options: WriteOptions, *, creating: bool) -> bool:
    """Whether the mode forbids what this item would do: an update or a replace of a
    missing product, a create of an existing one (skipped instead, when asked)."""
    result = plan.result
    if creating and options.mode in ("update", "replace"):
        if options.skip_missing:
            result.status = "skipped"
        else:
            _fail(result, FieldError("ean", "produit introuvable", "not_found"), "not_found")
        return True
    if not creating and options.mode == "create":
        result.id = plan.current["id"]  # type: ignore[index]
        if options.skip_existing:
            result.status = "skipped"
        else:
            _fail(result, FieldError("ean", f"l'EAN {plan.ean} existe déjà", "conflict"))
        return True
    return False


def _refused_as_incomplete(plan: _Plan) -> bool:
    """Whether a creation lacks what every product has: a name, and an EAN or a reference."""
    if not plan.given.get("name"):
        error = FieldError("name", "obligatoire pour créer un produit", "missing")
    elif plan.ean is None and not plan.reference:
        error = FieldError("ean", "champ obligatoire", "missing")
    else:
        return False
    _fail(plan.result, error)
    return True


def _base_row(plan: _Plan, options: WriteOptions, *, creating: bool) -> dict[str, Any]:
    """What the item's fields apply to: a fresh product, the current one with its
    replaceable fields reset (PUT), or the current one as it is."""
    if creating:
        return dict(FRESH)
    if options.mode == "replace":
        return {**plan.current, **_RESET_BY_REPLACE}  # type: ignore[dict-item]
    return dict(plan.current)  # type: ignore[arg-type]


def _decide_created(
    plan: _Plan, new: dict[str, Any], options: WriteOptions, account_id: uuid.UUID
) -> None:
    """A new product, or a deleted one created again under its old id."""
    if new.get("barcode") is None:
        new["barcode"] = new.get("ean")
    if plan.current is not None:
        new["id"] = plan.current["id"]
    else:
        # A dry run reports no id for a product that does not exist yet: any id
        # made up here would not be the one the real call assigns.
        new["id"] = None if options.dry_run else uuid7()
    new["account_id"] = account_id
    new["deleted_at"] = None
    plan.new = new
    plan.result.id = new["id"]
    plan.result.status = "created"
    plan.result.changed_fields = sorted(plan.given)


def _decide_updated(plan: _Plan, new: dict[str, Any], options: WriteOptions) -> None:
    """Updated when a column or the stock changes, else unchanged."""
    current, result = plan.current, plan.result
    assert current is not None
    result.id = current["id"]
    candidates = WRITABLE_COLUMNS if options.mode == "replace" else _touched(plan.given)
    changed = [c for c in candidates if new.get(c) != current.get(c)]
    if _stock_changes(plan):
        changed.append("stock")
    if changed:
        plan.new = new
        result.status = "updated"
        result.changed_fields = changed
    else:
        result.status = "unchanged"


def _stock_changes(plan: _Plan) -> bool:
    """Whether the item writes a stock: a supplier's always (its current level is not
    loaded), the generic one when it differs from the current level."""
    if plan.stock is None:
        return False
    if plan.given.get("supplier_code"):
        return True
    return plan.stock != plan.current.get("_stock")  # type: ignore[union-attr]


# Columns an input field writes besides its own; every other given field is its own column.
_DERIVED_COLUMNS: dict[str, tuple[str, ...]] = {
    "brand_name": ("brand_id",),
    "is_active": ("status",),
    "supplier_code": ("supplier_code", "supplier_id"),
    "ean": ("ean", "ean_checksum_valid"),
    "stock": (),
}


def _touched(given: dict[str, Any]) -> tuple[str, ...]:
    """The columns a PATCH-like write of `given` may change (in column order)."""
    return _columns_for(frozenset(given))


@functools.lru_cache(maxsize=1024)
def _columns_for(fields: frozenset[str]) -> tuple[str, ...]:
    # Cached: the rows of one import or batch nearly always give the same fields.
    touched: set[str] = set()
    for name in fields:
        touched.update(_DERIVED_COLUMNS.get(name, (name,)))
    return tuple(c for c in WRITABLE_COLUMNS if c in touched)


def _replaced_columns() -> set[str]:
    mapped = {"brand_name": "brand_id", "is_active": "status"}
    return {mapped.get(f, f) for f in REPLACEABLE_FIELDS} | {"supplier_id"}


# What a replace (PUT) resets before applying the item's fields.
_RESET_BY_REPLACE = {k: FRESH[k] for k in _replaced_columns() if k in FRESH}


class _ItemError(Exception):
    def __init__(self, error: FieldError) -> None:
        self.error = error


def _apply(base: dict[str, Any], plan: _Plan, refs: _References) -> dict[str, Any]:
    """The row after this item's fields are applied to `base`."""
    given = plan.given
    new = base | {name: value for name, value in given.items() if name not in NON_COLUMN_INPUTS}
    new["status"] = _status(given, new.get("status"))
    new |= _referenced_ids(given, refs)
    if plan.ean is not None:
        new["ean_checksum_valid"] = not any(w.code == "ean_checksum" for w in plan.result.warnings)
    return new


def _status(given: dict[str, Any], status: str | None) -> str:
    """The given status, else the one `is_active` says, else the current one; active
    when there is none."""
    if "status" not in given and given.get("is_active") is not None:
        return "active" if given["is_active"] else "inactive"
    return "active" if status is None else status


def _referenced_ids(given: dict[str, Any], refs: _References) -> dict[str, Any]:
    """The brand, supplier and category ids for the names and ids the item gives."""
    ids: dict[str, Any] = {}
    if "brand_name" in given:
        ids["brand_id"] = _brand_id(given["brand_name"], refs)
    if "supplier_code" in given:
        code = given["supplier_code"]
        ids["supplier_id"] = refs.suppliers.get(code) if code else None
    if "category_id" in given:
        ids["category_id"] = _category_id(given["category_id"], refs)
    return ids


def _brand_id(name: str | None, refs: _References) -> uuid.UUID | None:
    if not name:
        return None
    found = refs.brands.get(catalog.brand_key(name))
    # Dry run with a brand that does not exist yet: it would be created.
    return uuid.UUID(int=0) if found is None else found


def _category_id(raw: object, refs: _References) -> uuid.UUID | None:
    category = uuid.UUID(str(raw)) if raw else None
    if category is not None and category not in refs.categories:
        raise _ItemError(FieldError("category_id", "catégorie introuvable", "not_found"))
    return category


# A changed plan with the time of its change.
Timed = tuple[_Plan, datetime]
WritePath = Literal["insert", "update", "recreate", "stamp"]


async def _write(
    session: AsyncSession,
    account_id: uuid.UUID,
    plans: list[_Plan],
    refs: _References,
    stamp: datetime,
    columns: Sequence[str],
) -> None:
    """Write what the batch decided: one set-based statement per table and write path."""
    changed = [p for p in plans if p.new is not None]
    if not changed:
        return
    # Distinct stamps within one write keep delta pages small and ordered.
    timed = [(plan, stamp + offset * MICROSECOND) for offset, plan in enumerate(changed)]
    paths: dict[WritePath, list[Timed]] = defaultdict(list)
    for plan, when in timed:
        paths[_write_path(plan)].append((plan, when))
    await _insert_new(session, paths["insert"], columns)
    await _update_changed_columns(session, paths["update"])
    await _recreate_deleted(session, paths["recreate"])
    await _stamp_stock_changes(session, account_id, paths["stamp"])
    # Made before the stock's: event ids grow in the order the changes are told.
    product_events = _product_events(account_id, timed)
    stock_events = await _write_stock(session, account_id, changed, refs, stamp)
    await events.record(session, product_events + stock_events)
    await counts.add_live_products(session, account_id, sum(1 for p in changed if _created(p)))


def _write_path(plan: _Plan) -> WritePath:
    """How a changed product is written: a new row inserted, the changed columns of a row
    updated, a deleted row written afresh, or (its stock alone changed) a change stamp."""
    if _stock_only(plan):
        return "stamp"
    if not _created(plan):
        return "update"
    return "insert" if plan.current is None else "recreate"


def _created(plan: _Plan) -> bool:
    return plan.result.status == "created"


def _stock_only(plan: _Plan) -> bool:
    """An update of the stock alone, told by the stock.updated event."""
    return plan.result.status == "updated" and plan.result.changed_fields == ["stock"]


def _row(plan: _Plan, names: Sequence[str], when: datetime) -> dict[str, Any]:
    row = {c: plan.new.get(c) for c in names}  # type: ignore[union-attr]
    row["updated_at"] = when
    row["created_at"] = plan.current["created_at"] if plan.current else when
    return row


async def _insert_new(session: AsyncSession, timed: list[Timed], columns: Sequence[str]) -> None:
    """Products that never existed have no row to conflict with: inserted straight (a
    concurrent creation of the same EAN fails the unique index, and write_checked
    decides again)."""
    await bulk_insert(session, PRODUCTS, [_row(p, columns, when) for p, when in timed])


async def _update_changed_columns(session: AsyncSession, timed: list[Timed]) -> None:
    """An update writes the columns that changed in any row of the batch, not all it read:
    an import that changes titles sends 7 columns a row instead of 25."""
    names = _updated_columns(p for p, _ in timed)
    await _upsert_products(session, [_row(p, names, when) for p, when in timed], names)


async def _recreate_deleted(session: AsyncSession, timed: list[Timed]) -> None:
    """A deleted product created again starts afresh: every column is written."""
    await _upsert_products(session, [_row(p, COLUMNS, when) for p, when in timed], COLUMNS)


async def _upsert_products(
    session: AsyncSession, rows: list[dict[str, Any]], names: Sequence[str]
) -> None:
    kept = [c for c in names if c not in ("id", "account_id", "created_at")]
    await bulk_upsert(session, PRODUCTS, rows, conflict=["id"], update=kept)


async def _stamp_stock_changes(
    session: AsyncSession, account_id: uuid.UUID, timed: list[Timed]
) -> None:
    """A stock-only change leaves the wide row alone: a narrow stamp tells delta sync."""
    # An update's result always holds the id of the product it updates.
    stamps = {p.result.id: when for p, when in timed}
    await changes.stamp(session, account_id, stamps)  # type: ignore[arg-type]


def _product_events(account_id: uuid.UUID, timed: list[Timed]) -> list[dict[str, Any]]:
    # A written product's result always holds its id.
    return events.product_events(account_id, [
        ProductChange(id=plan.result.id, ean=plan.result.ean,  # type: ignore[arg-type]
                      reference=plan.result.reference, changed=plan.result.changed_fields,
                      created=_created(plan), at=when)
        for plan, when in timed
        if not _stock_only(plan)  # told by the stock.updated event
    ])  # fmt: skip


# What every updated row carries, changed or not: the columns without a default that an
# upsert's row must fill, though the row exists.
_UPDATE_REQUIRED = frozenset(
    c.name for c in PRODUCTS.columns if not c.nullable and c.server_default is None
)


def _updated_columns(plans: Iterable[_Plan]) -> tuple[str, ...]:
    written = set(_UPDATE_REQUIRED).union(*(p.result.changed_fields for p in plans))
    return tuple(c for c in COLUMNS if c in written)


async def _write_stock(
    session: AsyncSession,
    account_id: uuid.UUID,
    plans: list[_Plan],
    refs: _References,
    stamp: datetime,
) -> list[dict[str, Any]]:
    """Write the stock levels that change; the stock.updated event that tells them."""
    # Per table, and whether the product is new (then it has no stock row yet).
    stock_rows: dict[tuple[Table, bool], list[dict[str, Any]]] = defaultdict(list)
    eans: list[str | None] = []
    for plan in plans:
        if plan.stock is None or "stock" not in plan.result.changed_fields:
            continue
        eans.append(plan.result.ean)
        row: dict[str, Any] = {"id": uuid7(), "product_id": plan.result.id, "updated_at": stamp}
        if code := plan.given.get("supplier_code"):
            row |= {"supplier_id": refs.suppliers[code], "stock": plan.stock}
            stock_rows[SUPPLIER_PRODUCTS, plan.current is None].append(row)
        else:
            row["quantity"] = plan.stock
            stock_rows[PRODUCT_STOCKS, plan.current is None].append(row)
    for (table, new_product), written in stock_rows.items():
        if new_product:
            await bulk_insert(session, table, [{**r, "account_id": account_id} for r in written])
        elif table is PRODUCT_STOCKS:
            await upsert_generic_stock(session, account_id, written)
        else:
            await upsert_supplier_stock(session, account_id, written)
    if not eans:
        return []
    return [events.event_row(account_id, "stock.updated", events.batch_payload(eans), stamp)]


# How stock records are upserted: (conflict, update) columns.
GENERIC_STOCK: dict[str, list[str]] = {
    "conflict": ["account_id", "product_id"],
    "update": ["quantity", "updated_at"],
}
SUPPLIER_STOCK: dict[str, list[str]] = {
    "conflict": ["account_id", "product_id", "supplier_id"],
    "update": ["stock", "updated_at"],
}


async def upsert_generic_stock(
    session: AsyncSession, account_id: uuid.UUID, rows: list[dict[str, Any]]
) -> None:
    """`rows` are the account's: they hold no account_id."""
    await bulk_upsert(
        session, PRODUCT_STOCKS, rows, same={"account_id": account_id}, **GENERIC_STOCK
    )


async def upsert_supplier_stock(
    session: AsyncSession, account_id: uuid.UUID, rows: list[dict[str, Any]]
) -> None:
    """`rows` are the account's: they hold no account_id."""
    await bulk_upsert(
        session, SUPPLIER_PRODUCTS, rows, same={"account_id": account_id}, **SUPPLIER_STOCK
    )
