"""The one interface every platform adapter implements, and the values it exchanges.

Adapters speak their platform's real public API (auth, endpoints, payloads,
pagination, rate-limit signals) and nothing else: they never touch our database.
The sync jobs hand them plain values and store what comes back (links to the
platform's ids, content hashes, per-product results).
"""

import importlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.http import ConnectorUnusable, PlatformHttp, Rate

# Push in chunks of this many products: the spec's figure, and what most platforms
# accept per batch call.
CHUNK_SIZE = 100


class Given(dict[str, Any]):
    """A connector's credentials or options. A key an adapter requires (`given[key]`)
    that the connector lacks stops its test or its job with a message naming the key,
    where a KeyError would have been an internal error."""

    def __init__(self, values: Mapping[str, Any], platform: str, name: str) -> None:
        super().__init__(values)
        self.platform = platform
        self.name = name

    def __missing__(self, key: str) -> Any:
        raise ConnectorUnusable(f"{self.platform} : « {key} » manquant dans {self.name}")


@dataclass(frozen=True)
class ConnectorConfig:
    """What an adapter needs to reach one store or account on its platform."""

    platform: str
    base_url: str | None
    credentials: dict[str, str]  # decrypted, never logged
    options: dict[str, Any] = field(default_factory=dict)  # store hash, locale, marketplace…
    channel: str | None = None
    currency: str = "EUR"
    # How long an adapter waits for the platform's asynchronous processing (a bulk
    # queue, an import job) before reporting the items as still pending, and how often
    # it asks (settings connector_async_wait_seconds, connector_poll_interval_seconds).
    async_wait_seconds: float = 600.0
    poll_interval_seconds: float = 5.0
    # The connector's id: its requests are paced under this key, whichever worker sends
    # them (several tenants reach the same API address: Amazon, Google, Squarespace…).
    connector_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("credentials", "options"):
            object.__setattr__(self, name, Given(getattr(self, name), self.platform, name))


@dataclass(frozen=True)
class OutgoingProduct:
    """A product as we push it; `external_id` is the platform's id when already linked."""

    product_id: uuid.UUID
    sku: str
    ean: str | None
    name: str
    description: str | None = None
    short_description: str | None = None
    brand: str | None = None
    price: float | None = None
    cost_price: float | None = None
    stock: int | None = None
    weight: float | None = None
    is_active: bool = True
    external_id: str | None = None


@dataclass(frozen=True)
class StockLevel:
    product_id: uuid.UUID
    sku: str
    quantity: int
    external_id: str | None = None


@dataclass(frozen=True)
class PriceLevel:
    product_id: uuid.UUID
    sku: str
    price: float
    currency: str = "EUR"
    external_id: str | None = None


@dataclass(frozen=True)
class RemoteProduct:
    """A product as the platform returns it, mapped onto our field names."""

    external_id: str
    sku: str | None = None
    ean: str | None = None
    name: str | None = None
    description: str | None = None
    brand: str | None = None
    price: float | None = None
    stock: int | None = None
    weight: float | None = None
    is_active: bool | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one product of a push, in the order it was given."""

    product_id: uuid.UUID
    ok: bool
    external_id: str | None = None
    error: str | None = None
    transient: bool = False


NOT_LINKED = "produit non lié à la plateforme : poussez d'abord les produits"


def split_linked(
    items: Sequence[StockLevel] | Sequence[PriceLevel],
) -> tuple[list[Any], dict[uuid.UUID, ItemOutcome]]:
    """For platforms that address products by their own id: the linked items, and an
    error outcome for each item never pushed (no external id yet)."""
    linked = [item for item in items if item.external_id]
    missing = {
        item.product_id: ItemOutcome(item.product_id, ok=False, error=NOT_LINKED)
        for item in items
        if not item.external_id
    }
    return linked, missing


class PlatformAdapter(ABC):
    platform: ClassVar[str]
    # The platform's documented request rate, paced per connector (None: not paced).
    pace: ClassVar[Rate | None] = None
    # Products per push_products call: CHUNK_SIZE, or more where the platform takes a
    # bulk file (Mirakl, Fnac, Amazon feeds); a connector's option `chunk_size` may
    # lower it (smaller files, sooner outcomes), never raise it past the platform's.
    chunk_size: int = CHUNK_SIZE
    # Stock or price levels per push_stock/push_prices call: `chunk_size`, unless the
    # platform takes products in bulk files but levels one call per item (Amazon):
    # small chunks keep what a failure sends again, and the job's progress, small.
    level_chunk_size: int | None = None

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        self.config = config
        self.http = http
        # Platform ids of products created by this adapter, noted the moment an answer
        # shows them: when a later call of the same push fails, the job records them
        # and never sends those products as creates again.
        self.created: dict[uuid.UUID, str] = {}
        if wanted := config.options.get("chunk_size"):
            self.chunk_size = max(1, min(int(wanted), type(self).chunk_size))
        if self.pace is not None and http.bucket is None:
            key = config.connector_id or f"{self.platform}:{config.base_url or ''}"
            http.bucket = http.buckets.bucket(key, self.pace.per_second, self.pace.burst)

    def note_created(self, product_id: uuid.UUID, external_id: str) -> None:
        self.created[product_id] = external_id

    async def find_existing(self, products: Sequence["OutgoingProduct"]) -> dict[uuid.UUID, str]:
        """The platform ids of those `products` (none linked yet) that already exist on
        the platform, found by SKU or EAN: asked before sending creates again after a
        failure whose outcome is unknown. Platforms whose writes are upserts by a key of
        ours (SKU, our id) answer nothing: sending again converges."""
        return {}

    @abstractmethod
    async def test(self) -> str:
        """Check authentication and reachability; return a short description (shop name…)."""

    @abstractmethod
    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        """Create or update at most CHUNK_SIZE products; one outcome per product, in order."""

    @abstractmethod
    def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        """Every product of the store, one page at a time, following the platform's pagination."""

    @abstractmethod
    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        """Send quantities only."""

    @abstractmethod
    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        """Send prices only."""


# Every platform by name, with the module of its adapter. A module is imported when its
# platform is first used: a process that never talks to Shopify never loads its client,
# and `pim keys list` loads none.
PLATFORMS: dict[str, str] = {
    "amazon": "connectors.amazon",
    "bigcommerce": "connectors.bigcommerce",
    "cdiscount": "connectors.cdiscount",
    "fnac": "connectors.fnac",
    "google_merchant": "connectors.google_merchant",
    "magento": "connectors.magento",
    "medusa": "connectors.medusa",
    "mirakl": "connectors.mirakl",
    "saleor": "connectors.saleor",
    "sap_commerce": "connectors.sap_commerce",
    "sfcc": "connectors.sfcc",
    "shopify": "connectors.shopify",
    "shopware": "connectors.shopware",
    "squarespace": "connectors.squarespace",
    "sylius": "connectors.sylius",
    "wizishop": "connectors.wizishop",
    "woocommerce": "connectors.woocommerce",
}
# The adapters whose module was imported, by platform name (each registers itself).
ADAPTERS: dict[str, type[PlatformAdapter]] = {}


def register(adapter: type[PlatformAdapter]) -> type[PlatformAdapter]:
    """Class decorator: make a platform known by its `platform` name."""
    ADAPTERS[adapter.platform] = adapter
    return adapter


def adapter_class(platform: str) -> type[PlatformAdapter]:
    """The adapter of a platform named in PLATFORMS, its module imported on first use."""
    if platform not in ADAPTERS:
        importlib.import_module(PLATFORMS[platform])
    return ADAPTERS[platform]


def adapter_for(config: ConnectorConfig, http: PlatformHttp) -> PlatformAdapter:
    return adapter_class(config.platform)(config, http)
