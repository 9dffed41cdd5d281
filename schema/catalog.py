"""GraphQL types and fields for brands, categories and suppliers."""

import uuid
from datetime import datetime

import strawberry

from models import Brand as BrandModel
from models import Category as CategoryModel
from models import Supplier as SupplierModel
from pim.auth import Caller
from pim.db import DbSession
from resolvers import catalog, loaders
from schema.context import Info, parse_id
from schema.dataloaders import Loader
from schema.errors import UserError, run_mutation, run_query


@strawberry.type(description="A brand, matched case-insensitively by name.")
class Brand:
    id: strawberry.ID
    name: str

    @classmethod
    def from_model(cls, brand: BrandModel) -> "Brand":
        return cls(id=strawberry.ID(str(brand.id)), name=brand.name)


@strawberry.type(description="A node of the category tree; `level` 0 is a root.")
class Category:
    id: strawberry.ID
    name: str
    slug: str
    parent_id: strawberry.ID | None
    level: int
    sort_order: int
    is_active: bool

    @classmethod
    def from_model(cls, category: CategoryModel) -> "Category":
        return cls(
            id=strawberry.ID(str(category.id)),
            name=category.name,
            slug=category.slug,
            parent_id=strawberry.ID(str(category.parent_id)) if category.parent_id else None,
            level=category.level,
            sort_order=category.sort_order,
            is_active=category.is_active,
        )


@strawberry.type(description="A supplier; its `code` is what imports and WinDev send.")
class Supplier:
    id: strawberry.ID
    code: str
    name: str
    country: str | None
    is_active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, supplier: SupplierModel) -> "Supplier":
        return cls(
            id=strawberry.ID(str(supplier.id)),
            code=supplier.code,
            name=supplier.name,
            country=supplier.country,
            is_active=supplier.is_active,
            created_at=supplier.created_at,
        )


class BrandLoader(Loader[uuid.UUID, BrandModel | None]):
    lookup = loaders.brands


class CategoryLoader(Loader[uuid.UUID, CategoryModel | None]):
    lookup = loaders.categories


class SupplierLoader(Loader[uuid.UUID, SupplierModel | None]):
    lookup = loaders.suppliers


@strawberry.input
class CategoryInput:
    name: str
    parent_id: strawberry.ID | None = None
    slug: str | None = None
    sort_order: int = 0


@strawberry.input
class SupplierInput:
    code: str
    name: str
    country: str | None = None
    is_active: bool = True


@strawberry.type
class CategoryPayload:
    category: Category | None
    errors: list[UserError]


@strawberry.type
class SupplierPayload:
    supplier: Supplier | None
    errors: list[UserError]


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="All brands of the account, by name.")
    async def brands(self, info: Info) -> list[Brand]:
        rows = await run_query(info, catalog.list_brands)
        return [Brand.from_model(b) for b in rows]

    @strawberry.field(description="The category tree, flat: by level, then sort order.")
    async def categories(self, info: Info) -> list[Category]:
        rows = await run_query(info, catalog.list_categories)
        return [Category.from_model(c) for c in rows]

    @strawberry.field(description="Suppliers by name; only active ones unless told otherwise.")
    async def suppliers(self, info: Info, active_only: bool = True) -> list[Supplier]:
        rows = await run_query(info, catalog.list_suppliers, active_only=active_only)
        return [Supplier.from_model(s) for s in rows]


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(description="Create a category under `parentId` (or a root).")
    async def create_category(self, info: Info, input: CategoryInput) -> CategoryPayload:
        async def body(session: DbSession, caller: Caller) -> CategoryModel:
            parent = parse_id(input.parent_id, "parentId") if input.parent_id else None
            data = catalog.CategoryInput(
                name=input.name, parent_id=parent, slug=input.slug, sort_order=input.sort_order
            )
            return await catalog.create_category(session, caller, data=data)

        model, errors = await run_mutation(info, body)
        return CategoryPayload(
            category=Category.from_model(model) if model else None, errors=errors
        )

    @strawberry.mutation(description="Create a supplier with a unique code.")
    async def create_supplier(self, info: Info, input: SupplierInput) -> SupplierPayload:
        data = catalog.SupplierInput(
            code=input.code, name=input.name, country=input.country, is_active=input.is_active
        )
        model, errors = await run_mutation(
            info, lambda s, caller: catalog.create_supplier(s, caller, data=data)
        )
        return SupplierPayload(
            supplier=Supplier.from_model(model) if model else None, errors=errors
        )
