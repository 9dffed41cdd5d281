"""Which scopes allow which operations, whatever the surface.

A surface may ask for its own scope on top (the External API wants
`ext:products:read`), but the operation itself accepts any scope that grants it,
so a key can do through GraphQL exactly what its scopes allow through REST.
"""

from pim.auth import Caller
from resolvers.errors import Forbidden

PRODUCT_READ = frozenset({"ext:products:read", "products:read", "windev:read"})
PRODUCT_WRITE = frozenset({"ext:products:write", "products:write", "windev:write", "windev:sync"})
SETTINGS_MANAGE = frozenset({"settings:manage"})


def require(caller: Caller, scopes: frozenset[str]) -> None:
    if not caller.has_any(scopes):
        wanted = " ou ".join(sorted(scopes))
        raise Forbidden(message=f"Portée requise manquante : {wanted}.")
