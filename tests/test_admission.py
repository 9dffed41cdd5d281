"""Admission before reading: a request is admitted from its headers (key, rate limit,
scope) before its body is read, and bodies are read under a size limit and a read
timeout; every refusal in the surface's own format, with nothing read that need not be,
nothing written, and nothing internal shown."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from pim.auth import SCOPES
from pim.runtime import Runtime
from resolvers.bodies import MAX_JSON_DEPTH
from tests.conftest import Key, MakeKey, gql
from tests.jobs_helper import run_jobs

MB = 1024 * 1024
EAN = "3760000000001"
PRODUCT = {"ean": EAN, "name": "Support TV", "brand_name": "KIMEX"}
UPLOAD_QUERY = (
    "mutation($file: Upload!) { createImportJob(file: $file) { job { id } errors { code } } }"
)
GRAPHQL_UPSERT = "mutation($input: ProductInput!) { upsertProduct(input: $input) { created } }"

# Each surface, a route that takes a JSON body, the scope it needs, and a valid body.
SURFACES = [
    ("ext", "/api/v1/ext/products", "ext:products:write", PRODUCT),
    ("windev", "/api/v1/windev/products/sync", "windev:sync", [PRODUCT]),
    ("plain", "/api/v1/products", "products:write", PRODUCT),
    ("plain", "/api/v1/connectors/", "settings:manage", {"name": "x", "platform": "shopify"}),
    ("graphql", "/graphql", "products:write",
     {"query": GRAPHQL_UPSERT, "variables": {"input": {"ean": EAN, "name": "Support TV"}}}),
]  # fmt: skip
INTERNALS = ("traceback", "sqlalchemy", "asyncpg", "sqlite", "recursionerror", 'file "')


class Body:
    """A request body produced on demand, counting what the server pulled from it."""

    def __init__(self, size: int, chunk: int = MB, stall_after: int | None = None) -> None:
        self.size, self.chunk, self.stall_after = size, chunk, stall_after
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            if self.stall_after is not None and self.sent >= self.stall_after:
                await asyncio.sleep(3600)
            piece = min(self.chunk, self.size - self.sent)
            self.sent += piece
            yield b" " * piece


def assert_refused(response: httpx.Response, surface: str, status: int) -> dict[str, Any]:
    """The surface's own error shape, with that status and nothing internal."""
    assert response.status_code == status, response.text
    assert not any(word in response.text.lower() for word in INTERNALS), response.text
    body: dict[str, Any] = response.json()
    if surface == "ext":
        assert set(body) == {"success", "data", "meta", "errors"} and body["success"] is False
        assert body["errors"] and all(isinstance(e, str) for e in body["errors"])
    elif surface == "windev":
        assert body["success"] is False and body["code"] == status and body["message"]
        assert body["data"] is None and body["count"] == 0
    elif surface == "plain":
        assert set(body) == {"detail", "code", "field", "errors"} and body["detail"]
    else:
        assert "data" not in body and len(body["errors"]) == 1
        assert body["errors"][0]["message"] and body["errors"][0]["extensions"]["code"]
    return body


def error_code(body: dict[str, Any], surface: str) -> str | None:
    if surface == "graphql":
        return str(body["errors"][0]["extensions"]["code"]).lower()
    return body.get("code") if surface == "plain" else None


BOUNDARY = "b0undary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def graphql_upload(file: bytes) -> bytes:
    """A GraphQL multipart request (createImportJob) carrying `file`."""
    operations = orjson.dumps({"query": UPLOAD_QUERY, "variables": {"file": None}}).decode()
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            f"{operations}\r\n--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.file"]}\r\n'
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="0"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + file
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def product_exists(client: httpx.AsyncClient, key: Key) -> bool:
    response = await client.get(f"/api/v1/ext/products/{EAN}", headers=key.headers)
    return response.status_code == 200


async def import_job_count(client: httpx.AsyncClient, key: Key) -> int:
    response = await client.get("/api/v1/imports/jobs", headers=key.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["meta"]["total"])


# --- Admission before reading ---------------------------------------------------------------


@pytest.mark.parametrize(("surface", "path", "scope", "_body"), SURFACES)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "pm_live_nope"}])
async def test_a_200_mb_body_without_a_valid_key_is_refused_before_it_is_read(
    client: httpx.AsyncClient, surface: str, path: str, scope: str, _body: Any,
    headers: dict[str, str],
) -> None:  # fmt: skip
    body = Body(200 * MB)
    sent = {**headers, "Content-Type": "application/json", "Content-Length": str(body.size)}
    response = await client.post(path, content=body, headers=sent)
    assert error_code(assert_refused(response, surface, 401), surface) in (None, "unauthenticated")
    assert body.sent == 0
    assert response.headers["Connection"] == "close"


@pytest.mark.parametrize(("surface", "path", "scope", "_body"), SURFACES)
async def test_a_body_without_a_length_and_a_wrong_key_is_refused_before_it_is_read(
    client: httpx.AsyncClient, surface: str, path: str, scope: str, _body: Any
) -> None:
    body = Body(200 * MB)
    sent = {"X-API-Key": "pm_live_nope", "Content-Type": "application/json"}
    response = await client.post(path, content=body, headers=sent)  # chunked
    assert_refused(response, surface, 401)
    assert body.sent == 0


async def test_an_anonymous_graphql_request_may_only_send_what_introspection_needs(
    client: httpx.AsyncClient,
) -> None:
    body = Body(200 * MB, chunk=64 * 1024)
    response = await client.post("/graphql", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert error_code(assert_refused(response, "graphql", 401), "graphql") == "unauthenticated"
    assert body.sent <= 64 * 1024
    # Introspection itself still works without a key (GraphiQL's documentation explorer).
    introspection = await gql(client, "{ __schema { queryType { name } } }")
    assert introspection["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_an_anonymous_graphql_upload_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    body = Body(200 * MB)
    headers = {**MULTIPART, "Content-Length": str(body.size)}
    response = await client.post("/graphql", content=body, headers=headers)
    assert error_code(assert_refused(response, "graphql", 401), "graphql") == "unauthenticated"
    assert body.sent == 0


async def test_a_key_without_the_imports_scope_gets_its_403_before_its_upload_is_read(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    reader = await make_key(["imports:read", "products:write"])
    for surface, path in (("plain", "/api/v1/imports/jobs"), ("graphql", "/graphql")):
        body = Body(200 * MB)
        headers = {**MULTIPART, "Content-Length": str(body.size), **reader.headers}
        response = await client.post(path, content=body, headers=headers)
        refused = assert_refused(response, surface, 403)
        assert error_code(refused, surface) == "forbidden"
        assert body.sent == 0
    assert await import_job_count(client, reader) == 0


SOME_ID = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("surface", "method", "path", "scope"),
    [
        # (GraphQL checks scopes per field, after parsing; its uploads are tested above.)
        *[(surface, "POST", path, scope) for surface, path, scope, _ in SURFACES[:4]],
        ("plain", "PATCH", f"/api/v1/connectors/{SOME_ID}", "settings:manage"),
        ("plain", "POST", f"/api/v1/connectors/{SOME_ID}/sync/push-products", "settings:manage"),
        ("plain", "POST", "/api/v1/woocommerce/", "settings:manage"),
        ("plain", "POST", "/api/v1/webhooks", "settings:manage"),
        ("plain", "PATCH", f"/api/v1/webhooks/{SOME_ID}", "settings:manage"),
        ("plain", "POST", f"/api/v1/webhooks/{SOME_ID}/replay-range", "settings:manage"),
        ("plain", "POST", "/api/v1/imports/automations", "imports:write"),
        ("plain", "PATCH", f"/api/v1/imports/automations/{SOME_ID}", "imports:write"),
    ],
)
async def test_a_key_without_the_routes_scope_gets_its_403_before_its_body_is_read(
    client: httpx.AsyncClient, make_key: MakeKey, surface: str, method: str, path: str,
    scope: str,
) -> None:  # fmt: skip
    others = await make_key(sorted(set(SCOPES) - {scope}))
    body = Body(5 * MB)  # within the JSON limit: only the scope can refuse it unread
    headers = {**others.headers, "Content-Type": "application/json",
               "Content-Length": str(body.size)}  # fmt: skip
    response = await client.request(method, path, content=body, headers=headers)
    refused = assert_refused(response, surface, 403)
    assert error_code(refused, surface) in (None, "forbidden")
    assert scope in response.text
    assert body.sent == 0


async def test_a_rate_limited_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(rate_limit=1)
    assert (await client.get("/api/v1/ext/status", headers=key.headers)).status_code == 200
    for surface, path, _scope, _body in SURFACES:
        body = Body(200 * MB)
        headers = {**key.headers, "Content-Type": "application/json"}
        response = await client.post(path, content=body, headers=headers)
        assert_refused(response, surface, 429)
        assert int(response.headers["Retry-After"]) >= 1
        assert body.sent == 0


async def test_a_graphql_request_with_a_wrong_key_is_refused_in_the_graphql_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ viewer { keyName } }"}, headers={"X-API-Key": "pm_live_x"}
    )
    body = assert_refused(response, "graphql", 401)
    assert body["errors"][0] == {
        "message": "Clé API manquante ou invalide.",
        "extensions": {"code": "UNAUTHENTICATED", "field": None},
    }


# --- Size limits, while streaming ------------------------------------------------------------


@pytest.fixture
def small_limits(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.settings, "max_body_bytes", 64 * 1024)
    monkeypatch.setattr(runtime.settings, "max_upload_bytes", 256 * 1024)


def padded(body: Any, size: int) -> bytes:
    """`body` as JSON followed by whitespace up to `size` bytes: valid, and too big."""
    raw = orjson.dumps(body)
    return raw + b" " * (size - len(raw))


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize(("surface", "path", "scope", "valid"), SURFACES)
@pytest.mark.parametrize("length", ["honest", "lying", "absent"])
async def test_a_json_body_over_the_limit_is_a_413_and_writes_nothing(
    client: httpx.AsyncClient, make_key: MakeKey, surface: str, path: str, scope: str,
    valid: Any, length: str,
) -> None:  # fmt: skip
    key = await make_key([scope, "ext:products:read"])
    raw = padded(valid, 200 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 16 * 1024):
            yield raw[start : start + 16 * 1024]

    headers = {**key.headers, "Content-Type": "application/json"}
    if length == "honest":
        headers["Content-Length"] = str(len(raw))
    elif length == "lying":
        headers["Content-Length"] = "100"
    response = await client.post(path, content=chunks(), headers=headers)
    body = assert_refused(response, surface, 413)
    assert error_code(body, surface) in (None, "payload_too_large")
    assert not await product_exists(client, key)


@pytest.mark.usefixtures("small_limits")
async def test_a_json_body_within_the_limit_is_read_as_before(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    raw = padded(PRODUCT, 60 * 1024)
    headers = {**key.headers, "Content-Type": "application/json"}
    response = await client.post("/api/v1/ext/products", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert await product_exists(client, key)
    # A body read to its end, or no body at all, keeps the connection open.
    listed = await client.get("/api/v1/ext/products", headers=key.headers)
    assert "connection" not in response.headers and "connection" not in listed.headers


@pytest.mark.usefixtures("small_limits")
async def test_an_upload_over_the_upload_limit_is_a_413_and_creates_no_job(
    client: httpx.AsyncClient, key: Key
) -> None:
    file = b"ean;name\n" + b"3760000000001;x\n" * 20_000  # 320 KB
    files = {"file": ("big.csv", file, "text/csv")}
    rest = await client.post("/api/v1/imports/jobs", files=files, headers=key.headers)
    assert error_code(assert_refused(rest, "plain", 413), "plain") == "payload_too_large"

    response = await client.post(
        "/graphql", content=graphql_upload(file), headers={**MULTIPART, **key.headers}
    )
    body = assert_refused(response, "graphql", 413)
    assert error_code(body, "graphql") == "payload_too_large"
    assert await import_job_count(client, key) == 0


@pytest.mark.usefixtures("small_limits")
async def test_an_upload_within_the_upload_limit_but_over_the_json_limit_is_accepted(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    file = b"ean;name\n" + b"3760000000001;x\n" * 10_000  # 160 KB
    files = {"file": ("ok.csv", file, "text/csv")}
    rest = await client.post("/api/v1/imports/jobs", files=files, headers=key.headers)
    assert rest.status_code == 201, rest.text

    response = await client.post(
        "/graphql", content=graphql_upload(file), headers={**MULTIPART, **key.headers}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["createImportJob"]["errors"] == []
    assert await import_job_count(client, key) == 2
    await run_jobs(runtime)  # nothing left running after the test


async def test_an_upload_padded_with_form_fields_is_refused_before_they_fill_memory(
    client: httpx.AsyncClient, key: Key
) -> None:
    padding = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n{"x" * 1000}\r\n'
        for i in range(100)
    ).encode()
    headers = {**MULTIPART, **key.headers}
    graphql = await client.post("/graphql", content=padding + graphql_upload(b"ean\n"),
                                headers=headers)  # fmt: skip
    assert_refused(graphql, "graphql", 400)
    rest = await client.post("/api/v1/imports/jobs", content=padding + graphql_upload(b"ean\n"),
                             headers=headers)  # fmt: skip
    assert error_code(assert_refused(rest, "plain", 422), "plain") == "validation_failed"
    assert await import_job_count(client, key) == 0


# --- Slow bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(("surface", "path", "scope", "valid"), SURFACES)
async def test_a_stalled_body_is_a_408_after_the_read_timeout(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch, surface: str, path: str, scope: str, valid: Any,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "body_read_timeout_seconds", 0.2)
    key = await make_key([scope, "ext:products:read"])
    body = Body(MB, chunk=1024, stall_after=1024)  # declares 1 MB, sends 1 KB
    headers = {**key.headers, "Content-Type": "application/json",
               "Content-Length": str(body.size)}  # fmt: skip
    response = await asyncio.wait_for(client.post(path, content=body, headers=headers), 30)
    body_out = assert_refused(response, surface, 408)
    assert error_code(body_out, surface) in (None, "request_timeout")
    assert response.headers["Connection"] == "close"
    assert not await product_exists(client, key)


@pytest.mark.parametrize(("surface", "path", "scope", "valid"), SURFACES)
async def test_a_body_dripping_under_the_minimum_rate_is_a_408_though_never_idle(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch, surface: str, path: str, scope: str, valid: Any,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "body_read_timeout_seconds", 0.3)
    monkeypatch.setattr(runtime.settings, "body_min_bytes_per_second", 10_000)
    key = await make_key([scope, "ext:products:read"])

    async def drip() -> AsyncIterator[bytes]:
        for _ in range(MB // 10):
            await asyncio.sleep(0.05)  # 200 bytes/s, a piece well within the idle timeout
            yield b" " * 10

    headers = {**key.headers, "Content-Type": "application/json", "Content-Length": str(MB)}
    response = await asyncio.wait_for(client.post(path, content=drip(), headers=headers), 30)
    assert error_code(assert_refused(response, surface, 408), surface) in (None, "request_timeout")


# --- Nesting depth --------------------------------------------------------------------------


@pytest.mark.parametrize(("surface", "path", "scope", "_body"), SURFACES)
async def test_json_nested_100000_deep_is_a_clear_4xx(
    client: httpx.AsyncClient, make_key: MakeKey, surface: str, path: str, scope: str,
    _body: Any,
) -> None:  # fmt: skip
    key = await make_key([scope])
    deep = b"[" * 100_000 + b"]" * 100_000
    if surface == "graphql":
        deep = b'{"query": "{ viewer { keyName } }", "variables": {"x": ' + deep + b"}}"
    headers = {**key.headers, "Content-Type": "application/json"}
    response = await client.post(path, content=deep, headers=headers)
    # 400 where the surface says malformed JSON is (GraphQL, the Products API), else 422.
    assert response.status_code in ((400,) if surface == "graphql" else (400, 422))
    body = assert_refused(response, surface, response.status_code)
    assert error_code(body, surface) in (None, "validation_failed", "json_invalid")


def nested(depth: int) -> bytes:
    """JSON text of objects nested `depth` deep (encoders stop near 1,000 levels)."""
    return b'{"x":' * (depth - 1) + b"1" + b"}" * (depth - 1)


@pytest.mark.parametrize(("surface", "path", "scope", "valid"), SURFACES)
async def test_json_nested_past_the_depth_bound_is_refused_before_anything_is_written(
    client: httpx.AsyncClient, make_key: MakeKey, surface: str, path: str, scope: str,
    valid: Any,
) -> None:  # fmt: skip
    """1,000 levels decode (orjson's limit is 1,024) but break json.dumps, orjson.dumps and
    deepcopy afterwards: a connector with such options was a 500 when stored."""
    key = await make_key([scope, "ext:products:read"])
    if surface == "graphql":
        body: Any = {**valid, "variables": {**valid["variables"], "unused": "DEEP"}}
    elif surface == "windev":
        body = [{**valid[0], "extra": "DEEP"}]
    else:
        body = {**valid, "options": "DEEP"}
    raw = orjson.dumps(body).replace(b'"DEEP"', nested(1000))
    headers = {**key.headers, "Content-Type": "application/json"}
    response = await client.post(path, content=raw, headers=headers)
    refused = assert_refused(response, surface, 400 if surface == "graphql" else 422)
    assert error_code(refused, surface) in (None, "validation_failed")
    assert "imbriqué" in response.text
    assert not await product_exists(client, key)


@pytest.mark.parametrize(("depth", "status"), [(MAX_JSON_DEPTH, 200), (MAX_JSON_DEPTH + 1, 400)])
async def test_json_is_read_up_to_the_depth_bound_exactly(
    client: httpx.AsyncClient, depth: int, status: int
) -> None:
    # An anonymous query whose unused variable takes the body `depth` levels deep (the
    # body is level 1, `variables` level 2).
    raw = b'{"query": "{ __typename }", "variables": {"deep": ' + nested(depth - 1) + b"}}"
    response = await client.post("/graphql", content=raw,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == status, response.text


# --- Trailing slashes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("surface", "path"),
    [("ext", "/api/v1/ext/products/"), ("plain", "/api/v1/products/"), ("graphql", "/graphql/")],
)
async def test_a_trailing_slash_never_redirects_to_the_host_header(
    client: httpx.AsyncClient, key: Key, surface: str, path: str
) -> None:
    response = await client.get(path, headers={**key.headers, "Host": "evil.example"})
    assert "evil.example" not in response.headers.get("Location", "")
    assert_refused(response, surface, 404)


async def test_the_documented_routes_with_a_trailing_slash_still_answer(
    client: httpx.AsyncClient, key: Key
) -> None:
    for path in ("/api/v1/connectors/", "/api/v1/woocommerce/", "/api/v1/magento/"):
        response = await client.get(path, headers=key.headers)
        assert response.status_code == 200, (path, response.text)
