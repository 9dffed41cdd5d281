"""SQLAlchemy models. Importing this package registers every table on Base.metadata."""

from models.accounts import Account, ApiKey, ProductCountDelta
from models.audit import AuditEvent
from models.automations import Automation
from models.base import Base
from models.catalog import Brand, Category, Supplier
from models.connectors import Connector, ConnectorProductLink, SyncJob
from models.events import Event
from models.imports import ImportFilePart, ImportJob, ImportLog
from models.persisted_queries import PersistedQuery
from models.prices import PriceList, PriceListItem
from models.products import Product, ProductChange
from models.stock import ProductStock, SupplierProduct
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookDispatchState, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "AuditEvent",
    "Automation",
    "Base",
    "Brand",
    "Category",
    "Connector",
    "ConnectorProductLink",
    "Event",
    "ImportFilePart",
    "ImportJob",
    "ImportLog",
    "PersistedQuery",
    "PriceList",
    "PriceListItem",
    "Product",
    "ProductChange",
    "ProductCountDelta",
    "ProductStock",
    "Supplier",
    "SupplierProduct",
    "SyncJob",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDispatchState",
    "WebhookEndpoint",
]
