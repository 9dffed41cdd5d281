"""The External API (/api/v1/ext): envelope success/data/meta/errors, X-API-Key."""

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z, parse_iso8601, utcnow
from resolvers import products
from resolvers.bounds import page_window
from resolvers.errors import DomainError, FieldError, ValidationFailed
from resolvers.policies import UPSERT_BATCH
from resolvers.product_fields import ProductFields
from resolvers.product_writes import ItemResult, WriteMode, WriteOptions
from resolvers.products import ProductFilter, ProductRow
from rest_compat.body_docs import array_of, json_body, object_with, schema_of
from rest_compat.common import caller_with, json_object, runtime, status_of
from rest_compat.envelopes import (
    EXT_ERRORS,
    ExtBatch,
    ExtEnvelope,
    ExtProduct,
    ExtStatus,
    ExtUpsert,
)

PREFIX = "/api/v1/ext"
VERSION = "1.0"
router = APIRouter(prefix=PREFIX, tags=["External API"], responses=EXT_ERRORS)
reader = caller_with("ext:products:read")
writer = caller_with("ext:products:write")
PRODUCT_BODY = json_body(schema_of(ProductFields))


def envelope(
    data: Any, *, total: int = 1, page: int = 1, page_size: int = 1, updated_at: str | None = None
) -> OrjsonResponse:
    return OrjsonResponse(
        {
            "success": True,
            "data": data,
            "meta": {
                "total": total,
                "page": page,
                "page_size": page_size,
                "updated_at": updated_at or isoformat_z(utcnow()),
            },
            "errors": [],
        }
    )


def error_response(exc: DomainError) -> OrjsonResponse:
    messages = [str(e) for e in exc.errors] if isinstance(exc, ValidationFailed) else [exc.message]
    body = {
        "success": False,
        "data": None,
        "meta": {"total": 0, "page": 1, "page_size": 0, "updated_at": isoformat_z(utcnow())},
        "errors": messages or [exc.message],
    }
    return OrjsonResponse(body, status_code=status_of(exc))


# Copied as they are: orjson writes UTC datetimes (with Z) itself.
_AS_IS = (
    "weight", "width", "height", "depth", "description", "short_description", "reference",
    "supplier_code", "category_id", "asin", "upc", "gtin", "unit_of_measure", "external_id",
    "url_slug", "ean_checksum_valid", "created_at", "updated_at", "deleted_at",
)  # fmt: skip


# The product columns product_out reads.
PRODUCT_COLUMNS = ("id", "ean", "name", *products.STATUS_COLUMNS, *_AS_IS)


def product_out(row: ProductRow) -> dict[str, Any]:
    """The External API's product: the spec's fields first, then every other ext field."""
    values = row.product.values
    # The driver's UUIDs are a subclass orjson hands to a Python fallback, one call each.
    out = {
        "id": str(values["id"]),
        "ean": values["ean"],
        "title": values["name"],
        "brand_name": row.brand_name,
        "is_active": products.is_active(values),
        "status": products.shown_status(values),
    }
    for name in _AS_IS:
        out[name] = values[name]
    if out["category_id"] is not None:
        out["category_id"] = str(out["category_id"])  # keeps its place among the keys
    return out


def _datetime_arg(name: str, value: str) -> Any:
    try:
        return parse_iso8601(value)
    except ValueError as exc:
        raise ValidationFailed.of([FieldError(name, "date ISO 8601 invalide")]) from exc


def _item_out(result: ItemResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ean": result.ean,
        "status": "updated" if result.status == "unchanged" else result.status,
        "id": str(result.id) if result.id else None,
    }
    if result.errors:
        out["errors"] = [str(e) for e in result.errors]
    if result.warnings:
        out["warnings"] = [str(w) for w in result.warnings]
    return out


@router.get("/status", response_model=ExtEnvelope[ExtStatus])
async def status(caller: Caller = Depends(reader)) -> OrjsonResponse:
    return envelope(
        {
            "status": "ok",
            "version": VERSION,
            "api_key_name": caller.key_name,
            "api_key_scopes": sorted(caller.scopes),
            "timestamp": isoformat_z(utcnow()),
        }
    )


@router.get("/products", response_model=ExtEnvelope[list[ExtProduct]])
async def list_products(
    request: Request,
    supplier_code: str | None = None,
    updated_since: str | None = None,
    page: int = Query(1),
    page_size: int = Query(50),
    caller: Caller = Depends(reader),
) -> OrjsonResponse:
    offset = page_window(page, page_size, products.MAX_PAGE_SIZE, size_field="page_size")
    since = _datetime_arg("updated_since", updated_since) if updated_since else None
    flt = ProductFilter(supplier_code=supplier_code, updated_since=since)
    async with runtime(request).db.read() as session:
        result = await products.list_products(
            session,
            caller,
            filters=flt,
            sort=products.ProductSort("updated_at" if since else "created_at"),
            limit=page_size,
            offset=offset,
            columns=PRODUCT_COLUMNS,
        )
    return envelope(
        [product_out(r) for r in result.rows], total=result.total, page=page, page_size=page_size
    )


@router.get("/products/delta", response_model=ExtEnvelope[list[ExtProduct]])
async def delta(
    request: Request,
    since: str | None = None,
    page: int = Query(1),
    page_size: int = Query(100),
    caller: Caller = Depends(reader),
) -> OrjsonResponse:
    if not since:
        raise ValidationFailed.of([FieldError("since", "champ obligatoire", "missing")])
    since_at = _datetime_arg("since", since)
    # Reads only: each statement of the page sees what was committed when it started,
    # and the stable horizon keeps later commits out of the page, as in a transaction.
    async with runtime(request).db.read() as session:
        result = await products.delta(
            session, caller, since=since_at, limit=page_size, page=page,
            memo=runtime(request).memo, columns=PRODUCT_COLUMNS,
        )  # fmt: skip
    return envelope(
        [product_out(r) for r in result.rows],
        total=result.total,
        page=page,
        page_size=page_size,
        updated_at=isoformat_z(result.high_water),
    )


@router.get("/products/{ean}", response_model=ExtEnvelope[ExtProduct])
async def get_product(
    request: Request, ean: str, caller: Caller = Depends(reader)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        row = await products.get_product(session, caller, ean=ean)
    return envelope(product_out(row))


@router.post("/products", response_model=ExtEnvelope[ExtUpsert], openapi_extra=PRODUCT_BODY)
async def upsert_product(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await json_object(request)
    async with runtime(request).db.transaction() as session:
        result, row = await products.write_one(session, caller, data=_fields(body), mode="upsert")
    data = {
        "created": result.status == "created",
        "ean": row.product.ean,
        "id": str(row.product.id),
        "product": product_out(row),
    }
    if result.warnings:
        data["warnings"] = [str(w) for w in result.warnings]
    return envelope(data)


@router.post(
    "/products/batch",
    response_model=ExtEnvelope[ExtBatch],
    openapi_extra=json_body(
        object_with(products=array_of(schema_of(ProductFields), UPSERT_BATCH.max_items))
    ),
)
async def batch_upsert(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await json_object(request)
    items = body.get("products")
    if not isinstance(items, list):
        raise ValidationFailed.of([FieldError("products", "tableau JSON attendu", "type_error")])
    async with runtime(request).db.transaction() as session:
        batch = await products.write_batch(
            session,
            caller,
            items=[_fields(i) if isinstance(i, dict) else i for i in items],
            options=WriteOptions(mode="upsert"),
            max_items=UPSERT_BATCH.max_items,
        )
    data = {
        "total": len(batch.results),
        "created": batch.count("created"),
        "updated": batch.count("updated", "unchanged"),
        "errors": batch.count("error", "not_found"),
        "results": [_item_out(r) for r in batch.results],
    }
    return envelope(data, total=len(batch.results), page_size=len(batch.results))


@router.put("/products/{ean}", response_model=ExtEnvelope[ExtProduct], openapi_extra=PRODUCT_BODY)
async def replace_product(
    request: Request, ean: str, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    return await _write_addressed(request, caller, ean, "replace")


@router.patch("/products/{ean}", response_model=ExtEnvelope[ExtProduct], openapi_extra=PRODUCT_BODY)
async def patch_product(
    request: Request, ean: str, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    return await _write_addressed(request, caller, ean, "update")


async def _write_addressed(
    request: Request, caller: Caller, ean: str, mode: WriteMode
) -> OrjsonResponse:
    body = await json_object(request)
    async with runtime(request).db.transaction() as session:
        _, row = await products.write_one(
            session, caller, data=_fields(body, path_ean=ean), mode=mode, ean=ean
        )
    return envelope(product_out(row))


def _fields(body: dict[str, Any], path_ean: str | None = None) -> dict[str, Any]:
    """The External API's `title` is accepted as an alias of `name`; the path EAN wins."""
    data = dict(body)
    if "name" not in data and "title" in data:
        data["name"] = data.pop("title")
    if path_ean is not None:
        data.setdefault("ean", path_ean)
    return data
