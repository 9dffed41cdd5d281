"""GraphQL mutation for batch price updates by EAN, and the channel prices' DataLoader."""

import uuid

import strawberry

from models import PriceList, PriceListItem
from resolvers import loaders, prices
from schema.batches import EanBatchPayload, run_batch
from schema.context import Info
from schema.dataloaders import Loader


class ChannelPricesLoader(Loader[uuid.UUID, list[tuple[PriceListItem, PriceList]]]):
    """A product's prices on the channels' price lists, with the list."""

    lookup = loaders.channel_prices


@strawberry.input(description="New prices of one product; give at least one of the two.")
class PriceUpdateInput:
    ean: str
    price: float | None = strawberry.field(
        default=None, description="Selling price, VAT included (EUR)."
    )
    cost_price: float | None = strawberry.field(
        default=None, description="Purchase price, VAT excluded (EUR)."
    )


@strawberry.type
class PriceMutation:
    @strawberry.mutation(
        description=f"Set the prices of up to {prices.MAX_ITEMS} products by EAN; an omitted "
        "price keeps its value. Emits `price.updated`."
    )
    async def update_prices(self, info: Info, items: list[PriceUpdateInput]) -> EanBatchPayload:
        raw = [{"ean": i.ean, "price": i.price, "cost_price": i.cost_price} for i in items]
        return await run_batch(info, prices.update_prices, raw)
