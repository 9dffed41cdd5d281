"""The Products API (/api/v1/products): plain JSON objects, `items` + `meta` lists.

Keys come as `Authorization: Bearer` (X-API-Key works too); scopes products:read
and products:write. Errors are the plain JSON of rest_compat.errors.plain_error.

Choices where the contract is silent, so that clients can rely on them:
- POST /products answers 201 with the created product; a duplicate EAN is a 409.
- A body that is not JSON at all is a 400; JSON of the wrong shape or with invalid
  fields is a 422 naming each field.
- A processed bulk call is a 200 whatever its items did: each item stands alone and
  reports `created` / `updated` / `skipped` / `error`, in input order. An existing
  EAN without skip_duplicates, or an unknown EAN without skip_not_found, is an
  `error` item whose error has code `conflict` (the 409 of the single create) or
  `not_found`; the other items are still written. Only a call over 1,000 items or a
  malformed envelope is refused whole.
- `updated` counts the products matched and brought to the requested values, those
  that already had them included (their `changed_fields` is empty).
- A dry run answers exactly what the real call would, except that a product it
  would create has no `id` yet; it writes nothing.
- Lists default to the newest first (sort_by=created_at, sort_order=desc).
"""

import uuid
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import products
from resolvers.errors import DomainError, ValidationFailed
from resolvers.policies import PRODUCTS_API
from resolvers.product_fields import ProductFields
from resolvers.product_writes import ItemResult, ItemStatus, WriteOptions
from resolvers.products import ProductFilter, ProductRow, ProductSort
from resolvers.validation import parse
from rest_compat.body_docs import array_of, json_body, schema_of
from rest_compat.common import caller_with, json_object, listing, runtime
from rest_compat.envelopes import PLAIN_ERRORS, BulkCreated, BulkUpdated, Empty, Page, Product
from rest_compat.errors import field_error_out

PREFIX = "/api/v1/products"
router = APIRouter(prefix=PREFIX, tags=["Products API"], responses=PLAIN_ERRORS)
reader = caller_with("products:read")
writer = caller_with("products:write")
M = TypeVar("M", bound=BaseModel)

# The surface's four item statuses; the counts below follow the same grouping.
_WIRE_STATUS: dict[ItemStatus, str] = {
    "created": "created",
    "updated": "updated",
    "unchanged": "updated",
    "skipped": "skipped",
    "not_found": "error",
    "error": "error",
}


class BulkCreate(BaseModel):
    products: list[Any]
    supplier_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    skip_duplicates: bool = False
    dry_run: bool = False


class BulkUpdate(BaseModel):
    products: list[Any]
    skip_not_found: bool = False
    dry_run: bool = False


PRODUCT = schema_of(ProductFields)


def _bulk_body(model: type[BaseModel]) -> dict[str, Any]:
    envelope = schema_of(model)
    envelope["properties"]["products"] = array_of(PRODUCT, PRODUCTS_API.max_items)
    return json_body(envelope)


def product_out(row: ProductRow) -> dict[str, Any]:
    p = row.product
    return {
        "id": str(p.id),
        "ean": p.ean,
        "name": p.name,
        "barcode": p.barcode,
        "reference": p.reference,
        "price": p.price,
        "cost_price": p.cost_price,
        "weight": p.weight,
        "is_active": p.is_active,
        "supplier_id": str(p.supplier_id) if p.supplier_id else None,
        "supplier_code": p.supplier_code,
        "ean_checksum_valid": p.ean_checksum_valid,
        "created_at": isoformat_z(p.created_at),
        "updated_at": isoformat_z(p.updated_at),
    }


def _item_out(result: ItemResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "ean": result.ean,
        "id": str(result.id) if result.id else None,
        "status": _WIRE_STATUS[result.status],
        "changed_fields": result.changed_fields,
        "errors": [field_error_out(e) for e in result.errors],
        "warnings": [field_error_out(w) for w in result.warnings],
    }


async def _object(request: Request) -> dict[str, Any]:
    """The JSON object body; bytes that are not JSON at all are a 400, not a 422."""
    try:
        return await json_object(request)
    except ValidationFailed as exc:
        if exc.errors[0].code != "json_invalid":
            raise
        # A bare DomainError is the 400 of rest_compat.common.status_of.
        raise DomainError(message=exc.message, code="json_invalid", field="body") from exc


async def _envelope(request: Request, model: type[M]) -> M:
    parsed, errors = parse(model, await _object(request))
    if parsed is None:
        raise ValidationFailed.of(errors)
    return parsed


async def _bulk(
    request: Request, caller: Caller, items: list[Any], options: WriteOptions, counted: str
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        batch = await products.write_batch(
            session, caller, items=items, options=options, max_items=PRODUCTS_API.max_items
        )
    results = [_item_out(r) for r in batch.results]
    return OrjsonResponse(
        {
            counted: sum(r["status"] == counted for r in results),
            "skipped": sum(r["status"] == "skipped" for r in results),
            "errors": sum(r["status"] == "error" for r in results),
            "dry_run": options.dry_run,
            "results": results,
        }
    )


# The bulk routes come before /{id}, whose id is typed as a UUID besides: "bulk" can
# never be taken for a product id.
@router.post("/bulk", response_model=BulkCreated, openapi_extra=_bulk_body(BulkCreate))
async def bulk_create(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await _envelope(request, BulkCreate)
    options = WriteOptions(
        mode="create",
        skip_existing=body.skip_duplicates,
        default_supplier_code=body.supplier_code,
        dry_run=body.dry_run,
        ean_lengths=PRODUCTS_API.ean_lengths,
    )
    return await _bulk(request, caller, body.products, options, "created")


@router.patch("/bulk", response_model=BulkUpdated, openapi_extra=_bulk_body(BulkUpdate))
async def bulk_update(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await _envelope(request, BulkUpdate)
    options = WriteOptions(
        mode="update",
        skip_missing=body.skip_not_found,
        dry_run=body.dry_run,
        ean_lengths=PRODUCTS_API.ean_lengths,
    )
    return await _bulk(request, caller, body.products, options, "updated")


@router.get("", response_model=Page[Product])
async def list_products(
    request: Request,
    skip: int = Query(0),
    limit: int = Query(50),
    search: str | None = None,
    is_active: bool | None = None,
    supplier_id: uuid.UUID | None = None,
    sort_by: Literal["created_at", "name", "price"] = "created_at",
    sort_order: Literal["asc", "desc"] = "desc",
    caller: Caller = Depends(reader),
) -> OrjsonResponse:
    flt = ProductFilter(search=search, is_active=is_active, supplier_id=supplier_id)
    async with runtime(request).db.read() as session:
        page = await products.list_products(
            session,
            caller,
            filters=flt,
            sort=ProductSort(sort_by, sort_order),
            limit=limit,
            offset=skip,
        )
    return listing([product_out(r) for r in page.rows], page.total, skip, limit)


@router.get("/{id}", response_model=Product)
async def get_product(
    request: Request, id: uuid.UUID, caller: Caller = Depends(reader)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        row = await products.get_product(session, caller, id=id)
    return OrjsonResponse(product_out(row))


@router.post("", status_code=201, response_model=Product, openapi_extra=json_body(PRODUCT))
async def create_product(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await _object(request)
    async with runtime(request).db.transaction() as session:
        _, row = await products.write_one(
            session, caller, data=body, mode="create", ean_lengths=PRODUCTS_API.ean_lengths
        )
    return OrjsonResponse(product_out(row), status_code=201)


@router.patch("/{id}", response_model=Product, openapi_extra=json_body(PRODUCT))
async def update_product(
    request: Request, id: uuid.UUID, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    body = await _object(request)
    async with runtime(request).db.transaction() as session:
        _, row = await products.write_one(
            session, caller, data=body, mode="update", id=id, ean_lengths=PRODUCTS_API.ean_lengths
        )
    return OrjsonResponse(product_out(row))


@router.delete("/{id}", response_model=Empty)
async def delete_product(
    request: Request, id: uuid.UUID, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        await products.delete_product(session, caller, id=id)
    return OrjsonResponse({})
