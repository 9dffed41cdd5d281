"""Commerce platform clients: one module per platform behind one interface (connectors.base).

`ADAPTERS` maps a platform name to its adapter class; each platform module adds itself.
"""

from connectors import (  # noqa: F401  (each module registers its adapter when imported)
    amazon,
    cdiscount,
    fnac,
    google_merchant,
    medusa,
    mirakl,
    saleor,
    sap_commerce,
    sfcc,
    shopware,
    squarespace,
    sylius,
    wizishop,
)
from connectors.base import ADAPTERS, PlatformAdapter, adapter_for

__all__ = ["ADAPTERS", "PlatformAdapter", "adapter_for"]
