"""GraphQL mutation for batch stock updates by EAN, and the stock-per-supplier DataLoader."""

import uuid

import strawberry

from models import Supplier, SupplierProduct
from resolvers import loaders, stock
from schema.batches import EanBatchPayload, run_batch
from schema.context import Info
from schema.dataloaders import Loader


class SupplierStocksLoader(Loader[uuid.UUID, list[tuple[SupplierProduct, Supplier]]]):
    """A product's stock per supplier, with the supplier."""

    lookup = loaders.supplier_stocks


@strawberry.input(description="New stock of one product; a supplier code targets that supplier.")
class StockUpdateInput:
    ean: str
    stock: int
    supplier_code: str | None = None


@strawberry.type
class StockMutation:
    @strawberry.mutation(
        description=f"Set the stock of up to {stock.MAX_ITEMS} products by EAN: generic stock, "
        "or the supplier-level stock when `supplierCode` is given. Emits `stock.updated`."
    )
    async def update_stock(self, info: Info, items: list[StockUpdateInput]) -> EanBatchPayload:
        raw = [{"ean": i.ean, "stock": i.stock, "supplier_code": i.supplier_code} for i in items]
        return await run_batch(info, stock.update_stock, raw)
