"""Which scopes allow which operations, whatever the surface: the one table.

Every operation in resolvers/ calls `require` with its entry here, so a key can do
through GraphQL exactly what its scopes allow through REST. A REST surface asks for
its own scope on top (the External API wants `ext:products:read`), always one the
table grants for the operations its routes call. The table follows the REST
contracts: only the Products API deletes (`products:write`); WinDev's `windev:write`
updates products, stock and prices but creates nothing (creating is `windev:sync`).
"""

from enum import StrEnum
from types import MappingProxyType

from pim.auth import Caller
from resolvers.errors import Forbidden


class Operation(StrEnum):
    PRODUCTS_READ = "products.read"
    PRODUCTS_CREATE = "products.create"
    # Update fields, status, stock and prices of existing products.
    PRODUCTS_UPDATE = "products.update"
    PRODUCTS_DELETE = "products.delete"
    # Find the product a write addresses and read it back: readers and writers alike.
    PRODUCTS_ADDRESS = "products.address"
    # Brands, categories and suppliers: what creating products creates on the way.
    CATALOG_WRITE = "catalog.write"
    IMPORTS_READ = "imports.read"
    IMPORTS_WRITE = "imports.write"
    CONNECTORS_READ = "connectors.read"
    # Connectors, their syncs, webhooks and API keys (MANAGE_SETTINGS in the spec).
    SETTINGS_MANAGE = "settings.manage"


_READ = frozenset({"ext:products:read", "products:read", "windev:read"})
_CREATE = frozenset({"ext:products:write", "products:write", "windev:sync"})
_UPDATE = _CREATE | {"windev:write"}
_MANAGE = frozenset({"settings:manage"})

ALLOWED: MappingProxyType[Operation, frozenset[str]] = MappingProxyType(
    {
        Operation.PRODUCTS_READ: _READ,
        Operation.PRODUCTS_CREATE: _CREATE,
        Operation.PRODUCTS_UPDATE: _UPDATE,
        Operation.PRODUCTS_DELETE: frozenset({"products:write"}),
        Operation.PRODUCTS_ADDRESS: _READ | _UPDATE,
        Operation.CATALOG_WRITE: _CREATE,
        Operation.IMPORTS_READ: frozenset({"imports:read"}),
        Operation.IMPORTS_WRITE: frozenset({"imports:write"}),
        Operation.CONNECTORS_READ: _MANAGE | {"connectors:read"},
        Operation.SETTINGS_MANAGE: _MANAGE,
    }
)


def allows(caller: Caller, operation: Operation) -> bool:
    return caller.has_any(ALLOWED[operation])


def require(caller: Caller, operation: Operation) -> None:
    require_any(caller, ALLOWED[operation])


def require_any(caller: Caller, scopes: frozenset[str]) -> None:
    """One of `scopes`: a REST surface's own scope, asked on top of the operation's."""
    if not caller.has_any(scopes):
        wanted = " ou ".join(sorted(scopes))
        raise Forbidden(message=f"Portée requise manquante : {wanted}.")
