"""The Imports API (/api/v1/imports) and its job: every format end to end, the status
machine with pause / resume / cancel, dry run → confirm, logs, preview, a run killed
half way and run again, broken files, scopes and tenancy.

Jobs run with tests.jobs_helper.run_jobs: a real arq worker on PostgreSQL + Redis,
the in-process queue on SQLite. A chunk size of 2 makes chunk boundaries visible.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import jobs.imports
from models import Event, ImportFilePart, ImportJob
from pim import progress
from pim.runtime import Runtime
from resolvers import import_runs, import_storage, imports
from resolvers.import_storage import InMemory
from tests.conftest import Key, MakeKey
from tests.events_helper import product_event_types
from tests.import_files import (
    BILLION_LAUGHS,
    csv_bytes,
    ean13,
    json_bytes,
    rows,
    xlsx_bytes,
    xml_bytes,
    zip_bomb,
)
from tests.imports_helper import BASE, catalog, imported, job, upload
from tests.jobs_helper import run_jobs


@pytest.fixture
def small_chunks(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # The arq worker builds its runtime from these same settings.
    monkeypatch.setattr(runtime.settings, "import_chunk_size", 2)
    monkeypatch.setattr(runtime.settings, "import_merge_chunk_size", 2)


@pytest.fixture(params=["inline", "process"])
def reader(
    request: pytest.FixtureRequest, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Rows read and checked by the job itself, or by a separate process (big files)."""
    size = 0 if request.param == "process" else 1 << 40
    monkeypatch.setattr(runtime.settings, "import_reader_process_bytes", size)
    return str(request.param)


# ---------------------------------------------------------------- creating and reading


async def test_create_answers_at_once_as_the_spec_shows(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey
) -> None:
    key = await make_key(["imports:write", "imports:read"])
    response = await upload(client, key, "catalog.csv", csv_bytes(rows(2)), supplier_code="SUP_A")
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "status": "analyzing", "file_name": "catalog.csv",
                    "file_type": "csv"}  # fmt: skip
    uuid.UUID(body["id"])
    await run_jobs(runtime)


@pytest.mark.parametrize(
    "name,build",
    [("catalog.csv", csv_bytes), ("catalog.xlsx", xlsx_bytes), ("catalog.json", json_bytes),
     ("catalog.xml", xml_bytes)],
)  # fmt: skip
async def test_each_format_imports_its_rows(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, name: str, build: Callable[..., bytes],
    reader: str,
) -> None:  # fmt: skip
    # Built once: an XLSX records when it was written, so two builds may differ in size.
    content = build(rows(3))
    body = await imported(client, runtime, key, name, content, supplier_code="SUP_A")
    assert body == {
        "id": body["id"], "file_name": name, "file_type": name.rsplit(".")[-1],
        "file_size": len(content), "status": "completed", "total_rows": 3,
        "processed_rows": 3, "successful_rows": 3, "failed_rows": 0, "products_created": 3,
        "products_updated": 0, "supplier_code": "SUP_A", "dry_run": False, "mode": "upsert",
        "mapping": None, "automation_id": None, "created_at": body["created_at"],
        "started_at": body["started_at"], "completed_at": body["completed_at"],
        "error_summary": None, "last_error": None,
    }  # fmt: skip
    assert body["started_at"].endswith("Z") and body["completed_at"].endswith("Z")
    product = (await catalog(runtime, key))[ean13(2)]
    assert (product.product.name, product.product.cost_price, product.product.price) == (
        "Produit 2",
        5.0,
        9.99,
    )
    assert (product.product.weight, product.product.supplier_code) == (1.5, "SUP_A")


async def test_importing_the_same_file_again_writes_no_row_and_emits_no_event(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    content = csv_bytes(rows(5))
    first = await imported(client, runtime, key, "catalog.csv", content)
    assert (first["products_created"], first["products_updated"]) == (5, 0)
    before = {ean: row.product.updated_at for ean, row in (await catalog(runtime, key)).items()}
    async with runtime.db.transaction() as session:
        events = select(func.count()).select_from(Event).where(Event.account_id == key.account_id)
        events_before = await session.scalar(events)
    again = await imported(client, runtime, key, "catalog.csv", content)
    assert (again["status"], again["successful_rows"], again["failed_rows"]) == ("completed", 5, 0)
    assert (again["products_created"], again["products_updated"]) == (0, 0)
    after = {ean: row.product.updated_at for ean, row in (await catalog(runtime, key)).items()}
    assert after == before
    async with runtime.db.transaction() as session:
        assert await session.scalar(events) == events_before


async def test_windows_1252_and_bom_csv_keep_their_accents(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    latin = csv_bytes([[ean13(1), "Crème brûlée", "5,00", "9,99", "Acmé", "1", "2"]],
                      encoding="cp1252")  # fmt: skip
    bom = b"\xef\xbb\xbf" + csv_bytes(
        [[ean13(2), "Pâté", "1,00", "2,00", "Acmé", "1", "2"]], delimiter=","
    )
    assert (await imported(client, runtime, key, "a.csv", latin))["status"] == "completed"
    assert (await imported(client, runtime, key, "b.csv", bom))["status"] == "completed"
    found = await catalog(runtime, key)
    assert (found[ean13(1)].product.name, found[ean13(2)].product.name) == ("Crème brûlée", "Pâté")
    assert found[ean13(1)].brand_name == "Acmé"


async def test_a_given_mapping_and_update_only_mode(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    await imported(client, runtime, key, "first.csv", csv_bytes(rows(1)))
    content = csv_bytes([[ean13(1), "Renamed"], [ean13(9), "Unknown"]], header=["Code", "Label"])
    body = await imported(
        client, runtime, key, "second.csv", content,
        mapping='{"Code": "ean", "Label": "name"}', mode="update_only",
    )  # fmt: skip
    assert (body["products_updated"], body["products_created"], body["successful_rows"]) == (
        1,
        0,
        2,
    )
    assert body["mapping"] == {"Code": "ean", "Label": "name"}
    found = await catalog(runtime, key)
    assert found[ean13(1)].product.name == "Renamed" and ean13(9) not in found
    logs = (await client.get(f"{BASE}/jobs/{body['id']}/logs", headers=key.bearer)).json()
    assert [(i["row_number"], i["level"]) for i in logs["items"]] == [(3, "info")]


async def test_create_only_mode_leaves_existing_products_alone(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    await imported(client, runtime, key, "first.csv", csv_bytes(rows(1)))
    content = csv_bytes([[ean13(1), "Renamed"], [ean13(2), "New"]], header=["EAN", "Nom"])
    body = await imported(client, runtime, key, "second.csv", content, mode="create_only")
    assert (body["mode"], body["products_created"], body["products_updated"]) == (
        "create_only",
        1,
        0,
    )
    found = await catalog(runtime, key)
    assert (found[ean13(1)].product.name, found[ean13(2)].product.name) == ("Produit 1", "New")
    logs = (
        await client.get(f"{BASE}/jobs/{body['id']}/logs?level=info", headers=key.bearer)
    ).json()
    assert [(i["row_number"], i["message"]) for i in logs["items"]] == [
        (2, "ligne ignorée : existe déjà")
    ]


@pytest.mark.parametrize(
    "form,field",
    [({"mode": "merge"}, "mode"), ({"mapping": "{not json"}, "mapping"),
     ({"mapping": '{"EAN": "nope"}'}, "mapping"), ({"dry_run": "maybe"}, "dry_run")],
)  # fmt: skip
async def test_bad_create_requests_are_plain_422s(
    client: httpx.AsyncClient, key: Key, form: dict[str, str], field: str
) -> None:
    response = await upload(client, key, "catalog.csv", csv_bytes(rows(1)), **form)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_a_missing_file_or_an_unknown_format_is_refused(
    client: httpx.AsyncClient, key: Key
) -> None:
    missing = await client.post(f"{BASE}/jobs", headers=key.bearer, data={"dry_run": "true"})
    assert (missing.status_code, missing.json()["field"]) == (422, "file")
    pdf = await upload(client, key, "catalog.pdf", b"%PDF")
    assert pdf.status_code == 422
    assert pdf.json()["detail"] == "file : format non pris en charge (.csv, .xlsx, .json, .xml)"


async def test_jobs_are_listed_newest_first_with_page_meta(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    ids = [(await upload(client, key, f"f{n}.csv", csv_bytes(rows(1)))).json()["id"]
           for n in range(3)]  # fmt: skip
    await run_jobs(runtime)
    response = await client.get(f"{BASE}/jobs?skip=1&limit=1", headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [ids[1]]
    assert body["meta"] == {"total": 3, "page": 2, "per_page": 1, "total_pages": 3,
                            "has_next": True, "has_previous": True}  # fmt: skip
    too_many = await client.get(f"{BASE}/jobs?limit=500", headers=key.bearer)
    assert too_many.status_code == 422


async def test_a_file_is_stored_in_parts_and_read_back_whole(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch,
    reader: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(import_storage, "PART_BYTES", 500)
    content = csv_bytes(rows(60))
    body = await imported(client, runtime, key, "catalog.csv", content)
    assert (body["status"], body["file_size"], body["products_created"]) == (
        "completed", len(content), 60,
    )  # fmt: skip
    async with runtime.db.read() as session:
        parts = list(
            await session.scalars(
                select(ImportFilePart.data)
                .where(ImportFilePart.job_id == uuid.UUID(body["id"]))
                .order_by(ImportFilePart.seq)
            )
        )
    assert len(parts) == -(-len(content) // 500) > 3
    assert b"".join(parts) == content


async def test_an_automation_starts_jobs_through_create_job(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    automation = uuid.uuid4()
    async with runtime.db.transaction() as session:
        started = await imports.create_job(
            session, key.caller("imports:write"), file_name="feed.json",
            file=InMemory(json_bytes(rows(2))), supplier_code="SUP_A",
            mapping={"EAN": "ean", "Titre": "name"}, automation_id=automation,
        )  # fmt: skip
    await run_jobs(runtime)
    body = await job(client, key, str(started.id))
    assert (body["status"], body["automation_id"], body["products_created"]) == (
        "completed",
        str(automation),
        2,
    )
    assert (await catalog(runtime, key))[ean13(1)].product.price is None  # mapped columns only
    async with runtime.db.transaction() as session:
        runs = await imports.list_jobs(session, key.caller(), automation_id=automation)
        others = await imports.list_jobs(session, key.caller(), automation_id=uuid.uuid4())
    assert ([j.id for j in runs.items], others.total) == ([started.id], 0)


# ---------------------------------------------------------------- logs and preview


async def test_bad_rows_are_logged_and_do_not_stop_the_others(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, reader: str
) -> None:
    content = csv_bytes([*rows(1), ["123ABC7890", "Bad", "1", "2", "B", "1", "1"], ["3760000000010", "Checksum", "1", "2", "B", "1", "1"], *rows(1, start=5)])  # fmt: skip
    body = await imported(client, runtime, key, "catalog.csv", content)
    assert (body["status"], body["successful_rows"], body["failed_rows"]) == ("completed", 3, 1)
    assert body["error_summary"] == "1 row failed EAN validation"
    errors = await client.get(f"{BASE}/jobs/{body['id']}/logs?level=error", headers=key.bearer)
    assert errors.json() == {
        "items": [{"row_number": 3, "level": "error", "field": "ean",
                   "message": "format invalide (8, 12, 13 ou 14 chiffres attendus)",
                   "value": "123ABC7890", "timestamp": errors.json()["items"][0]["timestamp"]}],
        "meta": {"total": 1, "page": 1, "per_page": 50, "total_pages": 1, "has_next": False,
                 "has_previous": False},
    }  # fmt: skip
    every = await client.get(f"{BASE}/jobs/{body['id']}/logs?skip=1&limit=1", headers=key.bearer)
    assert [i["level"] for i in every.json()["items"]] == ["warning"]
    assert every.json()["meta"]["total"] == 2
    for query in ("limit=201", "limit=0", "level=fatal", "skip=-1"):
        wrong = await client.get(f"{BASE}/jobs/{body['id']}/logs?{query}", headers=key.bearer)
        assert wrong.status_code == 422, query


async def test_preview_shows_mapped_rows_and_their_errors(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    content = csv_bytes([["123ABC7890", "Bad", "1", "2", "B", "1", "1"], *rows(12)])
    created = (await upload(client, key, "catalog.csv", content, dry_run="true")).json()
    response = await client.get(f"{BASE}/jobs/{created['id']}/preview?limit=2", headers=key.bearer)
    assert response.status_code == 200
    assert response.json() == {
        "total_rows": 13,
        "preview": [
            {"ean": "123ABC7890", "name": "Bad", "cost_price": 1, "price": 2,
             "brand_name": "B", "weight": 1, "stock": 1},
            {"ean": ean13(1), "name": "Produit 1", "cost_price": 5.0, "price": 9.99,
             "brand_name": "Acme", "weight": 1.5, "stock": 1},
        ],
        "validation_errors": [
            {"row_number": 2, "level": "error", "field": "ean",
             "message": "format invalide (8, 12, 13 ou 14 chiffres attendus)",
             "value": "123ABC7890"},
        ],
    }  # fmt: skip
    default = await client.get(f"{BASE}/jobs/{created['id']}/preview", headers=key.bearer)
    assert len(default.json()["preview"]) == 10
    await run_jobs(runtime)


# ---------------------------------------------------------------- the status machine


async def test_dry_run_is_ready_then_confirm_gives_what_it_announced(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None
) -> None:
    await imported(client, runtime, key, "existing.csv", csv_bytes(rows(1)))
    content = csv_bytes(
        [
            [ean13(1), "Renamed", "5,00", "9,99", "Acme", "1,5", "1"],
            *rows(3, start=2),
            ["123ABC7890", "Bad", "1", "2", "B", "1", "1"],
            # A repeat in a later chunk is refused like a repeat within one chunk.
            [ean13(2), "Again", "1", "2", "B", "1", "1"],
        ]
    )
    dry = await imported(client, runtime, key, "catalog.csv", content, dry_run="true")
    announced = {k: dry[k] for k in ("total_rows", "successful_rows", "failed_rows",
                                     "products_created", "products_updated", "error_summary")}  # fmt: skip
    assert dry["status"] == "ready" and dry["dry_run"] is True
    assert announced == {"total_rows": 6, "successful_rows": 4, "failed_rows": 2,
                         "products_created": 3, "products_updated": 1,
                         "error_summary": "2 rows failed EAN validation"}  # fmt: skip
    assert set(await catalog(runtime, key)) == {ean13(1)}  # nothing written
    assert (await catalog(runtime, key))[ean13(1)].product.name == "Produit 1"

    confirmed = await client.post(f"{BASE}/jobs/{dry['id']}/confirm", headers=key.bearer)
    assert confirmed.json() == {"id": dry["id"], "status": "pending"}
    await run_jobs(runtime)
    real = await job(client, key, dry["id"])
    assert real["status"] == "completed" and real["dry_run"] is False
    assert {k: real[k] for k in announced} == announced
    assert len(await catalog(runtime, key)) == 4
    logs = await client.get(f"{BASE}/jobs/{dry['id']}/logs", headers=key.bearer)
    assert [(i["row_number"], i["message"]) for i in logs.json()["items"]] == [
        (6, "format invalide (8, 12, 13 ou 14 chiffres attendus)"),
        (7, "en double dans le fichier : seule la première occurrence est traitée"),
    ]  # the dry run's logs were replaced, not added to
    assert (await catalog(runtime, key))[ean13(2)].product.name == "Produit 2"
    again = await client.post(f"{BASE}/jobs/{dry['id']}/confirm", headers=key.bearer)
    assert again.status_code == 409
    assert again.json()["detail"] == (
        "Impossible de confirmer l'import : son statut est « completed » (attendu : ready)."
    )


def _interrupt_after(
    monkeypatch: pytest.MonkeyPatch,
    runtime: Runtime,
    chunks: int,
    action: Callable[[Any, uuid.UUID], Awaitable[None]],
) -> None:
    """Run `action` in a transaction of its own once the given number of chunks (of 2
    rows) committed and before the next one is written: a client's request landing
    between two chunks, while the next ones may already be in flight.

    The chunk is known by where it starts, not by the order of calls: two chunks in
    flight reach their writes in either order, and waiting in the earlier one for its
    own commit would only time out."""
    original = jobs.imports._Run.write
    done: list[bool] = []

    async def write(run: Any, checkpoint: int, *args: Any) -> Any:
        # Once: the run that resumes starts its first chunk at that same checkpoint.
        if checkpoint == 2 * chunks and not done:
            done.append(True)
            await _checkpoint_reached(runtime, run.plan.job_id, checkpoint)
            async with runtime.db.transaction() as own:
                await action(own, run.plan.job_id)
        return await original(run, checkpoint, *args)

    monkeypatch.setattr(jobs.imports._Run, "write", write)


async def _checkpoint_reached(runtime: Runtime, job_id: uuid.UUID, rows: int) -> None:
    # Generous: on a loaded machine the chunk before may take seconds to commit.
    for _ in range(3000):
        async with runtime.db.read() as session:
            if (
                await session.scalar(select(ImportJob.checkpoint).where(ImportJob.id == job_id))
                >= rows
            ):
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the import never committed {rows} rows")


async def test_pause_stops_between_chunks_and_resume_continues(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    monkeypatch: pytest.MonkeyPatch, reader: str,
) -> None:  # fmt: skip
    async def pause(session: Any, job_id: uuid.UUID) -> None:
        await imports.control_job(session, key.caller(), job_id=job_id, action="pause")

    _interrupt_after(monkeypatch, runtime, 2, pause)
    paused = await imported(client, runtime, key, "catalog.csv", csv_bytes(rows(7)))
    assert (paused["status"], paused["processed_rows"], paused["products_created"]) == (
        "paused",
        4,
        4,
    )
    assert len(await catalog(runtime, key)) == 4
    monkeypatch.undo()
    monkeypatch.setattr(runtime.settings, "import_chunk_size", 2)
    monkeypatch.setattr(runtime.settings, "import_merge_chunk_size", 2)

    again = await client.post(f"{BASE}/jobs/{paused['id']}/pause", headers=key.bearer)
    assert again.status_code == 409
    resumed = await client.post(f"{BASE}/jobs/{paused['id']}/resume", headers=key.bearer)
    assert resumed.json() == {"id": paused["id"], "status": "processing"}
    await run_jobs(runtime)
    done = await job(client, key, paused["id"])
    assert (done["status"], done["processed_rows"], done["products_created"]) == ("completed", 7, 7)
    assert len(await catalog(runtime, key)) == 7


async def test_cancel_stops_a_running_job_and_answers_as_the_spec(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    async def cancel(session: Any, job_id: uuid.UUID) -> None:
        await imports.control_job(session, key.caller(), job_id=job_id, action="cancel")

    _interrupt_after(monkeypatch, runtime, 1, cancel)
    body = await imported(client, runtime, key, "catalog.csv", csv_bytes(rows(6)))
    assert (body["status"], body["processed_rows"]) == ("cancelled", 2)
    assert len(await catalog(runtime, key)) == 2
    for action in ("cancel", "resume", "pause", "confirm"):
        refused = await client.post(f"{BASE}/jobs/{body['id']}/{action}", headers=key.bearer)
        assert refused.status_code == 409, action
        assert "« cancelled »" in refused.json()["detail"]


async def test_cancel_before_the_worker_runs(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    created = (await upload(client, key, "catalog.csv", csv_bytes(rows(3)), dry_run="1")).json()
    await run_jobs(runtime)
    cancelled = await client.post(f"{BASE}/jobs/{created['id']}/cancel", headers=key.bearer)
    assert cancelled.status_code == 200
    assert cancelled.json() == {"id": created["id"], "status": "cancelled"}
    await run_jobs(runtime)
    assert (await job(client, key, created["id"]))["status"] == "cancelled"
    assert await catalog(runtime, key) == {}


async def test_a_run_killed_half_way_continues_without_duplicates_or_loss(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    monkeypatch: pytest.MonkeyPatch, reader: str,
) -> None:  # fmt: skip
    import pim.jobs
    import service.worker

    async def crash(session: Any, job_id: uuid.UUID) -> None:
        raise RuntimeError("worker killed")

    # The queue runs a failed job again (arq's Retry, or the in-process loop): the
    # second try must resume after the last committed chunk.
    monkeypatch.setattr(pim.jobs, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(service.worker, "RETRY_DELAY_SECONDS", 0.0)
    _interrupt_after(monkeypatch, runtime, 2, crash)
    # The last row repeats an EAN committed before the crash: still refused after it.
    again = [ean13(2), "Again", "1", "2", "B", "1", "1"]
    content = csv_bytes([*rows(4), ["123ABC7890", "Bad", "1", "2", "B", "1", "1"], *rows(3, 5), again])  # fmt: skip
    done = await imported(client, runtime, key, "catalog.csv", content)
    assert (done["status"], done["processed_rows"], done["total_rows"]) == ("completed", 9, 9)
    assert (done["products_created"], done["failed_rows"], done["successful_rows"]) == (7, 2, 7)
    assert len(await catalog(runtime, key)) == 7
    assert (await catalog(runtime, key))[ean13(2)].product.name == "Produit 2"
    logs = await client.get(f"{BASE}/jobs/{done['id']}/logs", headers=key.bearer)
    assert [i["row_number"] for i in logs.json()["items"]] == [6, 10]  # each logged once
    async with runtime.db.transaction() as session:
        told = await product_event_types(session, key.account_id)
    assert told == {"product.created": 7}  # each product's event emitted once


async def test_a_long_run_continues_in_slices(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A zero budget: every run writes one chunk, then enqueues its continuation.
    monkeypatch.setattr(runtime.settings, "import_slice_seconds", 0)
    content = csv_bytes([*rows(4), [ean13(1), "Repeat", "1", "2", "B", "1", "1"], *rows(2, 5)])
    body = await imported(client, runtime, key, "catalog.csv", content)
    assert (body["status"], body["processed_rows"], body["products_created"]) == ("completed", 7, 6)
    assert body["failed_rows"] == 1  # the repeat is still caught across slices
    assert len(await catalog(runtime, key)) == 6


async def test_watchers_get_rows_written_at_most_once_per_interval(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "import_progress_interval_seconds", 3600)
    sent: list[tuple[str, int]] = []
    publish = progress.publish

    async def recorded(broker: Any, kind: str, job_id: object, state: dict[str, Any]) -> None:
        sent.append((state["status"], state["processed_rows"]))
        await publish(broker, kind, job_id, state)

    # The arq worker has a broker of its own: what the job hands to any broker is recorded.
    monkeypatch.setattr(progress, "publish", recorded)
    body = await imported(client, runtime, key, "catalog.csv", csv_bytes(rows(7)))
    assert body["status"] == "completed"
    # Every status; the chunks, written within the hour after the last state sent, are not.
    assert sent == [("analyzing", 0), ("processing", 0), ("completed", 7)]


# ---------------------------------------------------------------- broken files


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("empty.csv", b"", "fichier vide"),
        ("header.csv", csv_bytes([]), "aucune ligne de données dans le fichier"),
        ("empty.json", b"[]", "aucune ligne de données dans le fichier"),
        ("utf16.csv", "EAN;Titre\n1;é\n".encode("utf-16"), "encodage non pris en charge"),
        ("cut.json", json_bytes(rows(3))[:-15], "tronqué"),
        ("cut.csv", csv_bytes([])[:-2] + b'\r\n3760000000019;"Chai', "tronqué"),
        ("cut.xlsx", xlsx_bytes(rows(3))[:1500], "XLSX illisible"),
        ("bomb.xlsx", zip_bomb(), "bombe ZIP"),
        ("lol.xml", BILLION_LAUGHS, "entités et DTD interdites"),
        ("cut.xml", xml_bytes(rows(3))[:-40], "tronqué"),
    ],
)  # fmt: skip
async def test_a_broken_file_fails_clearly_and_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, small_chunks: None,
    name: str, content: bytes, reason: str, reader: str,
) -> None:  # fmt: skip
    # Valid rows first: a file broken near its end must not leave them imported.
    body = await imported(client, runtime, key, name, content)
    assert body["status"] == "failed"
    assert reason in body["error_summary"]
    assert body["completed_at"] is not None and body["processed_rows"] == 0
    assert await catalog(runtime, key) == {}


# ---------------------------------------------------------------- scopes and tenancy


async def test_scopes_are_checked_per_operation(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey
) -> None:
    writer = await make_key(["imports:write"])
    reader = await make_key(["imports:read"], account=writer.account)
    created = await upload(client, writer, "catalog.csv", csv_bytes(rows(1)), dry_run="true")
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert (await upload(client, reader, "c.csv", csv_bytes(rows(1)))).status_code == 403
    denied = await client.get(f"{BASE}/jobs/{job_id}", headers=writer.bearer)
    assert denied.status_code == 403
    assert denied.json()["detail"] == "Portée requise manquante : imports:read."
    for path in ("", "/logs", "/preview"):
        assert (
            await client.get(f"{BASE}/jobs/{job_id}{path}", headers=reader.bearer)
        ).status_code == 200
    cancel = await client.post(f"{BASE}/jobs/{job_id}/cancel", headers=reader.bearer)
    assert cancel.status_code == 403
    anonymous = await client.get(f"{BASE}/jobs")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    await run_jobs(runtime)


async def test_another_account_cannot_see_or_touch_a_job(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey
) -> None:
    owner, stranger = await make_key(), await make_key()
    job_id = (
        await upload(client, owner, "catalog.csv", csv_bytes(rows(1)), dry_run="true")
    ).json()["id"]
    await run_jobs(runtime)
    for path in ("", "/logs", "/preview"):
        response = await client.get(f"{BASE}/jobs/{job_id}{path}", headers=stranger.bearer)
        assert response.status_code == 404, path
        assert response.json()["detail"] == f"Import '{job_id}' introuvable."
    assert (
        await client.post(f"{BASE}/jobs/{job_id}/confirm", headers=stranger.bearer)
    ).status_code == 404
    listed = await client.get(f"{BASE}/jobs", headers=stranger.bearer)
    assert listed.json()["items"] == []
    assert (await job(client, owner, job_id))["status"] == "ready"


# ---------------------------------------------------------------- planner statistics


def test_statistics_are_refreshed_when_the_account_may_have_doubled() -> None:
    def analysed_after(products_at_start: int, chunks: int) -> list[int]:
        schedule = import_runs.StatisticsSchedule(products_at_start)
        return [n for n in range(1, chunks + 1) if schedule.due(n * 2000)]

    # An empty account: after chunks 1, 2, 4, 8 … as it doubles.
    assert analysed_after(0, 40) == [1, 2, 4, 8, 16, 32]
    # A million products: once at the start (statistics may predate the run), then only
    # when the run has written as many rows again.
    assert analysed_after(1_000_000, 500) == [1]
    assert analysed_after(100_000, 120) == [1, 52]
