"""How our products are named on a platform: the handle made from a SKU, and the
composite "product:variant" external id of platforms where variants are sold.
"""

import re


def handle_for(sku: str) -> str:
    """A product's handle (its URL key, unique on Shopify and Medusa), from its SKU:
    stable and unique like the SKU, so that it identifies the product on the platform."""
    return re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip("-") or "product"


# Platforms where a sellable item is a variant of a product need both ids to update
# it; the link stores them as one external id, "product:variant".
def pair_id(product: str, variant: str) -> str:
    return f"{product}:{variant}"


def split_pair(external_id: str) -> tuple[str, str | None]:
    product, _, variant = external_id.partition(":")
    return product, variant or None
