"""The reference: a bare Starlette + asyncpg + orjson endpoint serving the same page as
GET /api/v1/ext/products (same rows, same fields, the total read the same way), with no
framework on top.

Run as its own uvicorn app: `uvicorn bench.bare:app`; PIM_DATABASE_URL and
BENCH_ACCOUNT_ID say where the catalog is.
"""

import os
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE = """
SELECT p.id, p.ean, p.name, b.name AS brand_name, p.status, p.weight, p.updated_at
FROM products p LEFT JOIN brands b ON b.id = p.brand_id
WHERE p.account_id = $1 AND p.deleted_at IS NULL
ORDER BY p.created_at, p.id LIMIT $2 OFFSET $3
"""
# The live count as the API keeps it (one row of deltas per write, folded now and then):
# counting a million rows per request would measure PostgreSQL, not the framework.
COUNT = "SELECT coalesce(sum(delta), 0) FROM product_count_deltas WHERE account_id = $1"
pool: Any = None


async def products(request: Request) -> Response:
    global pool
    if pool is None:
        url = os.environ["PIM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
    account = os.environ["BENCH_ACCOUNT_ID"]
    size = int(request.query_params.get("page_size", 50))
    page = int(request.query_params.get("page", 1))
    async with pool.acquire() as conn:
        rows = await conn.fetch(PAGE, account, size, (page - 1) * size)
        total = await conn.fetchval(COUNT, account)
    data = [
        {"id": str(r["id"]), "ean": r["ean"], "title": r["name"], "brand_name": r["brand_name"],
         "is_active": r["status"] == "active", "status": r["status"], "weight": r["weight"],
         "updated_at": r["updated_at"].isoformat().replace("+00:00", "Z")}
        for r in rows
    ]  # fmt: skip
    body = {
        "success": True,
        "data": data,
        "meta": {"total": total, "page": page, "page_size": size},
        "errors": [],
    }
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/products", products)])
