"""GraphQL mutations to activate or deactivate a product without a full update."""

import strawberry

from pim.auth import Caller
from pim.db import DbSession
from resolvers import products
from resolvers.products import ProductRow
from schema.context import Info, parse_id
from schema.errors import run_mutation
from schema.products import Product, ProductPayload


async def _set_active(
    info: Info, active: bool, id: strawberry.ID | None, ref: str | None
) -> ProductPayload:
    async def body(session: DbSession, caller: Caller) -> ProductRow:
        product_id = parse_id(id) if id is not None else None
        return await products.set_active(session, caller, active=active, id=product_id, ref=ref)

    row, errors = await run_mutation(info, body)
    return ProductPayload(product=Product.from_row(row) if row else None, errors=errors)


@strawberry.type
class ActivationMutation:
    @strawberry.mutation(
        description="Set a product active, by id or by `ref` (reference first, then EAN). "
        "Emits `product.updated` when the status changes."
    )
    async def activate_product(
        self, info: Info, id: strawberry.ID | None = None, ref: str | None = None
    ) -> ProductPayload:
        return await _set_active(info, True, id, ref)

    @strawberry.mutation(
        description="Set a product inactive, by id or by `ref` (reference first, then EAN). "
        "Emits `product.updated` when the status changes."
    )
    async def deactivate_product(
        self, info: Info, id: strawberry.ID | None = None, ref: str | None = None
    ) -> ProductPayload:
        return await _set_active(info, False, id, ref)
