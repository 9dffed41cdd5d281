"""The response shapes of the REST surfaces, as /openapi.json and /docs show them.

The routes build their bodies as dicts and return them pre-encoded (OrjsonResponse):
FastAPI hands a returned Response to the client as it is, so these models never
validate or serialise anything at run time. They are the documented contract, checked
by tests against the spec's examples and against every response the route tests get
(tests/openapi_check.py). Fields the spec shows in every example of a shape are
required; the others are present in our responses but optional in the contract.
"""

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Shape(BaseModel):
    # A field the contract does not name is a documentation gap the tests catch.
    model_config = ConfigDict(extra="forbid")


# --- External API (/api/v1/ext): success / data / meta / errors -----------------------


class ExtMeta(Shape):
    total: int
    page: int
    page_size: int
    updated_at: datetime = Field(description="Horodatage de la réponse (delta : high-water mark)")


class ExtEnvelope(Shape, Generic[T]):
    success: Literal[True]
    data: T
    meta: ExtMeta
    errors: list[str]


class ExtError(Shape):
    success: Literal[False]
    data: None
    meta: ExtMeta
    errors: list[str] = Field(description="Messages en français, un par champ refusé")


class ExtStatus(Shape):
    status: str
    version: str
    api_key_name: str
    api_key_scopes: list[str]
    timestamp: datetime


class ExtProduct(Shape):
    id: uuid.UUID
    ean: str
    updated_at: datetime
    title: str | None = None
    brand_name: str | None = None
    is_active: bool | None = None
    status: str | None = Field(None, description="active, inactive, archived ; deleted (delta)")
    weight: float | None = None
    width: float | None = None
    height: float | None = None
    depth: float | None = None
    description: str | None = None
    short_description: str | None = None
    reference: str | None = None
    supplier_code: str | None = None
    category_id: uuid.UUID | None = None
    asin: str | None = None
    upc: str | None = None
    gtin: str | None = None
    unit_of_measure: str | None = None
    external_id: str | None = None
    url_slug: str | None = None
    ean_checksum_valid: bool | None = None
    created_at: datetime | None = None
    deleted_at: datetime | None = None


class ExtUpsert(Shape):
    created: bool
    ean: str
    id: uuid.UUID
    product: ExtProduct
    warnings: list[str] | None = None


class ExtBatchItem(Shape):
    ean: str | None
    status: Literal["created", "updated", "error", "not_found"]
    id: uuid.UUID | None
    errors: list[str] | None = None
    warnings: list[str] | None = None


class ExtBatch(Shape):
    total: int
    created: int
    updated: int
    errors: int
    results: list[ExtBatchItem]


# --- WinDev API (/api/v1/windev): success / code / message / data / count -------------


class WinDevEnvelope(Shape, Generic[T]):
    success: Literal[True]
    code: int = Field(description="Le statut HTTP, pour les variables WinDev")
    message: str
    data: T
    count: int = Field(description="Éléments dans `data`")


class WinDevPage(WinDevEnvelope[T], Generic[T]):
    page: int
    pages: int
    total: int = Field(description="Éléments de toutes les pages")


class WinDevError(Shape):
    success: Literal[False]
    code: int
    message: str
    data: None
    count: Literal[0]


class WinDevStatus(Shape):
    api: str
    version: str
    timestamp: datetime
    endpoints: list[str]


class WinDevProductUpdated(Shape):
    id: uuid.UUID
    ean: str | None
    name: str | None
    is_active: bool
    updated_at: datetime


class WinDevProductFound(WinDevProductUpdated):
    reference: str | None
    brand: str | None


class WinDevProductItem(WinDevProductFound):
    price_ht: float | None
    price_ttc: float | None
    stock: int


class WinDevActivation(Shape):
    id: uuid.UUID
    is_active: bool
    status: str


class WinDevSyncItem(Shape):
    reference: str | None
    status: Literal["created", "updated", "error"]
    id: uuid.UUID | None
    errors: list[str] | None = None


class WinDevBatchItem(Shape):
    ean: str | None
    updated: bool
    status: Literal["ok", "not_found", "error"]
    errors: list[str] | None = None


class WinDevCategory(Shape):
    id: uuid.UUID
    name: str
    slug: str | None
    parent_id: uuid.UUID | None
    level: int
    sort_order: int


class WinDevSupplier(Shape):
    id: uuid.UUID
    name: str
    code: str
    is_active: bool
    country: str | None


# --- The plain surfaces (Products, Imports, Connectors, Webhooks, keys, audit) ----------


class FieldErrorOut(Shape):
    field: str
    message: str
    code: str


class PlainError(Shape):
    detail: str = Field(description="Message en français")
    code: str
    field: str | None
    errors: list[FieldErrorOut] = Field(description="Un par champ refusé (422)")


class PageMeta(Shape):
    total: int
    page: int
    per_page: int
    total_pages: int
    has_next: bool
    has_previous: bool


class Page(Shape, Generic[T]):
    items: list[T]
    meta: PageMeta


class Empty(Shape):
    """`{}`: what a deletion answers."""


class Product(Shape):
    id: uuid.UUID
    ean: str
    name: str
    price: float | None
    is_active: bool
    updated_at: datetime
    barcode: str | None = None
    reference: str | None = None
    cost_price: float | None = None
    weight: float | None = None
    supplier_id: uuid.UUID | None = None
    supplier_code: str | None = None
    ean_checksum_valid: bool | None = None
    created_at: datetime | None = None


class BulkItem(Shape):
    index: int
    ean: str | None
    id: uuid.UUID | None
    status: Literal["created", "updated", "skipped", "error"]
    changed_fields: list[str]
    errors: list[FieldErrorOut]
    warnings: list[FieldErrorOut]


class BulkCreated(Shape):
    created: int
    skipped: int
    errors: int
    dry_run: bool | None = None
    results: list[BulkItem] | None = None


class BulkUpdated(Shape):
    updated: int
    skipped: int
    errors: int
    dry_run: bool | None = None
    results: list[BulkItem] | None = None


ImportStatus = Literal[
    "pending", "analyzing", "ready", "processing", "paused", "completed", "failed", "cancelled"
]


class ImportJobCreated(Shape):
    id: uuid.UUID
    status: ImportStatus
    file_name: str
    file_type: str


class ImportJobState(Shape):
    id: uuid.UUID
    status: ImportStatus


class ImportJob(Shape):
    id: uuid.UUID
    file_name: str
    file_type: str
    status: ImportStatus
    total_rows: int | None
    successful_rows: int | None
    failed_rows: int | None
    products_created: int | None
    products_updated: int | None
    started_at: datetime | None
    completed_at: datetime | None
    error_summary: str | None
    file_size: int | None = None
    processed_rows: int | None = None
    last_error: str | None = None
    supplier_code: str | None = None
    dry_run: bool | None = None
    mode: str | None = None
    mapping: dict[str, str] | None = None
    automation_id: uuid.UUID | None = None
    created_at: datetime | None = None


class ImportLog(Shape):
    row_number: int | None
    level: Literal["error", "warning", "info"]
    field: str | None
    message: str
    value: str | None
    timestamp: datetime


class ImportPreview(Shape):
    total_rows: int | None
    preview: list[dict[str, Any]] = Field(description="Les premières lignes, par champ produit")
    validation_errors: list[Any]


class AutomationCreated(Shape):
    id: uuid.UUID
    name: str
    schedule: str
    is_active: bool
    created_at: datetime


class Automation(AutomationCreated):
    supplier_code: str | None = None
    file_source: dict[str, Any] | None = Field(None, description="Sans ses secrets")
    mapping: dict[str, str] | None = None
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_import_job_id: uuid.UUID | None = None
    updated_at: datetime | None = None


class Queued(Shape):
    id: uuid.UUID
    status: Literal["queued"]


class ConnectorSummary(Shape):
    id: uuid.UUID
    name: str
    platform: str
    status: str
    last_sync_at: datetime | None
    created_at: datetime


class SyncStats(Shape):
    products_synced: int
    products_pending: int
    last_error: str | None


class ConnectorDetail(Shape):
    id: uuid.UUID
    name: str
    platform: str
    status: str
    sync_stats: SyncStats
    last_sync_at: datetime | None
    base_url: str | None = None
    channel: str | None = None
    options: dict[str, Any] | None = None
    credentials_set: list[str] | None = Field(
        None, description="Les champs fournis ; jamais leur valeur"
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ConnectorTest(Shape):
    success: bool
    platform: str
    latency_ms: int | None
    message: str


class SyncQueued(Shape):
    job_id: uuid.UUID
    status: str
    products_queued: int | None = None


class SyncJob(Shape):
    job_id: uuid.UUID
    connector_id: uuid.UUID
    kind: str
    status: str
    total: int | None
    processed: int | None
    succeeded: int | None
    failed: int | None
    skipped: int | None
    created: int | None
    last_error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


class SyncJobs(Shape):
    items: list[SyncJob]


class WebhookEndpoint(Shape):
    id: uuid.UUID
    url: str
    description: str | None
    events: list[str]
    is_active: bool
    status: str
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="Seulement à la création et à la rotation")


class WebhookDelivery(Shape):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    is_replay: bool
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookAttempt(Shape):
    attempt: int
    status_code: int | None
    latency_ms: int | None
    error: str | None
    attempted_at: datetime


class ReplayedRange(Shape):
    deliveries_created: int


class ApiKeyOut(Shape):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    rate_limit_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool
    key: str | None = Field(
        None, description="La clé en clair : à la création et à la rotation seulement"
    )


class AuditEvent(Shape):
    id: uuid.UUID
    action: str
    actor_key_id: uuid.UUID | None
    target_type: str
    target_id: str
    changes: list[str] = Field(description="Les NOMS des champs changés, jamais leurs valeurs")
    created_at: datetime


class CursorMeta(Shape):
    per_page: int
    has_next: bool
    next_cursor: str | None


class AuditPage(Shape):
    items: list[AuditEvent]
    meta: CursorMeta


# --- Error responses, per surface and status -------------------------------------------

ERROR_STATUSES: dict[int, str] = {
    400: "Requête mal formée (JSON illisible)",
    401: "Clé absente, invalide, expirée ou révoquée",
    403: "La clé n'a pas la portée de l'opération",
    404: "Ressource ou route introuvable",
    408: "Corps de requête trop lent",
    409: "Conflit (doublon, état qui ne le permet pas)",
    413: "Corps de requête trop grand",
    422: "Champs refusés, chacun nommé",
    429: "Limite de requêtes atteinte (Retry-After)",
    500: "Erreur interne (référence dans le message)",
}


def errors_as(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router whose errors all come in `model`'s envelope."""
    return {
        status: {"model": model, "description": text} for status, text in ERROR_STATUSES.items()
    }


EXT_ERRORS = errors_as(ExtError)
WINDEV_ERRORS = errors_as(WinDevError)
PLAIN_ERRORS = errors_as(PlainError)
