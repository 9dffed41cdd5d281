"""Commerce platform clients: one module per platform behind one interface (connectors.base).

`ADAPTERS` maps a platform name to its adapter class; each platform module adds itself.
"""

from connectors import bigcommerce, magento, shopify, woocommerce  # noqa: F401  (register)
from connectors.base import ADAPTERS, PlatformAdapter, adapter_for

__all__ = ["ADAPTERS", "PlatformAdapter", "adapter_for"]
