"""Commerce platform clients: one module per platform behind one interface (connectors.base).

`ADAPTERS` maps a platform name to its adapter class; each platform module adds itself.
"""

# Platform modules register their adapter when imported.
from connectors import cdiscount, fnac, sap_commerce, sfcc, sylius, wizishop  # noqa: F401
from connectors.base import ADAPTERS, PlatformAdapter, adapter_for

__all__ = ["ADAPTERS", "PlatformAdapter", "adapter_for"]
