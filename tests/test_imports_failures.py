"""Every failure ends an import: a file the reader cannot take, a value the database
cannot store, a fault on every try. The job is `failed` (or the row is), with a
message a person understands, its watchers hear the end, and the automation that
started it records the failure. Run on both backends, with a real arq worker."""

import uuid
from typing import Any

import httpx
import pytest

from models import Automation
from pim import progress
from pim.runtime import Runtime
from resolvers import import_runs
from resolvers.imports import FINAL_STATUSES, PROGRESS_KIND
from tests.conftest import Key
from tests.import_files import HEADER, csv_bytes, ean13, rows
from tests.imports_helper import BASE, catalog, imported, job, upload
from tests.jobs_helper import run_jobs


def _deeply_nested(depth: int) -> bytes:
    return b'[{"EAN": "' + ean13(1).encode() + b'", "Titre": ' + b"[" * depth + b"]" * depth + b"}]"


async def test_a_json_file_nested_too_deep_fails_clearly(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    body = await imported(client, runtime, key, "deep.json", _deeply_nested(100_000))
    assert body["status"] == "failed"
    assert body["error_summary"] == "JSON invalide (élément 1) : imbrication trop profonde"
    assert body["completed_at"] is not None
    assert await catalog(runtime, key) == {}


async def _error_logs(client: httpx.AsyncClient, key: Key, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{BASE}/jobs/{job_id}/logs?level=error", headers=key.bearer)
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("stock", [str(2**63), "3000000000"])
async def test_a_value_the_database_cannot_store_fails_its_row_alone(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, backend: str, stock: str
) -> None:
    if stock == "3000000000" and backend == "sqlite":
        pytest.skip("SQLite stores any 64-bit integer: 3,000,000,000 is a valid stock there")
    bad = [ean13(9), "Trop de stock", "5,00", "9,99", "Acme", "1,5", stock]
    body = await imported(
        client, runtime, key, "stock.csv", csv_bytes([*rows(2), bad, *rows(2, 3)])
    )
    assert (body["status"], body["processed_rows"]) == ("completed", 5)
    assert (body["successful_rows"], body["failed_rows"], body["products_created"]) == (4, 1, 4)
    assert set(await catalog(runtime, key)) == {ean13(n) for n in range(1, 5)}
    logs = await _error_logs(client, key, body["id"])
    assert [(log["row_number"], log["level"]) for log in logs] == [(4, "error")]
    assert logs[0]["message"]


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    import pim.jobs
    import service.worker

    monkeypatch.setattr(pim.jobs, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(service.worker, "RETRY_DELAY_SECONDS", 0.0)


async def test_a_fault_on_every_try_ends_the_job_failed_and_tells_everyone(
    client: httpx.AsyncClient, runtime: Runtime, key: Key,
    monkeypatch: pytest.MonkeyPatch, no_retry_delay: None,
) -> None:  # fmt: skip
    tries: list[int] = []

    async def broken(*args: Any) -> Any:
        tries.append(1)
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(import_runs, "write_chunk", broken)
    created = (await upload(client, key, "catalog.csv", csv_bytes(rows(3)))).json()
    job_id = uuid.UUID(created["id"])
    async with runtime.db.transaction() as session:
        automation = Automation(
            account_id=key.account_id, name="nightly", schedule="0 3 * * *",
            source_type="url", last_status="started", last_import_job_id=job_id,
        )  # fmt: skip
        session.add(automation)
    await run_jobs(runtime)
    body = await job(client, key, created["id"])
    assert len(tries) == 5  # every try of the queue, then it ends
    assert body["status"] == "failed" and body["completed_at"] is not None
    assert body["error_summary"].startswith(
        "import interrompu par une erreur interne après la ligne 0 sur 3 (référence "
    )
    watched = [
        state
        async for state in progress.watch(
            runtime.broker, PROGRESS_KIND, job_id, final=FINAL_STATUSES
        )
    ]
    assert watched[-1]["status"] == "failed"
    async with runtime.db.transaction() as session:
        recorded = await session.get_one(Automation, automation.id)
        assert (recorded.last_status, recorded.last_error) == ("failed", body["error_summary"])


async def test_a_job_of_only_unstorable_rows_still_completes(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    header = [*HEADER]
    bad = [[ean13(n), f"P{n}", "5,00", "9,99", "Acme", "1,5", str(2**64)] for n in (1, 2)]
    body = await imported(client, runtime, key, "all-bad.csv", csv_bytes(bad, header=header))
    assert (body["status"], body["failed_rows"], body["successful_rows"]) == ("completed", 2, 0)
    assert await catalog(runtime, key) == {}


async def test_halving_a_chunk_around_bad_values_still_refuses_its_repeats(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    def row(n: int, stock: object = 1) -> list[Any]:
        return [ean13(n), f"P{n}", "5,00", "9,99", "Acme", "1,5", str(stock)]

    # Lines 2..9; the repeat of line 3 falls in the other half from it once halved.
    content = [row(1), row(2), row(3, 2**64), row(4), row(5), row(2, 7), row(6, 2**64), row(7)]
    body = await imported(client, runtime, key, "mixed.csv", csv_bytes(content))
    assert (body["status"], body["products_created"], body["failed_rows"]) == ("completed", 5, 3)
    logs = await _error_logs(client, key, body["id"])
    assert [(log["row_number"], log["level"]) for log in logs] == [
        (4, "error"),
        (7, "error"),
        (8, "error"),
    ]
    assert logs[1]["field"] == "ean"  # the repeat
    assert (await catalog(runtime, key))[ean13(2)].stock == 1  # the repeat changed nothing
