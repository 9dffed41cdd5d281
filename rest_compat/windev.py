"""The WinDev API (/api/v1/windev): envelope success/code/message/data/count, X-API-Key.

WinDev programs map `success` and `code` straight onto variables, so every
response, errors included, carries the same envelope, with `code` equal to the
HTTP status and the spec's French messages.
"""

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z, utcnow
from resolvers import catalog, prices, products, stock
from resolvers.batches import BatchUpdate, EanItemResult
from resolvers.bounds import page_window
from resolvers.errors import DomainError, FieldError, ValidationFailed
from resolvers.policies import WINDEV_SYNC
from resolvers.product_fields import ProductFields
from resolvers.product_writes import ItemResult
from resolvers.products import ProductFilter, ProductRow, ProductSort
from rest_compat.body_docs import array_of, json_body, schema_of
from rest_compat.common import caller_with, json_array, json_object, runtime, status_of
from rest_compat.envelopes import (
    WINDEV_ERRORS,
    WinDevActivation,
    WinDevBatchItem,
    WinDevCategory,
    WinDevEnvelope,
    WinDevPage,
    WinDevProductFound,
    WinDevProductItem,
    WinDevProductUpdated,
    WinDevStatus,
    WinDevSupplier,
    WinDevSyncItem,
)

PREFIX = "/api/v1/windev"
API_NAME = "ProductsManager WinDev API"
VERSION = "1.1"
DEFAULT_LIMIT = 100
ENDPOINTS = [
    "GET  /api/v1/windev/status",
    "GET  /api/v1/windev/products",
    "POST /api/v1/windev/products/sync",
    "GET  /api/v1/windev/products/since/{timestamp}",
    "PATCH /api/v1/windev/products/{ref}",
    "GET  /api/v1/windev/products/{ref}",
    "POST /api/v1/windev/stock/update",
    "POST /api/v1/windev/prices/update",
    "GET  /api/v1/windev/categories",
    "GET  /api/v1/windev/suppliers",
]
# WinDev's wire names for product fields, and ours.
RENAMES = {
    "brand": "brand_name",
    "price_ht": "cost_price",
    "price_ttc": "price",
    "category": "category_name",
}
WIRE_NAMES = {domain: wire for wire, domain in RENAMES.items()} | {"body": "corps de la requête"}

WIRE_PRODUCT = schema_of(ProductFields, RENAMES)

router = APIRouter(prefix=PREFIX, tags=["WinDev API"], responses=WINDEV_ERRORS)
PRODUCT_PAGE = WinDevPage[list[WinDevProductItem]]
BATCH = WinDevEnvelope[list[WinDevBatchItem]]
reader = caller_with("windev:read")
writer = caller_with("windev:write")
syncer = caller_with("windev:sync")


def ok(
    message: str, data: Any, *, count: int = 1, paging: dict[str, int] | None = None
) -> OrjsonResponse:
    body: dict[str, Any] = {
        "success": True,
        "code": 200,
        "message": message,
        "data": data,
        "count": count,
    }
    return OrjsonResponse(body | (paging or {}))


def _wire(error: FieldError) -> str:
    return str(FieldError(WIRE_NAMES.get(error.field, error.field), error.message, error.code))


def error_response(exc: DomainError) -> OrjsonResponse:
    # Unknown methods come through as a plain DomainError; their status is 405.
    status = 405 if exc.code == "method_not_allowed" else status_of(exc)
    errors = exc.errors if isinstance(exc, ValidationFailed) else []
    message = "; ".join(_wire(e) for e in errors) if errors else exc.message
    body = {"success": False, "code": status, "message": message, "data": None, "count": 0}
    return OrjsonResponse(body, status_code=status)


def _domain_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {RENAMES.get(name, name): value for name, value in body.items()}


# The product columns product_item reads.
PRODUCT_COLUMNS = ("id", "ean", "reference", "name", "cost_price", "price", "status", "updated_at")


def product_item(row: ProductRow) -> dict[str, Any]:
    p = row.product
    return {
        "id": str(p.id),
        "ean": p.ean,
        "reference": p.reference,
        "name": p.name,
        "brand": row.brand_name,
        "price_ht": p.cost_price,
        "price_ttc": p.price,
        "stock": row.stock or 0,
        "is_active": p.is_active,
        "updated_at": isoformat_z(p.updated_at),
    }


def _pick(item: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: item[name] for name in names}


@router.get("/status", response_model=WinDevEnvelope[WinDevStatus])
async def status() -> OrjsonResponse:
    data = {
        "api": API_NAME,
        "version": VERSION,
        "timestamp": isoformat_z(utcnow()),
        "endpoints": ENDPOINTS,
    }
    return ok("WinDev API opérationnelle", data)


async def _product_page(
    request: Request, caller: Caller, flt: ProductFilter, sort: ProductSort, page: int, limit: int
) -> OrjsonResponse:
    offset = page_window(page, limit, products.MAX_PAGE_SIZE)
    async with runtime(request).db.read() as session:
        result = await products.list_products(
            session, caller, filters=flt, sort=sort, limit=limit, offset=offset,
            columns=PRODUCT_COLUMNS,
        )  # fmt: skip
    items = [product_item(r) for r in result.rows]
    paging = {"page": page, "pages": math.ceil(result.total / limit), "total": result.total}
    return ok(f"{result.total} produits trouvés", items, count=len(items), paging=paging)


@router.get("/products", response_model=PRODUCT_PAGE)
async def list_products(
    request: Request,
    page: int = Query(1),
    limit: int = Query(DEFAULT_LIMIT),
    search: str | None = None,
    ean: str | None = None,
    active_only: bool = Query(True),
    caller: Caller = Depends(reader),
) -> OrjsonResponse:
    flt = ProductFilter(
        search=search or None, ean=ean or None, is_active=True if active_only else None
    )
    return await _product_page(request, caller, flt, ProductSort(), page, limit)


@router.get("/products/since/{timestamp}", response_model=PRODUCT_PAGE)
async def products_since(
    request: Request,
    timestamp: str,
    page: int = Query(1),
    limit: int = Query(DEFAULT_LIMIT),
    caller: Caller = Depends(reader),
) -> OrjsonResponse:
    flt = ProductFilter(updated_since=_unix_time(timestamp))
    return await _product_page(request, caller, flt, ProductSort("updated_at"), page, limit)


def _unix_time(text: str) -> datetime:
    try:
        seconds = int(text)
        if seconds < 0:
            raise ValueError(text)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValidationFailed.of(
            [FieldError("timestamp", "timestamp Unix en secondes attendu (entier positif)")]
        ) from exc


@router.post(
    "/products/sync",
    response_model=WinDevEnvelope[list[WinDevSyncItem]],
    openapi_extra=json_body(array_of(WIRE_PRODUCT, WINDEV_SYNC.max_items)),
)
async def sync_products(request: Request, caller: Caller = Depends(syncer)) -> OrjsonResponse:
    items = await json_array(request)
    async with runtime(request).db.transaction() as session:
        batch = await products.sync_products(
            session,
            caller,
            items=[_domain_fields(i) if isinstance(i, dict) else i for i in items],
            policy=WINDEV_SYNC,
        )
    data = [_sync_item(r, items[r.index]) for r in batch.results]
    created, updated = batch.count("created"), batch.count("updated", "unchanged")
    failed = len(batch.results) - created - updated
    message = f"Sync terminé : {created} créés, {updated} mis à jour, {failed} erreurs"
    return ok(message, data, count=len(data))


def _sync_item(result: ItemResult, raw: Any) -> dict[str, Any]:
    sent = raw.get("reference") if isinstance(raw, dict) else None
    out: dict[str, Any] = {
        "reference": result.reference or sent,
        "status": {"created": "created", "updated": "updated", "unchanged": "updated"}.get(
            result.status, "error"
        ),
        "id": str(result.id) if result.id else None,
    }
    if result.errors:
        out["errors"] = [_wire(e) for e in result.errors]
    # No warnings here: the spec's own example EAN has a wrong check digit and its
    # documented result is exactly {reference, status, id}.
    return out


@router.get("/products/{ref}", response_model=WinDevEnvelope[WinDevProductFound])
async def get_product(
    request: Request, ref: str, caller: Caller = Depends(reader)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        row = await products.get_by_reference_or_ean(session, caller, ref=ref)
    item = product_item(row)
    return ok(
        "Produit trouvé",
        _pick(item, "id", "ean", "reference", "name", "brand", "is_active", "updated_at"),
    )


@router.patch(
    "/products/{ref}",
    response_model=WinDevEnvelope[WinDevProductUpdated],
    openapi_extra=json_body(WIRE_PRODUCT),
)
async def patch_product(
    request: Request, ref: str, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    body = await json_object(request)
    async with runtime(request).db.transaction() as session:
        row = await products.update_by_reference_or_ean(
            session, caller, ref=ref, data=_domain_fields(body)
        )
    item = product_item(row)
    return ok("Produit mis à jour", _pick(item, "id", "ean", "name", "is_active", "updated_at"))


async def _set_active(request: Request, caller: Caller, ref: str, active: bool) -> ProductRow:
    async with runtime(request).db.transaction() as session:
        return await products.set_active(session, caller, ref=ref, active=active)


def _activation(row: ProductRow, message: str) -> OrjsonResponse:
    p = row.product
    return ok(message, {"id": str(p.id), "is_active": p.is_active, "status": p.status})


@router.post("/products/{ref}/activate", response_model=WinDevEnvelope[WinDevActivation])
async def activate(request: Request, ref: str, caller: Caller = Depends(writer)) -> OrjsonResponse:
    return _activation(await _set_active(request, caller, ref, True), "Produit activé")


@router.post("/products/{ref}/deactivate", response_model=WinDevEnvelope[WinDevActivation])
async def deactivate(
    request: Request, ref: str, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    return _activation(await _set_active(request, caller, ref, False), "Produit désactivé")


async def _ean_batch(
    request: Request, caller: Caller, update: BatchUpdate, label: str
) -> OrjsonResponse:
    items = await json_array(request)
    # A stock item has no field to rename: handed over as decoded, not copied.
    renamed = [
        _domain_fields(i) if isinstance(i, dict) and not RENAMES.keys().isdisjoint(i) else i
        for i in items
    ]
    async with runtime(request).db.transaction() as session:
        batch = await update(session, caller, items=renamed)
    data = [_batch_item(result) for result in batch.results]
    counts = Counter(result.status for result in batch.results)
    message = (
        f"{label} : {counts['ok']} mis à jour, {counts['not_found']} introuvables, "
        f"{counts['error']} erreurs"
    )
    return ok(message, data, count=len(data))


def _batch_item(result: EanItemResult) -> dict[str, Any]:
    status = result.status
    if status != "error":
        return {"ean": result.ean, "updated": status == "ok", "status": status}
    return {
        "ean": result.ean,
        "updated": False,
        "status": status,
        "errors": [_wire(e) for e in result.errors],
    }


@router.post(
    "/stock/update",
    response_model=BATCH,
    openapi_extra=json_body(array_of(schema_of(stock.StockItem), stock.MAX_ITEMS)),
)
async def update_stock(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    return await _ean_batch(request, caller, stock.update_stock, "Stocks")


@router.post(
    "/prices/update",
    response_model=BATCH,
    openapi_extra=json_body(array_of(schema_of(prices.PriceItem, RENAMES), prices.MAX_ITEMS)),
)
async def update_prices(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    return await _ean_batch(request, caller, prices.update_prices, "Prix")


@router.get("/categories", response_model=WinDevEnvelope[list[WinDevCategory]])
async def categories(request: Request, caller: Caller = Depends(reader)) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        rows = await catalog.list_categories(session, caller)
    data = [
        {
            "id": str(c.id),
            "name": c.name,
            "slug": c.slug,
            "parent_id": str(c.parent_id) if c.parent_id else None,
            "level": c.level,
            "sort_order": c.sort_order,
        }
        for c in rows
    ]
    return ok(f"{len(data)} catégories", data, count=len(data))


@router.get("/suppliers", response_model=WinDevEnvelope[list[WinDevSupplier]])
async def suppliers(request: Request, caller: Caller = Depends(reader)) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        rows = await catalog.list_suppliers(session, caller, active_only=True)
    data = [
        {
            "id": str(s.id),
            "name": s.name,
            "code": s.code,
            "is_active": s.is_active,
            "country": s.country,
        }
        for s in rows
    ]
    return ok(f"{len(data)} fournisseurs", data, count=len(data))
