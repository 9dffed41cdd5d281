"""GraphQL types, queries and mutations for products."""

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from pim.auth import Caller
from pim.db import DbSession
from resolvers import products
from resolvers.policies import BULK_BATCH, UPSERT_BATCH, BatchPolicy
from resolvers.product_writes import ItemResult, WriteOptions
from resolvers.products import ProductFilter, ProductPage, ProductRow, ProductSort
from schema.catalog import Brand, BrandLoader, Category, CategoryLoader, Supplier, SupplierLoader
from schema.context import Info, parse_id
from schema.errors import UserError, run_mutation, run_query
from schema.prices import ChannelPricesLoader
from schema.selection import selected_below
from schema.stock import SupplierStocksLoader


@strawberry.enum(description="Lifecycle status of a product.")
class ProductStatus(Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"
    DELETED = "deleted"


@strawberry.type(description="Stock held by one supplier for a product.")
class SupplierStock:
    supplier: Supplier
    quantity: int
    supplier_reference: str | None
    updated_at: datetime


@strawberry.type(description="The price of a product on one sales channel's price list.")
class ChannelPrice:
    channel: str
    price_list: str
    currency: str
    price: float
    updated_at: datetime


@strawberry.type(description="A product of the catalog, identified by its EAN within the account.")
class Product:
    id: strawberry.ID
    ean: str | None
    ean_checksum_valid: bool = strawberry.field(
        description="False when the EAN's check digit is wrong (accepted and flagged)."
    )
    name: str | None
    reference: str | None = strawberry.field(description="Manufacturer reference / SKU.")
    barcode: str | None
    asin: str | None
    upc: str | None
    gtin: str | None
    external_id: str | None
    url_slug: str | None
    brand_name: str | None
    supplier_code: str | None = strawberry.field(description="Import source / supplier code.")
    category_name: str | None = strawberry.field(description="Free-text category (WinDev).")
    description: str | None
    short_description: str | None
    promotional_text: str | None
    status: ProductStatus
    is_active: bool
    lifecycle_status: str | None
    discontinued: bool | None
    end_of_life_date: date | None
    price: float | None = strawberry.field(description="Selling price, VAT included (EUR).")
    cost_price: float | None = strawberry.field(description="Purchase price, VAT excluded (EUR).")
    tax_rate: float | None
    weight: float | None = strawberry.field(description="Weight in kg.")
    width: float | None = strawberry.field(description="Width in cm.")
    height: float | None = strawberry.field(description="Height in cm.")
    depth: float | None = strawberry.field(description="Depth in cm.")
    unit_of_measure: str | None
    package_length: float | None
    package_width: float | None
    package_height: float | None
    package_weight: int | None = strawberry.field(description="Package weight in grams.")
    package_quantity: int | None
    min_order_quantity: int | None
    max_order_quantity: int | None
    order_increment: int | None
    lead_time_days: int | None
    backorder_allowed: bool | None
    preorder_available: bool | None
    requires_quote: bool | None
    is_b2b_only: bool | None
    hs_code: str | None
    country_of_origin: str | None
    dangerous_goods: bool | None
    dangerous_goods_class: str | None
    reach_compliant: bool | None
    rohs_compliant: bool | None
    ce_marked: bool | None
    weee_category: str | None
    energy_class: str | None
    recyclable: bool | None
    eco_friendly: bool | None
    carbon_footprint_kg: float | None
    warranty_duration: int | None = strawberry.field(description="Warranty in months.")
    warranty_type: str | None
    return_policy_days: int | None
    return_allowed: bool | None
    color: str | None
    color_secondary: str | None
    size: str | None
    material: str | None
    finish: str | None
    style: str | None
    pattern: str | None
    technical_specs: JSON | None
    compatibility: JSON | None
    stock: int | None = strawberry.field(description="Generic stock quantity.")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    brand_id: strawberry.Private[Any]
    category_id: strawberry.Private[Any]
    supplier_id: strawberry.Private[Any]
    model_id: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: ProductRow) -> "Product":
        record = row.product.values
        # Made without __init__: the row's columns become the attributes the plain
        # fields read, in one copy, instead of seventy keyword arguments per product.
        # Every field is a column of the row or one of the values set below.
        product = cls.__new__(cls)
        attributes = product.__dict__
        attributes.update(row.product.pairs())
        attributes["id"] = strawberry.ID(str(record["id"]))
        attributes["status"] = _STATUSES[products.shown_status(record)]
        attributes["brand_name"] = row.brand_name
        attributes["stock"] = row.stock
        attributes["is_active"] = products.is_active(record)
        attributes["model_id"] = record["id"]
        return product

    @strawberry.field(description="The brand.")
    async def brand(self, info: Info) -> Brand | None:
        if self.brand_id is None:
            return None
        if self.brand_name is not None:
            # Product reads join the brand's name already: no query needed.
            return Brand(id=strawberry.ID(str(self.brand_id)), name=self.brand_name)
        model = await BrandLoader.of(info.context).load(self.brand_id)
        return Brand.from_model(model) if model else None

    @strawberry.field(description="The category (batched per request).")
    async def category(self, info: Info) -> Category | None:
        if self.category_id is None:
            return None
        model = await CategoryLoader.of(info.context).load(self.category_id)
        return Category.from_model(model) if model else None

    @strawberry.field(description="The supplier the product comes from (batched per request).")
    async def supplier(self, info: Info) -> Supplier | None:
        if self.supplier_id is None:
            return None
        model = await SupplierLoader.of(info.context).load(self.supplier_id)
        return Supplier.from_model(model) if model else None

    @strawberry.field(description="Stock per supplier (batched per request).")
    async def supplier_stocks(self, info: Info) -> list[SupplierStock]:
        offers = await SupplierStocksLoader.of(info.context).load(self.model_id)
        return [
            SupplierStock(
                supplier=Supplier.from_model(supplier),
                quantity=offer.stock,
                supplier_reference=offer.supplier_reference,
                updated_at=offer.updated_at,
            )
            for offer, supplier in offers
        ]

    @strawberry.field(description="Prices on the channels' price lists (batched per request).")
    async def channel_prices(self, info: Info) -> list[ChannelPrice]:
        items = await ChannelPricesLoader.of(info.context).load(self.model_id)
        return [
            ChannelPrice(
                channel=price_list.channel,
                price_list=price_list.name,
                currency=price_list.currency,
                price=item.channel_price,
                updated_at=item.updated_at,
            )
            for item, price_list in items
        ]


_STATUSES = {status.value: status for status in ProductStatus}

# The product columns a Product field reads, where it is not the column of its name
# (brand_name and stock come from the joins every product read makes).
_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "status": products.STATUS_COLUMNS, "is_active": products.STATUS_COLUMNS, "brand": ("brand_id",),
    "category": ("category_id",), "supplier": ("supplier_id",), "supplier_stocks": ("id",),
    "channel_prices": ("id",), "brand_name": (), "stock": (),
}  # fmt: skip
_COLUMNS_BY_NAME: dict[str, tuple[str, ...]] = {
    "__typename": (),
    **{
        (field.graphql_name or to_camel_case(field.python_name)): _FIELD_COLUMNS.get(
            field.python_name, (field.python_name,)
        )
        for field in get_object_definition(Product, strict=True).fields
    },
}
# What from_row reads whatever is selected.
_ALWAYS_READ = ("id", *products.STATUS_COLUMNS)


def node_columns(info: Info, *path: str) -> tuple[str, ...] | None:
    """The product columns the products at `path` below the resolving field need; None
    (every column) when the query selects nothing there."""
    names = selected_below(info, *path)
    if names is None:
        return None
    columns = [c for name in names for c in _COLUMNS_BY_NAME[name]]
    return tuple(dict.fromkeys((*_ALWAYS_READ, *columns)))


def _edge_cursor(root: "ProductEdge") -> str:
    # Encoded only when asked for: most pages are read without their cursors.
    return root.page.cursor(root.row)


@strawberry.type
class ProductEdge:
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: Product
    page: strawberry.Private[ProductPage]
    row: strawberry.Private[ProductRow]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A page of products (Relay connection), keyset-paginated.")
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Products matching the filters, all pages.")


@strawberry.type(description="Changes since a point in time, deletions included.")
class ProductDelta:
    nodes: list[Product]
    total_count: int
    next_since: datetime = strawberry.field(
        description="Pass as `since` for the next call; every earlier change has been returned."
    )
    has_more: bool


@strawberry.enum
class ProductSortField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    PRICE = "price"
    EAN = "ean"


@strawberry.enum
class SortOrder(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input
class ProductFilterInput:
    search: str | None = strawberry.UNSET
    supplier_code: str | None = strawberry.UNSET
    brand_id: strawberry.ID | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET
    status: ProductStatus | None = strawberry.UNSET
    updated_since: datetime | None = strawberry.UNSET


def _filter(value: ProductFilterInput | None) -> ProductFilter:
    if value is None:
        return ProductFilter()
    given = {k: v for k, v in vars(value).items() if v is not strawberry.UNSET and v is not None}
    if "brand_id" in given:
        given["brand_id"] = parse_id(given["brand_id"], "brandId")
    if "category_id" in given:
        given["category_id"] = parse_id(given["category_id"], "categoryId")
    if "status" in given:
        given["status"] = given["status"].value
    return ProductFilter(**given)


@strawberry.input(description="Writable product fields. Omitted fields are left as they are.")
class ProductInput:
    ean: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    brand_name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    short_description: str | None = strawberry.UNSET
    promotional_text: str | None = strawberry.UNSET
    reference: str | None = strawberry.UNSET
    supplier_code: str | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.UNSET
    category_name: str | None = strawberry.UNSET
    barcode: str | None = strawberry.UNSET
    asin: str | None = strawberry.UNSET
    upc: str | None = strawberry.UNSET
    gtin: str | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET
    url_slug: str | None = strawberry.UNSET
    status: ProductStatus | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET
    lifecycle_status: str | None = strawberry.UNSET
    discontinued: bool | None = strawberry.UNSET
    end_of_life_date: date | None = strawberry.UNSET
    price: float | None = strawberry.UNSET
    cost_price: float | None = strawberry.UNSET
    tax_rate: float | None = strawberry.UNSET
    stock: int | None = strawberry.UNSET
    weight: float | None = strawberry.UNSET
    width: float | None = strawberry.UNSET
    height: float | None = strawberry.UNSET
    depth: float | None = strawberry.UNSET
    unit_of_measure: str | None = strawberry.UNSET
    package_length: float | None = strawberry.UNSET
    package_width: float | None = strawberry.UNSET
    package_height: float | None = strawberry.UNSET
    package_weight: int | None = strawberry.UNSET
    package_quantity: int | None = strawberry.UNSET
    min_order_quantity: int | None = strawberry.UNSET
    max_order_quantity: int | None = strawberry.UNSET
    order_increment: int | None = strawberry.UNSET
    lead_time_days: int | None = strawberry.UNSET
    backorder_allowed: bool | None = strawberry.UNSET
    preorder_available: bool | None = strawberry.UNSET
    requires_quote: bool | None = strawberry.UNSET
    is_b2b_only: bool | None = strawberry.UNSET
    hs_code: str | None = strawberry.UNSET
    country_of_origin: str | None = strawberry.UNSET
    dangerous_goods: bool | None = strawberry.UNSET
    dangerous_goods_class: str | None = strawberry.UNSET
    reach_compliant: bool | None = strawberry.UNSET
    rohs_compliant: bool | None = strawberry.UNSET
    ce_marked: bool | None = strawberry.UNSET
    weee_category: str | None = strawberry.UNSET
    energy_class: str | None = strawberry.UNSET
    recyclable: bool | None = strawberry.UNSET
    eco_friendly: bool | None = strawberry.UNSET
    carbon_footprint_kg: float | None = strawberry.UNSET
    warranty_duration: int | None = strawberry.UNSET
    warranty_type: str | None = strawberry.UNSET
    return_policy_days: int | None = strawberry.UNSET
    return_allowed: bool | None = strawberry.UNSET
    color: str | None = strawberry.UNSET
    color_secondary: str | None = strawberry.UNSET
    size: str | None = strawberry.UNSET
    material: str | None = strawberry.UNSET
    finish: str | None = strawberry.UNSET
    style: str | None = strawberry.UNSET
    pattern: str | None = strawberry.UNSET
    technical_specs: JSON | None = strawberry.UNSET
    compatibility: JSON | None = strawberry.UNSET


def _fields(value: ProductInput) -> dict[str, Any]:
    """Only what the client set: UNSET fields stay out, explicit nulls stay in."""
    data: dict[str, Any] = {}
    for key, item in vars(value).items():
        if item is strawberry.UNSET:
            continue
        if isinstance(item, Enum):
            item = item.value
        elif isinstance(item, date | datetime):
            item = item.isoformat()
        data[key] = item
    return data


@strawberry.enum(description="What happened to one item of a batch.")
class ItemStatus(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    NOT_FOUND = "not_found"
    ERROR = "error"


@strawberry.type
class ProductPayload:
    product: Product | None
    created: bool = False
    warnings: list[UserError] = strawberry.field(default_factory=list)
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The result of one batch item, in input order.")
class ProductItemResult:
    index: int
    status: ItemStatus
    ean: str | None
    reference: str | None
    id: strawberry.ID | None
    changed_fields: list[str]
    errors: list[UserError]
    warnings: list[UserError]

    @classmethod
    def from_result(cls, result: ItemResult) -> "ProductItemResult":
        return cls(
            index=result.index,
            status=ItemStatus(result.status),
            ean=result.ean,
            reference=result.reference,
            id=strawberry.ID(str(result.id)) if result.id else None,
            changed_fields=result.changed_fields,
            errors=[UserError.from_field_error(e) for e in result.errors],
            warnings=[UserError.from_field_error(w) for w in result.warnings],
        )


@strawberry.type
class ProductBatchPayload:
    total: int
    created: int
    updated: int
    unchanged: int
    skipped: int
    failed: int
    dry_run: bool = strawberry.field(
        description="Nothing was written: the results are those the real call would give, "
        "except that a product it would create has no id yet."
    )
    results: list[ProductItemResult]
    errors: list[UserError]


@strawberry.type
class DeleteProductPayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type
class ProductQuery:
    @strawberry.field(description="One live product, by id or by EAN.")
    async def product(
        self, info: Info, id: strawberry.ID | None = None, ean: str | None = None
    ) -> Product | None:
        product_id = parse_id(id) if id is not None else None
        row = await run_query(info, products.find_product, id=product_id, ean=ean)
        return Product.from_row(row) if row else None

    @strawberry.field(description="Products, filtered and sorted, with keyset cursors.")
    async def products(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        filter: ProductFilterInput | None = None,
        sort: ProductSortField = ProductSortField.CREATED_AT,
        order: SortOrder = SortOrder.ASC,
    ) -> ProductConnection:
        page = await run_query(
            info,
            products.list_products,
            filters=_filter(filter),
            sort=ProductSort(sort.value, order.value),
            limit=first,
            after=after,
            columns=node_columns(info, "edges", "node"),
        )
        edges = [ProductEdge(node=Product.from_row(row), page=page, row=row) for row in page.rows]
        return ProductConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            total_count=page.total,
        )

    @strawberry.field(
        description="Changes at or after `since`, oldest first, deletions included. "
        "Feed `nextSince` back until `hasMore` is false."
    )
    async def products_delta(self, info: Info, since: datetime, first: int = 100) -> ProductDelta:
        page = await run_query(
            info,
            products.delta,
            since=since,
            limit=first,
            memo=info.context.runtime.memo,
            columns=node_columns(info, "nodes"),
        )
        return ProductDelta(
            nodes=[Product.from_row(r) for r in page.rows],
            total_count=page.total,
            next_since=page.high_water,
            has_more=len(page.rows) >= first,
        )


async def _write_one(
    info: Info, data: dict[str, Any], mode: products.WriteMode, **target: Any
) -> ProductPayload:
    done, errors = await run_mutation(
        info, lambda s, caller: products.write_one(s, caller, data=data, mode=mode, **target)
    )
    if done is None:
        return ProductPayload(product=None, errors=errors)
    result, row = done
    return ProductPayload(
        product=Product.from_row(row),
        created=result.status == "created",
        warnings=[UserError.from_field_error(w) for w in result.warnings],
    )


async def _write_batch(
    info: Info, inputs: list[ProductInput], options: WriteOptions, policy: BatchPolicy
) -> ProductBatchPayload:
    """Every batch mutation: one writer call, per-item results in input order."""

    items = [_fields(i) for i in inputs]
    batch, errors = await run_mutation(
        info,
        lambda s, caller: products.write_batch(
            s, caller, items=items, options=options, max_items=policy.max_items
        ),
    )
    results = batch.results if batch else []
    return ProductBatchPayload(
        total=len(results),
        created=sum(r.status == "created" for r in results),
        updated=sum(r.status == "updated" for r in results),
        unchanged=sum(r.status == "unchanged" for r in results),
        skipped=sum(r.status == "skipped" for r in results),
        failed=sum(r.status in ("error", "not_found") for r in results),
        dry_run=options.dry_run,
        results=[ProductItemResult.from_result(r) for r in results],
        errors=errors,
    )


@strawberry.type
class ProductMutation:
    @strawberry.mutation(
        description="Create or update one product, matched by EAN (name required to create)."
    )
    async def upsert_product(self, info: Info, input: ProductInput) -> ProductPayload:
        return await _write_one(info, _fields(input), "upsert")

    @strawberry.mutation(
        description=f"Create or update up to {UPSERT_BATCH.max_items} products; "
        "each item stands alone."
    )
    async def upsert_products(
        self, info: Info, inputs: list[ProductInput], dry_run: bool = False
    ) -> ProductBatchPayload:
        options = WriteOptions(mode="upsert", dry_run=dry_run)
        return await _write_batch(info, inputs, options, UPSERT_BATCH)

    @strawberry.mutation(
        description=f"Create up to {BULK_BATCH.max_items} new products, matched by EAN; "
        "each item stands alone. An existing EAN is skipped with `skipDuplicates`, "
        "otherwise reported as a CONFLICT error on its item. `supplierCode` applies to "
        "every item that does not name its own."
    )
    async def create_products(
        self,
        info: Info,
        inputs: list[ProductInput],
        supplier_code: str | None = None,
        skip_duplicates: bool = False,
        dry_run: bool = False,
    ) -> ProductBatchPayload:
        options = WriteOptions(
            mode="create",
            skip_existing=skip_duplicates,
            default_supplier_code=supplier_code,
            dry_run=dry_run,
        )
        return await _write_batch(info, inputs, options, BULK_BATCH)

    @strawberry.mutation(
        description=f"Update up to {BULK_BATCH.max_items} products matched by EAN, with "
        "only the given fields; nulls are ignored. An unknown EAN is skipped with "
        "`skipNotFound`, otherwise reported as NOT_FOUND on its item."
    )
    async def update_products(
        self,
        info: Info,
        inputs: list[ProductInput],
        skip_not_found: bool = False,
        dry_run: bool = False,
    ) -> ProductBatchPayload:
        options = WriteOptions(mode="update", skip_missing=skip_not_found, dry_run=dry_run)
        return await _write_batch(info, inputs, options, BULK_BATCH)

    @strawberry.mutation(
        description="Replace a product's core fields (PUT): the External API's product fields "
        "that are omitted become null. Prices, stock and extended attributes are kept."
    )
    async def replace_product(self, info: Info, ean: str, input: ProductInput) -> ProductPayload:
        return await _write_one(info, {"ean": ean, **_fields(input)}, "replace", ean=ean)

    @strawberry.mutation(description="Update only the given fields (PATCH); nulls are ignored.")
    async def update_product(
        self,
        info: Info,
        input: ProductInput,
        id: strawberry.ID | None = None,
        ean: str | None = None,
    ) -> ProductPayload:
        if id is not None:
            return await _write_one(info, _fields(input), "update", id=parse_id(id))
        return await _write_one(info, _fields(input), "update", ean=ean)

    @strawberry.mutation(description="Soft-delete a product; it shows in delta sync as deleted.")
    async def delete_product(
        self, info: Info, id: strawberry.ID | None = None, ean: str | None = None
    ) -> DeleteProductPayload:
        async def body(session: DbSession, caller: Caller) -> Any:
            product_id = parse_id(id) if id is not None else None
            return await products.delete_product(session, caller, id=product_id, ean=ean)

        deleted, errors = await run_mutation(info, body)
        return DeleteProductPayload(
            deleted_id=strawberry.ID(str(deleted)) if deleted else None, errors=errors
        )
