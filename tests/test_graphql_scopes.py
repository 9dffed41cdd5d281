"""Every GraphQL query and mutation field, called with a key of each scope, is allowed
exactly when resolvers/permissions.py allows its operation to that scope: the same
table the REST routes answer by.

The calls are built from the schema itself (required arguments with plausible values,
a selection of the payload down to its error codes), so a new field fails this test
until it says here which operation it is.
"""

import json
import uuid
from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)

from jobs.demo import ean13
from pim.auth import SCOPES
from pim.settings import Settings
from resolvers.permissions import ALLOWED, Operation
from schema import build_schema
from tests.conftest import MakeKey, gql

Op = Operation
# fmt: off
OPERATION_OF: dict[str, Operation | None] = {
    "viewer": None,
    **dict.fromkeys(
        ["product", "products", "productsDelta", "brands", "categories", "suppliers"],
        Op.PRODUCTS_READ,
    ),
    **dict.fromkeys(
        [
            "importJob",
            "importJobs",
            "importJobLogs",
            "importJobPreview",
            "automations",
            "automation",
        ],
        Op.IMPORTS_READ,
    ),
    **dict.fromkeys(["connectors", "connector", "syncJob", "syncJobs"], Op.CONNECTORS_READ),
    # Every product below has an EAN never seen: an upsert creates.
    **dict.fromkeys(["upsertProduct", "upsertProducts", "createProducts"], Op.PRODUCTS_CREATE),
    **dict.fromkeys(
        [
            "updateProducts",
            "replaceProduct",
            "updateProduct",
            "updateStock",
            "updatePrices",
            "activateProduct",
            "deactivateProduct",
        ],
        Op.PRODUCTS_UPDATE,
    ),
    "deleteProduct": Op.PRODUCTS_DELETE,
    **dict.fromkeys(["createCategory", "createSupplier"], Op.CATALOG_WRITE),
    **dict.fromkeys(
        [
            "confirmImportJob",
            "pauseImportJob",
            "resumeImportJob",
            "cancelImportJob",
            "createImportJob",
            "createAutomation",
            "updateAutomation",
            "runAutomation",
            "deleteAutomation",
        ],
        Op.IMPORTS_WRITE,
    ),
    **dict.fromkeys(
        [
            "webhookEndpoints",
            "webhookEndpoint",
            "webhookDeliveries",
            "webhookAttempts",
            "createConnector",
            "updateConnector",
            "deleteConnector",
            "testConnector",
            "pushProducts",
            "pullProducts",
            "pushStock",
            "pushPrices",
            "cancelSyncJob",
            "createWebhookEndpoint",
            "updateWebhookEndpoint",
            "deleteWebhookEndpoint",
            "rotateWebhookSecret",
            "enableWebhookEndpoint",
            "replayWebhookEvent",
            "replayWebhookEvents",
            "apiKeys",
            "auditEvents",
            "createApiKey",
            "revokeApiKey",
            "rotateApiKey",
        ],
        Op.SETTINGS_MANAGE,
    ),
}
# fmt: on
SCHEMA = build_schema(Settings())._schema
ROOTS = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type}
FIELDS = [(kind, name) for kind, root in ROOTS.items() for name in root.fields]  # type: ignore[union-attr]
_EANS = count(int(uuid.uuid4().int % 10**8) * 10)


class Upload:
    """Stands for the one file an operation uploads (sent as multipart)."""


def _literal(kind: GraphQLInputType, name: str) -> Any:
    """A plausible value of `kind`, as GraphQL literal text (an Upload: a marker)."""
    if isinstance(kind, GraphQLNonNull):
        return _literal(kind.of_type, name)
    if isinstance(kind, GraphQLList):
        return f"[{_literal(kind.of_type, name)}]"
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        wanted = [
            (n, f.type) for n, f in kind.fields.items()
            if isinstance(f.type, GraphQLNonNull) or n in ("ean", "name")
        ]  # fmt: skip
        return "{%s}" % ", ".join(f"{n}: {_literal(t, n)}" for n, t in wanted)
    assert isinstance(kind, GraphQLScalarType)
    if kind.name == "Upload":
        return Upload
    if kind.name == "ID":
        return json.dumps(str(uuid.uuid4()))
    if kind.name == "String":
        return json.dumps(ean13(next(_EANS)) if name == "ean" else f"walk {name}")
    return {"Int": "1", "Float": "1.5", "Boolean": "false", "JSON": "{}"}.get(
        kind.name, json.dumps("2026-01-01T00:00:00Z")
    )


def _selection(kind: Any, depth: int = 3) -> str:
    named = get_named_type(kind)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, field in named.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()):
            continue
        if not isinstance(get_named_type(field.type), GraphQLObjectType):
            parts.append(name)
        elif depth > 1 and (inner := _selection(field.type, depth - 1)):
            parts.append(f"{name} {inner}")
    return "{ %s }" % " ".join(parts) if parts else ""


def _call(kind: str, name: str) -> tuple[str, bool]:
    """The document that calls the field, and whether it uploads a file."""
    field: GraphQLField = ROOTS[kind].fields[name]  # type: ignore[union-attr]
    arguments, uploads = [], False
    for arg_name, arg in field.args.items():
        required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
        if not required and arg_name not in ("ean", "ref"):
            continue
        value = _literal(arg.type, arg_name)
        uploads = uploads or value is Upload
        arguments.append(f"{arg_name}: {'$file' if value is Upload else value}")
    header = f"{kind} ($file: Upload!)" if uploads else kind
    args = f"({', '.join(arguments)})" if arguments else ""
    return f"{header} {{ {name}{args} {_selection(field.type)} }}", uploads


def _forbidden(value: Any) -> Iterator[bool]:
    """Whether a response refuses for want of a scope anywhere: top level, payload, or
    batch item."""
    if isinstance(value, dict):
        yield value.get("code") in ("FORBIDDEN", "SCOPE_MISSING")
        for inner in value.values():
            yield from _forbidden(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _forbidden(inner)


async def _send(client: httpx.AsyncClient, document: str, uploads: bool, key: Any) -> Any:
    if uploads:
        operations = {"query": document, "variables": {"file": None}}
        response = await client.post(
            "/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": ("walk.bin", b"", "application/octet-stream")},
            headers=key.headers,
        )
    else:
        response = await client.post("/graphql", json={"query": document}, headers=key.headers)
    # An upload without imports:write is refused (403) from its headers, before its body.
    expected = (200, 403) if uploads else (200,)
    assert response.status_code in expected, response.text
    return response.json()


def test_every_query_and_mutation_field_says_which_operation_it_is() -> None:
    assert sorted(OPERATION_OF) == sorted(name for _, name in FIELDS)


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=[name for _, name in FIELDS])
async def test_a_field_is_allowed_to_exactly_the_scopes_its_operation_allows(
    client: httpx.AsyncClient, make_key: MakeKey, kind: str, name: str
) -> None:
    operation = OPERATION_OF[name]
    account = f"walk-{uuid.uuid4().hex[:12]}"
    for scope in sorted(SCOPES):
        key = await make_key([scope], account=account)
        document, uploads = _call(kind, name)
        body = await _send(client, document, uploads, key)
        refused = any(_forbidden(body))
        expected = operation is not None and scope not in ALLOWED[operation]
        assert refused == expected, (scope, document, body)


async def test_a_key_that_may_only_update_updates_what_exists_and_creates_nothing(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    account = f"acct-{uuid.uuid4().hex[:12]}"
    syncer = await make_key(["windev:sync", "windev:read"], account=account)
    writer = await make_key(["windev:write"], account=account)
    existing, new = ean13(next(_EANS)), ean13(next(_EANS))
    upsert = """mutation ($inputs: [ProductInput!]!) { upsertProducts(inputs: $inputs) {
      created updated failed results { ean status errors { field code } } } }"""
    created = await gql(client, upsert, syncer, inputs=[{"ean": existing, "name": "Support"}])
    assert created["data"]["upsertProducts"]["created"] == 1

    items = [
        {"ean": existing, "name": "Support mural"},
        {"ean": new, "name": "Nouveau", "brandName": "Marque inconnue"},
    ]
    body = (await gql(client, upsert, writer, inputs=items))["data"]["upsertProducts"]
    assert (body["created"], body["updated"], body["failed"]) == (0, 1, 1)
    assert body["results"][1] == {
        "ean": new,
        "status": "ERROR",
        "errors": [{"field": "ean", "code": "SCOPE_MISSING"}],
    }
    brands = await gql(client, "{ brands { name } }", syncer)
    assert brands["data"]["brands"] == []
    product = await gql(client, "query ($e: String) { product(ean: $e) { id } }", syncer, e=new)
    assert product["data"]["product"] is None
