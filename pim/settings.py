"""Settings read from the environment (PIM_*); nothing is required to start."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIM_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: a SQLite file under data_dir (embedded default).",
    )
    redis_url: str | None = Field(
        default=None, description="Unset: in-process job queue, broker and rate limits."
    )
    data_dir: Path = DEFAULT_DATA_DIR
    secret_key: str | None = Field(
        default=None,
        description="Secret for encryption at rest. Unset: generated once into data_dir.",
    )
    rate_limit_per_minute: int = 1000
    graphql_introspection: bool = True
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    # The most a GraphQL request may cost (fields it can resolve, lists counted by their
    # `first`/`limit`; see schema/cost.py): products(first: 500) with 25 fields and its
    # brand, category and stock costs about 16,000; 30 aliases of it are refused.
    graphql_max_cost: int = Field(default=50_000, ge=1)
    # A request costing more than this counts as one more request against the key's
    # per-minute limit for every started multiple (a cost of 5,000 counts as 5).
    graphql_cost_per_rate_unit: int = Field(default=1000, ge=1)
    # Only persisted operations run (by hash, allowlisted by `pim graphql persist`): a
    # deployment whose only clients are its own front ends closes /graphql to any other.
    graphql_persisted_only: bool = False
    sql_echo: bool = False
    # Request bodies: JSON (and every other body) and import uploads are refused (413)
    # past these sizes, counted as they arrive; a body that stops arriving for
    # body_read_timeout_seconds, or arrives slower on average than
    # body_min_bytes_per_second once that time has passed, is refused (408).
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    body_read_timeout_seconds: float = Field(default=15.0, gt=0)
    body_min_bytes_per_second: int = Field(default=1024, gt=0)
    # Websockets: the time a client has to send connection_init, and how often an open
    # subscription checks that its key is still valid (a revoked key ends it).
    ws_init_timeout_seconds: float = Field(default=10.0, gt=0)
    ws_key_check_seconds: float = Field(default=5.0, gt=0)
    # PostgreSQL connections each process keeps open, and how many more it may open
    # for a burst. Keep the first at the concurrency one process serves: a connection
    # returned beyond it is closed, and reopened for the next request (measured: 28 new
    # sessions a second, each a backend forked, at 16 requests in flight with 10 kept).
    # Every process may hold both at once: (API workers + arq workers) × (pool +
    # overflow) must stay under the server's max_connections (100 by default), or a
    # burst fails with "too many clients" instead of waiting for a pooled connection
    # (seen: 1,000 subscribers connecting at once, with 2 API workers and 2 arq workers
    # at 20 + 10). No overflow by default: 4 processes hold at most 80.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # Outbound guard: networks that user-given URLs may reach although not public
    # (e.g. "127.0.0.0/8" for tests, an on-premise SFTP range), and plain http.
    outbound_allowed_networks: list[str] = Field(default_factory=list)
    outbound_allow_http: bool = False
    # Connector sync: how often a chunk hit by a transient platform error (429, 5xx)
    # is retried, and the backoff between tries (a platform's Retry-After wins, capped).
    connector_retry_attempts: int = 4
    connector_retry_base_delay: float = 2.0
    connector_retry_max_delay: float = 60.0
    # How long an adapter waits for a platform's asynchronous processing (Magento's bulk
    # queue, an SFCC import job, a marketplace's offer import) before it reports the
    # items as still pending, and how often it asks in the meantime.
    connector_async_wait_seconds: float = Field(default=600.0, ge=0)
    connector_poll_interval_seconds: float = Field(default=5.0, gt=0)
    connector_timeout_seconds: float = 30.0
    # Webhooks: how long a receiver may take to answer, and how often the embedded
    # default's safety net looks for due retries and undelivered events.
    webhook_timeout_seconds: float = 10.0
    webhook_poll_seconds: float = 30.0
    # Scheduled imports: the largest file an automation may download, and how long it may take.
    automation_max_file_bytes: int = 200 * 1024 * 1024
    automation_fetch_timeout: float = 300.0
    # Rows per import transaction: the checkpoint, pause and cancel granularity.
    import_chunk_size: int = Field(default=2000, ge=1)
    # The same for files read as columns (CSV, XLSX), which the database merges: a chunk
    # costs some 15 round trips and 3 transactions whatever its size. Measured (100,000
    # half-new rows × 15): 10,000 as fast as 20,000, the worker's peak RSS 260 MB against
    # 336 MB (and 589 MB at 50,000: rows that change are still Python objects).
    import_merge_chunk_size: int = Field(default=10_000, ge=1)
    # An import run hands over to a fresh job after this long (under arq's job timeout).
    import_slice_seconds: float = Field(default=120, ge=0)
    # From this file size on (a couple of chunks), another process reads and checks the
    # rows while the job writes them; starting it costs a few tens of milliseconds.
    import_reader_process_bytes: int = Field(default=256 * 1024, ge=0)
    # Watchers of a running import get its progress at most this often (and at every
    # change of status).
    import_progress_interval_seconds: float = Field(default=0.5, ge=0)
    # The audit trail of administrative actions is kept this long (`pim retention`).
    audit_retention_days: int = Field(default=365, ge=1)

    # Operations: log format (unset: JSON on the real stack, text on the embedded default),
    # level, and the one line per request; a bearer token /metrics then requires; how long a
    # readiness check may take; the port a `pim worker` serves its own /metrics on (unset:
    # none, as when it shares PROMETHEUS_MULTIPROC_DIR with the API on one host).
    log_format: Literal["json", "text"] | None = None
    log_level: str = "INFO"
    request_log: bool = True
    metrics_token: str | None = None
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.is_sqlite and not self.redis_url else "json"

    # Leases (real stack): a running job renews its lease this often, and a job whose
    # lease ran out (its worker died) is handed to another worker by the reaper, which
    # every worker runs at the same interval: taken over within lease + interval.
    job_lease_seconds: float = Field(default=30, gt=0)
    job_lease_renew_seconds: float = Field(default=10, gt=0)
    # On SIGTERM `pim worker` takes no more jobs; a running import commits its chunk and
    # hands the rest back to the queue. What still runs after this long is cancelled and
    # put back in the queue (a connector sync resumes from its links).
    worker_drain_seconds: int = Field(default=20, ge=0)
    # The watchdog logs every unfinished job that has not progressed for this long.
    job_stuck_after_seconds: float = Field(default=900, gt=0)
    # Retention, in days: what is older is removed, in batches, by an hourly job
    # (and `pim retention`). Webhook attempts go with their delivery.
    retention_webhook_delivery_days: float = Field(default=30, gt=0)
    retention_import_log_days: float = Field(default=30, gt=0)
    retention_import_file_days: float = Field(default=7, gt=0)
    retention_upload_days: float = Field(default=7, gt=0)
    retention_sync_job_days: float = Field(default=30, gt=0)
    # Rows removed per transaction: each batch holds its locks briefly.
    retention_batch_size: int = Field(default=1000, ge=1)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'pim.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
