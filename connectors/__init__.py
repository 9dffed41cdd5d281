"""Commerce platform clients: one module per platform behind one interface (connectors.base).

`ADAPTERS` maps a platform name to its adapter class; each platform module adds itself.
"""

from connectors import (  # noqa: F401  (each module registers its adapter when imported)
    amazon,
    bigcommerce,
    cdiscount,
    fnac,
    google_merchant,
    magento,
    medusa,
    mirakl,
    saleor,
    sap_commerce,
    sfcc,
    shopify,
    shopware,
    squarespace,
    sylius,
    wizishop,
    woocommerce,
)
from connectors.base import ADAPTERS, PlatformAdapter, adapter_for

__all__ = ["ADAPTERS", "PlatformAdapter", "adapter_for"]
