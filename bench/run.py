"""`make bench` / `make bench-quick`: measure the figures of the benchmark issue on the real
stack and print one table; the results also go to bench/results/latest.json.

Every figure is the median of several runs, and figures with a reference are also
given as a ratio against that reference measured in the same run, because absolute
times on a shared machine drift.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy.engine.url import make_url

from bench import datagen, imports, load, stack
from pim.migrate import upgrade
from pim.settings import Settings

SCALES = {"full": 1_000_000, "quick": 100_000, "tiny": 2_000}
RESULTS = Path(__file__).resolve().parent / "results"
PG_URL = os.environ.get(
    "PIM_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/pim_bench"
)
REDIS_URL = os.environ.get("PIM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
FIELDS_8 = "id ean name brandName status isActive weight updatedAt"


@dataclass
class Figure:
    number: str
    name: str
    value: float | None
    unit: str
    goal: str
    met: bool | None
    reference: float | None = None
    ratio: float | None = None
    runs: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class Context:
    scale: str
    count: int
    runs: int
    seconds: float
    api: str
    bare: str
    key: str
    env: dict[str, str]
    account_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


async def _prepare(count: int) -> tuple[str, str]:
    url = make_url(PG_URL)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database="postgres"
    )
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{url.database}"')
    await admin.close()
    await asyncio.to_thread(upgrade, Settings(database_url=PG_URL))
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        account_id = await datagen.generate(conn, "bench", count)
    finally:
        await conn.close()
    from resolvers import keys
    from service.runtime import build_runtime

    runtime = build_runtime(Settings(database_url=PG_URL, redis_url=REDIS_URL))
    try:
        async with runtime.db.transaction() as session:
            account = await keys.get_or_create_account(session, "bench")
            created = await keys.create_key(
                session, account=account, name="bench", scopes=["ext:products:read", "ext:products:write",
                "windev:read", "windev:write", "windev:sync", "products:read", "imports:read", "imports:write"],
                rate_limit_per_minute=10_000_000,
            )  # fmt: skip
    finally:
        await runtime.close()
    return created.plain, str(account_id)


# The one part of the body that differs from response to response: the time it was made.
_RESPONSE_TIME = re.compile(rb'("page_size":\d+,"updated_at":)"[^"]*"')


def same_body(api_url: str, bare_url: str, headers: dict[str, str]) -> bytes:
    """The API's and the bare floor's bodies, byte for byte, but for the response time;
    raises if they differ: the floor must do the same work to be a floor."""
    bodies = []
    for url in (api_url, bare_url):
        response = httpx.get(url, headers=headers, timeout=60)
        response.raise_for_status()
        bodies.append(_RESPONSE_TIME.sub(rb'\1"-"', response.content))
    if bodies[0] != bodies[1]:
        raise AssertionError(f"the bare floor serves another body:\n{bodies[0]!r}\n{bodies[1]!r}")
    return bodies[0]


def fig3_rest_list(ctx: Context) -> Figure:
    url = f"{ctx.api}/api/v1/ext/products?page_size=50"
    bare_url = f"{ctx.bare}/products?page_size=50"
    same_body(url, bare_url, ctx.headers)
    # In turns, the ratio taken pair by pair: the machine's speed drifts within a run.
    ours, bare = [], []
    for _ in range(ctx.runs):
        ours.append(load.run(url, connections=32, seconds=ctx.seconds, headers=ctx.headers))
        bare.append(load.run(bare_url, connections=32, seconds=ctx.seconds, headers=ctx.headers))
    rps = statistics.median(r.requests_per_second for r in ours)
    ref = statistics.median(r.requests_per_second for r in bare)
    p99 = statistics.median(r.p99_ms for r in ours)
    ratio = statistics.median(
        o.requests_per_second / b.requests_per_second if b.requests_per_second else float("inf")
        for o, b in zip(ours, bare, strict=True)
    )
    return Figure("3", "GET /ext/products?page_size=50, 32 clients", rps, "req/s",
                  "≥ 0.7 × the fair floor (same body, key check, rate limit); p99 ≤ 60 ms", ratio >= 0.7 and p99 <= 60,
                  ref, ratio, [r.requests_per_second for r in ours],
                  f"p99 {p99:.1f} ms, bare {ref:.0f} req/s ({ours[0].tool})")  # fmt: skip


def fig4_graphql_list(ctx: Context, rest_rps: float) -> Figure:
    body = json.dumps({"query": "{ products(first: 50) { edges { node { %s } } } }" % FIELDS_8})
    headers = {**ctx.headers, "Content-Type": "application/json"}
    results = [
        load.run(
            f"{ctx.api}/graphql",
            connections=32,
            seconds=ctx.seconds,
            method="POST",
            body=body,
            headers=headers,
        )
        for _ in range(ctx.runs)
    ]
    rps = statistics.median(r.requests_per_second for r in results)
    ratio = rps / rest_rps
    return Figure("4", "GraphQL products(first: 50), same 8 fields", rps, "req/s", "≥ 0.6 × figure 3",
                  ratio >= 0.6, rest_rps, ratio, [r.requests_per_second for r in results],
                  f"p99 {statistics.median(r.p99_ms for r in results):.1f} ms")  # fmt: skip


def fig5_statements(ctx: Context) -> Figure:
    """SQL statements per nested request, counted in process (same code as the server)."""
    from sqlalchemy import event

    from service.api import create_app
    from service.runtime import build_runtime

    query = "{ products(first: 100) { edges { node { ean brand { name } category { name } supplier { code } stock } } } }"

    async def count() -> tuple[int, int]:
        settings = Settings(database_url=PG_URL, redis_url=REDIS_URL)
        runtime = build_runtime(settings)
        app = create_app(settings, runtime)
        seen: list[int] = []
        event.listen(
            runtime.db.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(1)
        )
        transport = httpx.ASGITransport(app=app)
        counts = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for first in (10, 100):
                await http.post(
                    "/graphql",
                    json={"query": query.replace("100", str(first))},
                    headers=ctx.headers,
                )
                seen.clear()
                await http.post(
                    "/graphql",
                    json={"query": query.replace("100", str(first))},
                    headers=ctx.headers,
                )
                counts.append(len(seen))
        await runtime.close()
        return counts[0], counts[1]

    small, large = asyncio.run(count())
    return Figure("5", "GraphQL products(first: 100) + brand, category, supplier, stock", large, "statements",
                  "constant and ≤ 5", large == small and large <= 5, note=f"{small} for first: 10")  # fmt: skip


def _client(ctx: Context) -> httpx.Client:
    """One kept-alive client per figure, as integrators hold theirs: a new httpx client
    per request spent 38 ms of its own building a TLS context, counted as latency."""
    return httpx.Client(base_url=ctx.api, headers=ctx.headers, timeout=120)


def _timed(client: httpx.Client, method: str, path: str, payload: Any) -> float:
    """Milliseconds from sending the request to having the whole response; the body is
    encoded before the clock starts."""
    body = None if payload is None else orjson.dumps(payload)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    started = time.perf_counter()
    response = client.request(method, path, content=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def fig6_batches(ctx: Context) -> list[Figure]:
    from jobs.demo import ean13

    figures = []
    batch = {
        "products": [
            {"ean": ean13(n + 1), "name": f"Produit {n}", "weight": 1.0 + (n % 7)}
            for n in range(500)
        ]
    }
    with _client(ctx) as client:
        samples = [
            _timed(client, "POST", "/api/v1/ext/products/batch", _vary(batch, i))
            for i in range(ctx.runs * 3)
        ]
    p50 = statistics.median(samples)
    figures.append(
        Figure(
            "6a",
            "POST /ext/products/batch, 500 items",
            p50,
            "ms p50",
            "≤ 80 ms",
            p50 <= 80,
            runs=samples,
        )
    )
    stock = [{"ean": ean13(n + 1), "stock": n % 300} for n in range(5000)]
    prices = [{"ean": ean13(n + 1), "price_ttc": 1 + n % 299} for n in range(5000)]
    sync = [
        {"reference": f"REF-{n:07d}", "ean": ean13(n + 1), "name": f"Produit {n}", "stock": n % 50}
        for n in range(1000)
    ]
    for number, name, path, payload, goal in (
        ("6b", "WinDev POST /stock/update, 5,000 items", "/api/v1/windev/stock/update", stock, 150),
        (
            "6d",
            "WinDev POST /prices/update, 5,000 items",
            "/api/v1/windev/prices/update",
            prices,
            150,
        ),
        (
            "6c",
            "WinDev POST /products/sync, 1,000 items",
            "/api/v1/windev/products/sync",
            sync,
            250,
        ),
    ):
        probe = httpx.post(f"{ctx.api}{path}", json=payload[:1], headers=ctx.headers)
        if probe.status_code == 404:
            figures.append(
                Figure(
                    number, name, None, "ms p50", f"≤ {goal} ms", None, note="route not available"
                )
            )
            continue
        with _client(ctx) as client:
            samples = [_timed(client, "POST", path, _vary(payload, i)) for i in range(ctx.runs * 3)]
        p50 = statistics.median(samples)
        figures.append(
            Figure(number, name, p50, "ms p50", f"≤ {goal} ms", p50 <= goal, runs=samples)
        )
    return figures


def _vary(payload: Any, run: int) -> Any:
    """Change a value on each run so every request really writes."""
    items = payload["products"] if isinstance(payload, dict) else payload
    for item in items:
        for key in ("weight", "stock", "price_ttc"):
            if key in item:
                item[key] = (item[key] + 1 + run) % 300
    return payload


def fig7_delta(ctx: Context) -> Figure:
    def loop() -> tuple[float, float, float]:
        since, total, times = "2000-01-01T00:00:00Z", 0, []
        with httpx.Client(headers=ctx.headers, timeout=120) as http:
            began = time.perf_counter()
            while True:
                started = time.perf_counter()
                # orjson: the loop measures the server, not the client's JSON parser.
                body = orjson.loads(
                    http.get(
                        f"{ctx.api}/api/v1/ext/products/delta",
                        params={"since": since, "page_size": 500},
                    ).content
                )
                times.append(time.perf_counter() - started)
                total += len(body["data"])
                since = body["meta"]["updated_at"]
                if len(body["data"]) < 500:
                    break
            elapsed = time.perf_counter() - began
        full = [t for t in times[:-1]] or times
        return total / elapsed, full[0] * 1000, full[-1] * 1000

    results = [loop() for _ in range(max(1, ctx.runs - 1))]
    rate = statistics.median(r[0] for r in results)
    first = statistics.median(r[1] for r in results)
    last = statistics.median(r[2] for r in results)
    return Figure("7", f"delta polling loop over {ctx.count:,} products, page_size 500", rate, "products/s",
                  "≥ 20,000/s; last page ≤ 2 × first", rate >= 20_000 and last <= 2 * first,
                  runs=[r[0] for r in results], note=f"first page {first:.1f} ms, last {last:.1f} ms")  # fmt: skip


def fig8_deep_page(ctx: Context) -> Figure:
    page = min(2000, max(1, ctx.count // 500))
    path = f"/api/v1/ext/products?page={page}&page_size=500"
    with _client(ctx) as client:
        client.get(path)
        value, runs = median_of(ctx.runs * 2, lambda: _timed(client, "GET", path, None))
    return Figure(
        "8",
        f"GET /ext/products?page={page}&page_size=500",
        value,
        "ms",
        "≤ 300 ms",
        value <= 300,
        runs=runs,
    )


def fig1_csv_import(ctx: Context, pids: dict[str, list[int]]) -> list[Figure]:
    """Half of the rows update the catalog, half are new; each run changes the titles."""
    folder = imports.scratch_folder()
    half = ctx.count // 2
    runs = 1 if ctx.scale == "full" else ctx.runs  # a full run imports a million rows
    results = []
    for run in range(runs):
        path = imports.csv_file(folder, half + 1 + run * half, ctx.count, variant=run)
        results.append(imports.run_import(ctx.api, ctx.key, path, ctx.count, pids))
    # 1b: the last file again, nothing changed.
    since = datetime.now(UTC)
    again = imports.run_import(ctx.api, ctx.key, path, ctx.count, pids)
    rows_written, events = asyncio.run(imports.writes_since(PG_URL, ctx.account_id, since))
    rate = statistics.median(r.rate for r in results)
    copy_rate = statistics.median(
        asyncio.run(imports.raw_copy_rate(PG_URL, ctx.count)) for _ in range(runs)
    )
    ratio = rate / copy_rate
    ok = all(r.status == "completed" for r in results)
    api_mb = max(r.peak_api_mb for r in results)
    worker_mb = max(r.peak_worker_mb for r in results)
    return [
        Figure("1", f"CSV import, {ctx.count:,} rows × 15 columns, half new", rate, "rows/s",
               "≥ 25,000 rows/s and ≥ 0.3 × raw COPY", ok and rate >= 25_000 and ratio >= 0.3, copy_rate, ratio,
               [r.rate for r in results], f"raw COPY {copy_rate:,.0f} rows/s; {results[0].seconds:.1f} s end to end"),
        Figure("1b", "the same file imported again (nothing changed)", again.rate, "rows/s",
               "≥ 100,000 rows/s, 0 rows written, 0 events",
               again.status == "completed" and again.rate >= 100_000 and rows_written == events == 0,
               copy_rate, again.rate / copy_rate, [again.rate],
               f"{rows_written} product rows written, {events} events"),
        Figure("10", "peak RSS during figure 1, API process / arq worker", max(api_mb, worker_mb), "MB",
               "≤ 400 MB each", api_mb <= 400 and worker_mb <= 400,
               note=f"API {api_mb:.0f} MB, worker {worker_mb:.0f} MB"),
    ]  # fmt: skip


def fig2_xlsx_import(ctx: Context, pids: dict[str, list[int]]) -> Figure:
    count = max(500, ctx.count // 10)
    path = imports.xlsx_file(imports.scratch_folder(), 1, count)
    runs = 1 if ctx.scale == "full" else ctx.runs
    results = [imports.run_import(ctx.api, ctx.key, path, count, pids) for _ in range(runs)]
    rate = statistics.median(r.rate for r in results)
    return Figure("2", f"XLSX import, {count:,} rows", rate, "rows/s", "≥ 20,000 rows/s",
                  rate >= 20_000 and all(r.status == "completed" for r in results), runs=[r.rate for r in results])  # fmt: skip


def fig9_subscribers(ctx: Context) -> Figure:
    count = {"full": 1000, "quick": 300, "tiny": 20}[ctx.scale]
    rows = max(2000, ctx.count // 10)
    path = imports.csv_file(imports.scratch_folder(), 10 * ctx.count, rows, variant=9)
    run = asyncio.run(imports.subscribers_lag(ctx.api, ctx.key, path, count))
    return Figure("9", f"{count:,} websocket subscribers on one import of {rows:,} rows", run.p99_lag_ms,
                  "ms p99 lag", "every one gets the final event; p99 lag ≤ 250 ms",
                  run.finished == count and run.p99_lag_ms <= 250,
                  note=f"{run.finished}/{count} got the final event, {run.failures} failed; "
                       f"all subscribed in {run.setup_seconds:.1f} s")  # fmt: skip


def measure(ctx: Context, pids: dict[str, list[int]], only: set[str]) -> list[Figure]:
    """Every figure, or the groups named in `only` (by the number of their first figure)."""
    rest_rps: list[float] = []

    def rest_then_graphql() -> list[Figure]:
        rest = fig3_rest_list(ctx)
        rest_rps.append(rest.value or 1.0)
        return [rest, fig4_graphql_list(ctx, rest_rps[0]), fig5_statements(ctx)]

    groups: dict[str, Callable[[], list[Figure]]] = {
        "1": lambda: fig1_csv_import(ctx, pids),
        "2": lambda: [fig2_xlsx_import(ctx, pids)],
        "3": rest_then_graphql,
        "6": lambda: fig6_batches(ctx),
        "7": lambda: [fig7_delta(ctx)],
        "8": lambda: [fig8_deep_page(ctx)],
        "9": lambda: [fig9_subscribers(ctx)],
    }
    figures: list[Figure] = []
    for name, group in groups.items():
        if only and name not in only:
            continue
        figures += group()
        if name in WRITING_GROUPS:
            asyncio.run(_vacuum())
    return sorted(figures, key=lambda f: (int(f.number.rstrip("abcd")), f.number))


# Groups that leave dead rows behind (imports, batches).
WRITING_GROUPS = {"1", "2", "6"}


async def _vacuum() -> None:
    """What autovacuum does in the background on a production server, done between
    figures: this machine's PostgreSQL runs with autovacuum off, and the reads measured
    after a million-row import would otherwise wade through as many dead rows."""
    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def print_table(figures: list[Figure]) -> None:
    print(f"{'#':<4}{'figure':<62}{'value':>14}  {'ratio':>7}  {'goal':<44}{'met':<5} note")
    for f in figures:
        value = "—" if f.value is None else f"{f.value:,.1f} {f.unit}"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}×"
        met = "—" if f.met is None else ("yes" if f.met else "NO")
        print(f"{f.number:<4}{f.name:<62}{value:>14}  {ratio:>7}  {f.goal:<44}{met:<5} {f.note}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--only", default="", help="comma-separated groups: 1 (CSV + RSS), 2, 3 (3-5), 6, 7, 8, 9"
    )
    args = parser.parse_args(argv)
    count = SCALES[args.scale]
    runs = args.runs or (1 if args.scale == "tiny" else 3)
    seconds = args.seconds or (1 if args.scale == "tiny" else 8)

    print(f"Preparing {count:,} products in {PG_URL} …", flush=True)
    key, account_id = asyncio.run(_prepare(count))
    env = {"PIM_DATABASE_URL": PG_URL, "PIM_REDIS_URL": REDIS_URL,
           "PIM_RATE_LIMIT_PER_MINUTE": "10000000"}  # fmt: skip
    with (
        stack.api(env) as (api_url, api_proc),
        stack.worker(env) as first_worker,
        stack.worker(env) as second_worker,
        stack.bare(env) as bare_url,
    ):
        ctx = Context(args.scale, count, runs, seconds, api_url, bare_url, key, env, account_id)
        pids = {"api": [api_proc.pid], "worker": [first_worker.pid, second_worker.pid]}
        figures = measure(ctx, pids, {g for g in args.only.split(",") if g})
    print_table(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "scale": args.scale, "products": count, "runs": runs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": [asdict(f) for f in figures],
    }  # fmt: skip
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nResults written to {args.out}")


if __name__ == "__main__":
    main()
