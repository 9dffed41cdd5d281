"""The fair floor: a bare Starlette + asyncpg + orjson endpoint doing the same work as
GET /api/v1/ext/products, without the framework on top.

The same key check (SHA-256 hash lookup joined to the account, kept for the same few
seconds in the same process-wide cache, last use written back at the same resolution),
the same scope check, the same Redis rate-limit round trip and headers, the very
statement the API sends (the page of 51 rows, the full documented product, its brand and
stock, the live total riding along), and the byte-identical body (the benchmark compares
them before timing; only meta.updated_at, the time of the response, differs).

Run as `python -m bench.bare PORT WORKERS`: served by pim.serving as `pim serve` serves the
API, so both spread their connections over their workers alike; PIM_DATABASE_URL and
PIM_REDIS_URL say where the catalog and the counters are.
"""

import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pim import serving
from pim.auth import Caller, CallerCache, hash_key

# Copied from what the API sends for page 1 (SQLAlchemy's rendering of resolvers.products
# for the External API's columns): the same plan, rows and bytes from PostgreSQL.
PAGE = """
SELECT products.id, products.created_at, products.ean, products.name, products.status,
products.deleted_at, products.weight, products.width, products.height, products.depth,
products.description, products.short_description, products.reference, products.supplier_code,
products.category_id, products.asin, products.upc, products.gtin, products.unit_of_measure,
products.external_id, products.url_slug, products.ean_checksum_valid,
greatest(products.updated_at, coalesce(product_changes.changed_at, products.updated_at))
AS updated_at, brands.name AS brand_name, product_stocks.quantity AS stock_quantity,
(SELECT coalesce(sum(product_count_deltas.delta), 0) FROM product_count_deltas
 WHERE product_count_deltas.account_id = $1) AS listing_total
FROM products
LEFT OUTER JOIN product_changes ON product_changes.account_id = products.account_id
 AND product_changes.product_id = products.id
LEFT OUTER JOIN brands ON brands.id = products.brand_id
LEFT OUTER JOIN product_stocks ON product_stocks.product_id = products.id
 AND product_stocks.account_id = products.account_id
WHERE products.account_id = $1 AND products.deleted_at IS NULL
ORDER BY products.created_at ASC, products.id ASC LIMIT $2
"""
TOTAL = """SELECT coalesce(sum(delta), 0) FROM product_count_deltas WHERE account_id = $1"""
KEY = """
SELECT api_keys.id, api_keys.name, api_keys.scopes, api_keys.rate_limit_per_minute,
api_keys.last_used_at, accounts.id, accounts.name, accounts.strict_ean
FROM api_keys JOIN accounts ON accounts.id = api_keys.account_id
WHERE api_keys.key_hash = $1 AND api_keys.revoked_at IS NULL
"""
TOUCH = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1"
AS_IS = (
    "weight", "width", "height", "depth", "description", "short_description", "reference",
    "supplier_code", "category_id", "asin", "upc", "gtin", "unit_of_measure", "external_id",
    "url_slug", "ean_checksum_valid", "created_at", "updated_at", "deleted_at",
)  # fmt: skip
SCOPE = "ext:products:read"
CALLERS = CallerCache(ttl=5.0)  # as resolvers.keys.CALLER_TTL_SECONDS
LAST_USED_RESOLUTION = timedelta(minutes=1)
WINDOW_SECONDS = 60
DEFAULT_PER_MINUTE = int(os.environ.get("PIM_RATE_LIMIT_PER_MINUTE", "1000"))
pool: Any = None
redis: Any = None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)
    return Response(data, status_code=status, media_type="application/json", headers=headers)


def _now_z() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _refused(status: int, message: str) -> Response:
    meta = {"total": 0, "page": 1, "page_size": 0, "updated_at": _now_z()}
    return _json({"success": False, "data": None, "meta": meta, "errors": [message]}, status)


@asynccontextmanager
async def _connected(_app: Starlette) -> AsyncIterator[None]:
    # At start-up, not on a first request: 32 clients arriving at once each made a pool
    # of their own, and PostgreSQL ran out of connections (a full run stopped there).
    global pool, redis
    url = os.environ["PIM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(url, min_size=2, max_size=20)
    redis = aioredis.from_url(os.environ["PIM_REDIS_URL"])
    yield
    await pool.close()
    await redis.aclose()


async def _caller(plain: str) -> Caller | None:
    key_hash = hash_key(plain)
    caller = CALLERS.get(key_hash)
    if caller is not None:
        return caller
    return await CALLERS.looked_up(key_hash, lambda: _lookup(key_hash))


async def _lookup(key_hash: str) -> Caller | None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(KEY, key_hash)
        if row is None:
            return None
        now = datetime.now(UTC)
        if row[4] is None or now - row[4] > LAST_USED_RESOLUTION:
            await conn.execute(TOUCH, row[0], now)
    caller = Caller(
        account_id=row[5], account_name=row[6], key_id=row[0], key_name=row[1],
        scopes=frozenset(orjson.loads(row[2])), rate_limit_per_minute=row[3], strict_ean=row[7],
    )  # fmt: skip
    CALLERS.put(key_hash, caller)
    return caller


async def _hit(key_id: uuid.UUID, per_minute: int | None) -> tuple[dict[str, str], bool]:
    """The rate-limit window, as pim.ratelimit counts it: one pipelined round trip."""
    limit = per_minute or DEFAULT_PER_MINUTE
    window_end = (int(time.time()) // WINDOW_SECONDS + 1) * WINDOW_SECONDS
    key = f"pim:rate:{key_id}:{window_end}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expireat(key, window_end + 1, nx=True)
        count, _ = await pipe.execute()
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - count)),
               "X-RateLimit-Reset": str(window_end)}  # fmt: skip
    return headers, count <= limit


def _product(r: asyncpg.Record) -> dict[str, Any]:
    out = {
        "id": str(r["id"]), "ean": r["ean"], "title": r["name"], "brand_name": r["brand_name"],
        "is_active": r["status"] == "active", "status": "deleted" if r["deleted_at"] else r["status"],
    }  # fmt: skip
    for name in AS_IS:
        out[name] = r[name]
    if out["category_id"] is not None:
        out["category_id"] = str(out["category_id"])
    return out


async def products(request: Request) -> Response:
    plain = request.headers.get("x-api-key")
    caller = await _caller(plain) if plain else None
    if caller is None:
        return _refused(401, "Clé API manquante ou invalide.")
    headers, allowed = await _hit(caller.key_id, caller.rate_limit_per_minute)
    if not allowed:
        return _refused(429, "Trop de requêtes.")
    if SCOPE not in caller.scopes:
        return _refused(403, "Permission insuffisante.")
    size = int(request.query_params.get("page_size", 50))
    async with pool.acquire() as conn:
        rows = await conn.fetch(PAGE, caller.account_id, size + 1)
        total = rows[0]["listing_total"] if rows else await conn.fetchval(TOTAL, caller.account_id)
    body = {
        "success": True,
        "data": [_product(r) for r in rows[:size]],
        "meta": {"total": total, "page": 1, "page_size": size, "updated_at": _now_z()},
        "errors": [],
    }
    return _json(body, headers=headers)


app = Starlette(routes=[Route("/products", products)], lifespan=_connected)


if __name__ == "__main__":
    port, workers = (int(arg) for arg in sys.argv[1:3])
    serving.serve(
        "bench.bare:app", host="127.0.0.1", port=port, workers=workers,
        log_level="warning", access_log=False,
    )  # fmt: skip
