"""The base of the per-request DataLoaders (aiodataloader), Saleor's shape: each lookup is
a small class next to the GraphQL types of its domain, naming the batch lookup of
resolvers/ it runs, and found on the request's context by its class. Adding one touches
its domain's module only, never the context.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from aiodataloader import DataLoader

from pim.auth import Caller
from pim.db import DbSession
from schema.context import Context

K = TypeVar("K")
V = TypeVar("V")
L = TypeVar("L", bound="Loader[Any, Any]")


class Loader(DataLoader[K, V], Generic[K, V]):
    """Values by key, one `lookup` call per batch of keys, for one request."""

    # A resolvers/ function: (session, caller, keys) → values in key order.
    lookup: ClassVar[Callable[[DbSession, Caller, Sequence[Any]], Awaitable[list[Any]]]]

    def __init__(self, context: Context, caller: Caller) -> None:
        super().__init__()
        self._context = context
        self._caller = caller

    @classmethod
    def of(cls: type[L], context: Context) -> L:
        """This request's loader of this class, made on first use."""
        loader = context.loaders.get(cls)
        if loader is None:
            # The caller is checked once, where the first value is asked for.
            loader = context.loaders[cls] = cls(context, context.caller())
        return loader  # type: ignore[return-value]  # the map holds one loader per class

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        # Each batch has its own session: loaders of one request run concurrently.
        async with self._context.runtime.db.read() as session:
            return await type(self).lookup(session, self._caller, keys)
