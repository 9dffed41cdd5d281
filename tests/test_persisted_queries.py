"""Persisted queries as Apollo clients use them (hash first, text on "not found"), a build
step's manifest (`pim graphql persist`), and persisted-only execution."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from models import PersistedQuery
from pim import metrics
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers import persisted_queries
from resolvers.persisted_queries import sha256_of
from service.api import create_app
from service.runtime import build_runtime
from tests.conftest import Key, MakeKey

APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"


def fresh_query() -> tuple[str, str, str]:
    """An operation no other test has stored: its name, text and hash."""
    name = f"Viewer{uuid.uuid4().hex[:12]}"
    query = f"query {name} {{ viewer {{ accountName }} }}"
    return name, query, sha256_of(query)


def apq(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def post(
    client: httpx.AsyncClient, key: Key | None, **body: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"accept": APOLLO_ACCEPT, **(key.headers if key else {})}
    response = await client.post("/graphql", json=body, headers=headers)
    return response.status_code, response.json()


def operations_count(name: str) -> float:
    return metrics.GRAPHQL_OPERATIONS.labels(name, "ok")._value.get()  # type: ignore[no-any-return]


async def test_an_unknown_hash_answers_persisted_query_not_found_as_apollo_expects(
    client: httpx.AsyncClient, key: Key
) -> None:
    _, _, sha = fresh_query()
    status, body = await post(client, key, extensions=apq(sha))
    assert status == 200
    assert body == {
        "data": None,
        "errors": [
            {"message": "PersistedQueryNotFound",
             "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
        ],
    }  # fmt: skip


async def test_a_text_sent_with_its_hash_is_stored_then_runs_from_the_hash_alone(
    client: httpx.AsyncClient, key: Key
) -> None:
    name, query, sha = fresh_query()
    status, first = await post(client, key, query=query, extensions=apq(sha))
    assert status == 200 and first["data"] == {"viewer": {"accountName": key.account}}

    status, again = await post(client, key, extensions=apq(sha), operationName=name)
    assert status == 200
    assert again["data"] == {"viewer": {"accountName": key.account}}
    assert again["extensions"]["cost"]["requested"] == first["extensions"]["cost"]["requested"]


async def test_a_stored_operation_runs_over_get_as_apollo_sends_hashed_queries(
    client: httpx.AsyncClient, key: Key
) -> None:
    _, query, sha = fresh_query()
    await post(client, key, query=query, extensions=apq(sha))
    params = {"extensions": json.dumps(apq(sha)), "variables": "{}"}
    # httpx's default Accept is */*, which would otherwise get the GraphiQL page.
    response = await client.get("/graphql", params=params, headers=key.headers)
    assert response.status_code == 200
    assert response.json()["data"] == {"viewer": {"accountName": key.account}}


async def test_a_text_that_is_not_its_hash_is_refused_and_not_stored(
    client: httpx.AsyncClient, key: Key
) -> None:
    _, query, _ = fresh_query()
    _, _, other = fresh_query()
    status, body = await post(client, key, query=query, extensions=apq(other))
    assert status == 400
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "SHA-256" in body["errors"][0]["message"]
    _, after = await post(client, key, extensions=apq(other))
    assert after["errors"][0]["message"] == "PersistedQueryNotFound"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not a hash"}},
        {"persistedQuery": "yes"},
    ],
)
async def test_a_malformed_persisted_query_extension_is_a_400(
    client: httpx.AsyncClient, key: Key, extensions: dict[str, Any]
) -> None:
    status, body = await post(client, key, extensions=extensions)
    assert status == 400
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def test_storing_an_operation_takes_a_key(client: httpx.AsyncClient) -> None:
    _, query, sha = fresh_query()
    status, body = await post(client, None, query=query, extensions=apq(sha))
    assert status == 401
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_operation_sent_as_a_hash_is_counted_by_its_name_like_any_other(
    client: httpx.AsyncClient, key: Key
) -> None:
    name, query, sha = fresh_query()
    await post(client, key, query=query, extensions=apq(sha))
    assert operations_count(name) == 1
    await post(client, key, extensions=apq(sha))
    await post(client, key, extensions=apq(sha), operationName=name)
    assert operations_count(name) == 3


def pim_graphql(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIM_")}
    env["PIM_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["PIM_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "graphql", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
async def persisted_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    closed = settings.model_copy(update={"graphql_persisted_only": True})
    runtime = build_runtime(closed)
    app: FastAPI = create_app(closed, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await runtime.close()


async def test_persisted_only_runs_what_the_build_step_allowlisted_and_nothing_else(
    persisted_only: httpx.AsyncClient, client: httpx.AsyncClient, key: Key, settings: Settings,
    tmp_path: Path,
) -> None:  # fmt: skip
    name, query, sha = fresh_query()
    _, sent_query, sent_sha = fresh_query()
    manifest = tmp_path / "persisted-query-manifest.json"
    manifest.write_text(json.dumps({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{"id": sha, "name": name, "type": "query", "body": query}],
    }))  # fmt: skip
    # Stored by a client before the switch: not allowlisted.
    await post(client, key, query=sent_query, extensions=apq(sent_sha))

    done = pim_graphql(settings, "persist", str(manifest))
    assert done.returncode == 0, done.stderr
    assert "1 opérations persistées" in done.stdout

    status, body = await post(persisted_only, key, extensions=apq(sha))
    assert status == 200 and body["data"] == {"viewer": {"accountName": key.account}}
    status, body = await post(persisted_only, key, query=query)
    assert status == 403
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    status, body = await post(persisted_only, key, extensions=apq(sent_sha))
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    status, body = await post(persisted_only, key, query=sent_query, extensions=apq(sent_sha))
    assert status == 403
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


def test_a_manifest_whose_id_is_not_the_hash_of_its_text_is_refused_whole(
    settings: Settings, tmp_path: Path
) -> None:
    _, query, _ = fresh_query()
    manifest = tmp_path / "ops.json"
    manifest.write_text(json.dumps({"0" * 64: query}))
    done = pim_graphql(settings, "persist", str(manifest))
    assert done.returncode == 1
    assert "SHA-256" in done.stderr


async def test_a_text_that_is_no_operation_of_the_schema_is_answered_but_not_stored(
    client: httpx.AsyncClient, key: Key
) -> None:
    query = f"query Nope{uuid.uuid4().hex[:8]} {{ noSuchField }}"
    sha = sha256_of(query)
    status, body = await post(client, key, query=query, extensions=apq(sha))
    assert status == 200 and body["errors"] and "noSuchField" in body["errors"][0]["message"]
    _, after = await post(client, key, extensions=apq(sha))
    assert after["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_past_the_stored_maximum_a_text_still_runs_but_is_not_stored(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime.db.read() as session:
        automatic = select(func.count()).where(PersistedQuery.allowlisted.is_(False))
        count = (await session.execute(automatic)).scalar_one()
    monkeypatch.setattr(persisted_queries, "MAX_AUTOMATIC", count)
    _, query, sha = fresh_query()
    status, body = await post(client, key, query=query, extensions=apq(sha))
    assert status == 200 and body["data"] == {"viewer": {"accountName": key.account}}
    _, after = await post(client, key, extensions=apq(sha))
    assert after["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_an_account_restricted_to_persisted_operations_runs_only_those(
    client: httpx.AsyncClient, make_key: MakeKey, settings: Settings, tmp_path: Path
) -> None:
    restricted = await make_key()
    other = await make_key()
    name, query, sha = fresh_query()
    manifest = tmp_path / "ops.json"
    manifest.write_text(json.dumps({sha: query}))
    assert pim_graphql(settings, "persist", str(manifest)).returncode == 0

    done = pim_graphql(settings, "persisted-only", restricted.account, "on")
    assert done.returncode == 0, done.stderr
    status, body = await post(client, restricted, query=query)
    assert status == 403
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    status, body = await post(client, restricted, extensions=apq(sha), operationName=name)
    assert status == 200 and body["data"] == {"viewer": {"accountName": restricted.account}}
    status, body = await post(client, other, query=query)
    assert status == 200 and body["data"] == {"viewer": {"accountName": other.account}}

    assert pim_graphql(settings, "persisted-only", restricted.account, "off").returncode == 0
    again = await make_key(account=restricted.account)  # a key not cached as restricted
    status, body = await post(client, again, query=query)
    assert status == 200 and body["data"] == {"viewer": {"accountName": restricted.account}}


def test_restricting_an_unknown_account_fails(settings: Settings) -> None:
    done = pim_graphql(settings, "persisted-only", f"nobody-{uuid.uuid4().hex}", "on")
    assert done.returncode == 1
    assert "introuvable" in done.stderr
