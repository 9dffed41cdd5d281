"""/openapi.json is the REST contract: every operation declares its success body and each
error envelope per status, the published examples fit the declared shapes, and the
declarations cost nothing when a route answers."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter

from pim.responses import OrjsonResponse
from rest_compat.envelopes import ERROR_STATUSES, ExtEnvelope, ExtError, WinDevError, WinDevPage
from tests.conftest import Key
from tests.openapi_check import checker_for, json_schema_of, validator_for
from tests.spec_examples import (
    ELIDED,
    SPEC_DIR,
    Example,
    all_examples,
    examples_in,
    response_labels,
)

EXAMPLES = all_examples()
ENVELOPES: dict[tuple[str, str], Any] = {
    ("ext-api.txt", "Success envelope"): ExtEnvelope[Any],
    ("ext-api.txt", "Error envelope"): ExtError,
    ("windev-api.txt", "Success"): WinDevPage[Any],
    ("windev-api.txt", "Error"): WinDevError,
}


def rest_operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1/")
    ]


def test_every_rest_operation_declares_its_body_and_each_error_envelope(app: FastAPI) -> None:
    openapi = app.openapi()
    operations = rest_operations(openapi)
    assert len(operations) > 80
    for path, method, operation in operations:
        responses = operation["responses"]
        successes = [s for s in responses if s.startswith("2")]
        assert len(successes) == 1, (method, path, successes)
        success = responses[successes[0]]
        schema = json_schema_of(success)
        if successes[0] == "204":
            assert schema is None, (method, path)
        else:
            assert schema and schema != {}, f"{method} {path}: success body undocumented"
        for status in ERROR_STATUSES:
            assert json_schema_of(responses[str(status)]), (method, path, status)
        assert "422" in responses and "HTTPValidationError" not in str(responses["422"])


def test_each_surface_documents_its_own_error_envelope(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    refs = {
        "/api/v1/ext/products/{ean}": "ExtError",
        "/api/v1/windev/products/{ref}": "WinDevError",
        "/api/v1/products/{id}": "PlainError",
        "/api/v1/connectors/{connector_id}": "PlainError",
    }
    for path, model in refs.items():
        schema = paths[path]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}


def test_the_products_list_documents_its_pagination_meta(app: FastAPI) -> None:
    openapi = app.openapi()
    schemas = openapi["components"]["schemas"]
    assert set(schemas["PageMeta"]["required"]) == {
        "total", "page", "per_page", "total_pages", "has_next", "has_previous",
    }  # fmt: skip
    assert set(schemas["ExtMeta"]["required"]) == {"total", "page", "page_size", "updated_at"}
    assert set(schemas["WinDevError"]["required"]) == {
        "success", "code", "message", "data", "count",
    }  # fmt: skip


def test_the_spec_examples_are_all_read() -> None:
    for spec in sorted(SPEC_DIR.glob("*.txt")):
        found = examples_in(spec)
        responses = [e for e in found if e.label == "Response"]
        assert len(responses) == response_labels(spec) > 0, spec.name
        assert all(e.method and e.path for e in responses), spec.name
    assert len(EXAMPLES) >= 41


def _schema_for(app: FastAPI, example: Example) -> tuple[dict[str, Any], str]:
    """The declared schema of the example's route and success status (or its envelope)."""
    openapi = app.openapi()
    if example.label != "Response":
        model = ENVELOPES[(example.source.split(":")[0], example.label)]
        schema = TypeAdapter(model).json_schema(mode="serialization")
        return schema, example.label
    assert example.method and example.path
    template = checker_for(app).template(example.method, example.path)
    assert template is not None, f"no documented route answers {example.id}"
    responses = openapi["paths"][template][example.method.lower()]["responses"]
    status = next(s for s in responses if s.startswith("2"))
    schema = json_schema_of(responses[status])
    assert schema is not None
    return {**schema, "components": openapi["components"]}, f"{template} {status}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_the_spec_example_fits_the_declared_schema(app: FastAPI, example: Example) -> None:
    schema, where = _schema_for(app, example)
    # The spec writes "..." and "550e8400-..." for times and ids: shapes, not formats.
    validator = validator_for(schema, schema.pop("components", {}), formats=False)
    errors = [
        f"{e.instance_path}: {e.message}"
        for e in validator.iter_errors(example.body)
        if e.instance != ELIDED
    ]
    assert errors == [], where


async def test_a_response_that_breaks_its_schema_is_caught(app: FastAPI) -> None:
    checker = checker_for(app)
    good = b'{"items": [], "meta": {"per_page": 50, "has_next": false, "next_cursor": null}}'
    checker.check("GET", "/api/v1/audit", 200, "application/json", good)
    with pytest.raises(AssertionError, match="breaks its schema"):
        checker.check("GET", "/api/v1/audit", 200, "application/json", b'{"items": []}')
    with pytest.raises(AssertionError, match="breaks its schema"):
        wrong = good.replace(b"[]", b'[{"id": "not-a-uuid"}]')
        checker.check("GET", "/api/v1/audit", 200, "application/json", wrong)
    with pytest.raises(AssertionError, match="not documented"):
        checker.check("GET", "/api/v1/audit", 418, "application/json", good)


async def test_route_responses_are_checked_on_the_wire(client: httpx.AsyncClient, key: Key) -> None:
    # The client fixture holds every response to /openapi.json: these pass only because
    # the error envelopes and the success body match their declarations.
    assert (
        await client.get("/api/v1/ext/products/0000000000000", headers=key.headers)
    ).status_code == 404
    assert (
        await client.get("/api/v1/windev/products/nope", headers=key.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/products", headers={})).status_code == 401
    assert (await client.get("/api/v1/keys", headers=key.headers)).status_code == 200


class _Declared(BaseModel):
    a: int


async def test_a_returned_response_is_sent_as_it_is_whatever_the_response_model() -> None:
    """What the routes rely on: FastAPI neither validates nor re-encodes a Response."""
    app = FastAPI()

    @app.get("/x", response_model=_Declared)
    async def route() -> OrjsonResponse:
        return OrjsonResponse({"a": "not an int", "extra": True})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/x")
    assert response.status_code == 200
    assert response.json() == {"a": "not an int", "extra": True}
    assert app.openapi()["paths"]["/x"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/_Declared"}}
    }
