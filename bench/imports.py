"""Import figures: CSV and XLSX imports end to end, the raw COPY they are compared with,
memory during the import, and many websocket subscribers watching one import."""

import asyncio
import csv
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue
from typing import Any

import asyncpg
import httpx
import websockets
from sqlalchemy.engine.url import make_url

from bench import stack
from jobs.demo import ean13
from pim.ids import uuid7
from pim.timeutil import parse_iso8601

HEADER = ["EAN", "Titre", "Marque", "Référence", "Prix HT", "Prix TTC", "Poids", "Stock",
          "Description", "Couleur", "Taille", "Matière", "TVA", "Largeur", "Hauteur"]  # fmt: skip
FINAL = {"completed", "failed", "cancelled"}
PROGRESS = "subscription ($id: ID!) { importJobProgress(id: $id) { status processedRows } }"


def row(n: int, variant: int = 0) -> list[Any]:
    """One line; `variant` changes the title so a re-import really updates."""
    cost = 5 + n % 400
    return [ean13(n), f"Produit importé {n} v{variant}", f"Marque {n % 200}", f"IMP-{n:08d}", f"{cost},50",
            f"{cost * 1.6:.2f}".replace(".", ","), f"{0.1 + n % 30:.1f}".replace(".", ","), n % 500,
            f"Description du produit {n}", "Noir", "M", "Acier", "20", "40", "30"]  # fmt: skip


def csv_file(folder: Path, first: int, count: int, variant: int = 0) -> Path:
    """A supplier file as French suppliers send them: `;`, decimal commas."""
    path = folder / f"import-{first}-{count}-{variant}.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(row(n, variant) for n in range(first, first + count))
    return path


def xlsx_file(folder: Path, first: int, count: int) -> Path:
    from openpyxl import Workbook

    path = folder / f"import-{first}-{count}.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for n in range(first, first + count):
        sheet.append(row(n, variant=-1))
    book.save(path)
    return path


@dataclass
class ImportRun:
    rows: int
    seconds: float
    status: str
    peak_api_mb: float
    peak_worker_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


class RssSampler:
    """Peak resident memory of any one process of each group, sampled while an import runs.

    The kernel keeps each process's peak (see peak_process_rss_mb): a few samples a
    second suffice."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.peaks = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pids in self.pids.items():
                self.peaks[name] = max(
                    self.peaks[name], max(stack.peak_process_rss_mb(p) for p in pids)
                )
            self._stop.wait(0.5)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_import(api: str, key: str, path: Path, rows: int, pids: dict[str, list[int]]) -> ImportRun:
    headers = {"Authorization": f"Bearer {key}"}
    with RssSampler(pids) as rss, httpx.Client(base_url=api, headers=headers, timeout=600) as http:
        started = time.perf_counter()
        with path.open("rb") as upload:
            created = http.post("/api/v1/imports/jobs", files={"file": (path.name, upload)})
        created.raise_for_status()
        job_id = created.json()["id"]
        while True:
            job = http.get(f"/api/v1/imports/jobs/{job_id}").json()
            if job["status"] in FINAL:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    return ImportRun(rows, seconds, job["status"], rss.peaks["api"], rss.peaks["worker"])


async def writes_since(database_url: str, account_id: str, since: datetime) -> tuple[int, int]:
    """Product rows and events the account's writes produced since `since`."""
    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        products = await conn.fetchval(
            "SELECT count(*) FROM products WHERE account_id = $1 AND updated_at >= $2",
            account_id, since,
        )  # fmt: skip
        events = await conn.fetchval(
            "SELECT count(*) FROM events WHERE account_id = $1 AND occurred_at >= $2",
            account_id, since,
        )  # fmt: skip
        return int(products), int(events)
    finally:
        await conn.close()


async def raw_copy_rate(database_url: str, rows: int) -> float:
    """The reference: COPY of the same rows into an indexed table shaped like products."""
    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_raw_copy")
        await conn.execute("CREATE TABLE bench_raw_copy (LIKE products INCLUDING ALL)")
        account = await conn.fetchval("SELECT id FROM accounts WHERE name = 'bench'")
        stamp = datetime.now(UTC)
        records = [
            (uuid7(), account, ean13(n), True, f"Produit importé {n}", f"IMP-{n:08d}", 5.5 + n % 400,
             (5 + n % 400) * 1.6, 0.1 + n % 30, f"Description du produit {n}", "Noir", "M", "Acier",
             20.0, 40.0, "active", stamp, stamp)
            for n in range(1, rows + 1)
        ]  # fmt: skip
        columns = ["id", "account_id", "ean", "ean_checksum_valid", "name", "reference", "cost_price", "price",
                   "weight", "description", "color", "size", "material", "tax_rate", "width", "status",
                   "created_at", "updated_at"]  # fmt: skip
        began = time.perf_counter()
        await conn.copy_records_to_table("bench_raw_copy", records=records, columns=columns)
        elapsed = time.perf_counter() - began
        await conn.execute("DROP TABLE bench_raw_copy")
        return rows / elapsed
    finally:
        await conn.close()


# Client processes for the subscriber figure: one Python process alone needed 150-230 ms
# to read 1,000 websocket messages, which counted as server lag.
CLIENT_PROCESSES = 4


async def _subscribe(
    ws_url: str, key: str, job_id: str, count: int, subscribed: Queue[float]
) -> tuple[list[float], int]:
    """`count` subscribers on one job: when each received the final event, and failures.
    Once every one of them has its first state (or failed), the time goes on `subscribed`."""
    arrivals: list[float] = []
    failures = 0
    settled = 0
    everyone = asyncio.Event()

    def settle() -> None:
        nonlocal settled
        settled += 1
        if settled == count:
            everyone.set()

    async def subscriber() -> None:
        nonlocal failures
        first = True
        try:
            async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=60,
                                          max_size=None) as socket:  # fmt: skip
                await socket.send(
                    json.dumps({"type": "connection_init", "payload": {"X-API-Key": key}})
                )
                await socket.recv()
                await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                              "payload": {"query": PROGRESS, "variables": {"id": job_id}}}))  # fmt: skip
                async for raw in socket:
                    if first:
                        first = False
                        settle()
                    message = json.loads(raw)
                    if message["type"] != "next":
                        break
                    if message["payload"]["data"]["importJobProgress"]["status"] in FINAL:
                        arrivals.append(time.time())
                        break
        except Exception:
            failures += 1
            if first:
                settle()

    async def announce() -> None:
        await everyone.wait()
        subscribed.put(time.time())

    announcing = asyncio.create_task(announce())
    await asyncio.gather(*(subscriber() for _ in range(count)))
    await announcing
    return arrivals, failures


def _subscribe_in_process(
    ws_url: str, key: str, job_id: str, count: int, subscribed: Queue[float]
) -> tuple[list[float], int]:
    return asyncio.run(_subscribe(ws_url, key, job_id, count, subscribed))


def _ready() -> None:
    """Nothing: makes the pool start its processes before the clock matters."""


@dataclass(frozen=True, slots=True)
class SubscriberRun:
    finished: int
    failures: int
    p99_lag_ms: float
    # From the first socket opened to the last subscriber holding its first state.
    setup_seconds: float


async def subscribers_lag(api: str, key: str, path: Path, count: int) -> SubscriberRun:
    """Start an import, pause it, put `count` websocket subscribers on it, spread over
    CLIENT_PROCESSES processes, resume it once every one holds its first state, and
    measure how late each receives the final event after the job completed.

    Subscribers that connected after the end would count their own connection set-up
    as lag (at 1,000 sockets on this machine, most of them did): the lag is the
    fan-out's, and the set-up is reported beside it."""
    ws_url = api.replace("http://", "ws://") + "/graphql"
    headers = {"Authorization": f"Bearer {key}"}
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=context) as pool,
    ):
        subscribed: Queue[float] = manager.Queue()
        await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(CLIENT_PROCESSES)))
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=600) as http:
            job_id = await _paused_import(http, path)
            shares = [count // CLIENT_PROCESSES + (i < count % CLIENT_PROCESSES)
                      for i in range(CLIENT_PROCESSES)]  # fmt: skip
            opened = time.time()
            clients = [
                loop.run_in_executor(pool, _subscribe_in_process, ws_url, key, job_id, share, subscribed)
                for share in shares
                if share
            ]  # fmt: skip
            ready = [await loop.run_in_executor(None, subscribed.get, True, 600) for _ in clients]
            (await http.post(f"/api/v1/imports/jobs/{job_id}/resume")).raise_for_status()
            results = await asyncio.gather(*clients)
            job = (await http.get(f"/api/v1/imports/jobs/{job_id}")).json()
    arrivals = [at for got, _ in results for at in got]
    completed = parse_iso8601(job["completed_at"]).timestamp()
    lags = sorted(max(0.0, a - completed) * 1000 for a in arrivals)
    p99 = (
        statistics.quantiles(lags, n=100)[98]
        if len(lags) > 1
        else (lags[0] if lags else float("inf"))
    )
    failures = sum(failed for _, failed in results)
    return SubscriberRun(len(arrivals), failures, p99, max(ready) - opened)


async def _paused_import(http: httpx.AsyncClient, path: Path, tries: int = 3) -> str:
    """An import of `path`, paused before it ends (a small file can end before the
    pause arrives: then another one)."""
    for _ in range(tries):
        with path.open("rb") as upload:
            created = await http.post("/api/v1/imports/jobs", files={"file": (path.name, upload)})
        created.raise_for_status()
        job_id = str(created.json()["id"])
        paused = await http.post(f"/api/v1/imports/jobs/{job_id}/pause")
        if paused.status_code != 409:
            paused.raise_for_status()
            return job_id
    raise RuntimeError(f"every import of {path.name} ended before it could be paused")


def scratch_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="pim-bench-"))
