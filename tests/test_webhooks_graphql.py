"""Webhooks over GraphQL: the same resolvers as REST, typed errors in payloads."""

import httpx

from pim.runtime import Runtime
from resolvers.webhook_delivery import verify
from tests.conftest import Key, MakeKey, gql
from tests.jobs_helper import run_jobs
from tests.webhook_documents import CREATE, ENDPOINT_FIELDS
from tests.webhook_receiver import Receiver

UPDATE = (
    """mutation($id: ID!, $input: WebhookEndpointUpdateInput!) { updateWebhookEndpoint(id: $id, input: $input) {
  endpoint { %s } errors { field message code } } }"""
    % ENDPOINT_FIELDS
)
ROTATE = """mutation($id: ID!) { rotateWebhookSecret(id: $id, expiresInHours: 2) {
  secret endpoint { previousSecretExpiresAt } errors { code } } }"""
DELETE = """mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code message } } }"""
ENABLE = """mutation($id: ID!) { enableWebhookEndpoint(id: $id) { endpoint { status } errors { code } } }"""
LIST = """query { webhookEndpoints { totalCount hasNextPage nodes { %s } } }""" % ENDPOINT_FIELDS
GET = """query($id: ID!) { webhookEndpoint(id: $id) { %s } }""" % ENDPOINT_FIELDS
DELIVERIES = """query($id: ID!) { webhookDeliveries(endpointId: $id) { totalCount nodes {
  id eventId eventType status isReplay attempts lastStatusCode lastError deliveredAt } } }"""
ATTEMPTS = """query($e: ID!, $d: ID!) { webhookAttempts(endpointId: $e, deliveryId: $d) {
  attempt statusCode latencyMs error attemptedAt } }"""
REPLAY = """mutation($e: ID!, $ev: ID!) { replayWebhookEvent(endpointId: $e, eventId: $ev) {
  delivery { eventId isReplay status } errors { field code } } }"""
REPLAY_RANGE = """mutation($e: ID!, $since: DateTime!) { replayWebhookEvents(endpointId: $e, since: $since) {
  deliveriesCreated errors { field code } } }"""


async def test_endpoint_lifecycle_and_delivery_over_graphql(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    created = (
        await gql(client, CREATE, key, input={"url": receiver.url, "events": ["product.created"]})
    )["data"]["createWebhookEndpoint"]
    assert created["errors"] == [] and created["secret"].startswith("whsec_")
    endpoint = created["endpoint"]
    assert endpoint["status"] == "ACTIVE" and endpoint["events"] == ["product.created"]

    listed = (await gql(client, LIST, key))["data"]["webhookEndpoints"]
    assert listed == {"totalCount": 1, "hasNextPage": False, "nodes": [endpoint]}
    assert (await gql(client, GET, key, id=endpoint["id"]))["data"]["webhookEndpoint"] == endpoint

    response = await client.post(
        "/api/v1/ext/products/batch",
        json={"products": [{"ean": "3760000000001", "name": "Support TV"}]},
        headers=key.headers,
    )
    assert response.status_code == 200
    await run_jobs(runtime)
    [received] = receiver.received
    assert verify(received.headers["pixee-signature"], received.body, created["secret"])

    [delivery] = (await gql(client, DELIVERIES, key, id=endpoint["id"]))["data"][
        "webhookDeliveries"
    ]["nodes"]
    assert delivery["status"] == "SUCCEEDED" and delivery["attempts"] == 1
    assert delivery["eventId"] == received.json["id"]
    [attempt] = (await gql(client, ATTEMPTS, key, e=endpoint["id"], d=delivery["id"]))["data"][
        "webhookAttempts"
    ]
    assert attempt["attempt"] == 1 and attempt["statusCode"] == 200

    replayed = (await gql(client, REPLAY, key, e=endpoint["id"], ev=delivery["eventId"]))["data"][
        "replayWebhookEvent"
    ]
    assert replayed["errors"] == [] and replayed["delivery"]["isReplay"] is True
    ranged = (await gql(client, REPLAY_RANGE, key, e=endpoint["id"], since="2020-01-01T00:00:00Z"))[
        "data"
    ]["replayWebhookEvents"]
    assert ranged == {"deliveriesCreated": 1, "errors": []}
    await run_jobs(runtime)
    assert [r.json["id"] for r in receiver.received] == [received.json["id"]] * 3

    rotated = (await gql(client, ROTATE, key, id=endpoint["id"]))["data"]["rotateWebhookSecret"]
    assert rotated["secret"] != created["secret"] and rotated["endpoint"]["previousSecretExpiresAt"]
    paused = (await gql(client, UPDATE, key, id=endpoint["id"], input={"isActive": False}))["data"][
        "updateWebhookEndpoint"
    ]
    assert paused["endpoint"]["status"] == "PAUSED"
    enabled = (await gql(client, ENABLE, key, id=endpoint["id"]))["data"]["enableWebhookEndpoint"]
    assert enabled == {"endpoint": {"status": "ACTIVE"}, "errors": []}
    deleted = (await gql(client, DELETE, key, id=endpoint["id"]))["data"]["deleteWebhookEndpoint"]
    assert deleted == {"deletedId": endpoint["id"], "errors": []}
    assert (await gql(client, LIST, key))["data"]["webhookEndpoints"]["totalCount"] == 0


async def test_expected_failures_are_typed_payload_errors(
    client: httpx.AsyncClient, key: Key
) -> None:
    refused = (await gql(client, CREATE, key, input={"url": "https://10.0.0.1/hooks"}))["data"][
        "createWebhookEndpoint"
    ]
    assert refused["endpoint"] is None and refused["secret"] is None
    assert refused["errors"][0]["field"] == "url" and refused["errors"][0]["code"] == "INVALID"
    unknown = "01a2021b-0f6f-73fb-af1f-840537838147"
    missing = (await gql(client, DELETE, key, id=unknown))["data"]["deleteWebhookEndpoint"]
    assert missing["deletedId"] is None and missing["errors"][0]["code"] == "NOT_FOUND"
    bad_id = (await gql(client, UPDATE, key, id="nope", input={}))["data"]["updateWebhookEndpoint"]
    assert bad_id["errors"][0]["field"] == "id"


async def test_graphql_needs_settings_manage_and_keeps_accounts_apart(
    client: httpx.AsyncClient, make_key: MakeKey, receiver: Receiver
) -> None:
    admin = await make_key(["settings:manage"])
    created = (await gql(client, CREATE, admin, input={"url": receiver.url}))["data"][
        "createWebhookEndpoint"
    ]
    endpoint_id = created["endpoint"]["id"]
    reader = await make_key(["products:read", "connectors:read"], account=admin.account)
    for query, variables in [
        (LIST, {}),
        (GET, {"id": endpoint_id}),
        (CREATE, {"input": {"url": receiver.url}}),
        (DELETE, {"id": endpoint_id}),
        (ROTATE, {"id": endpoint_id}),
    ]:
        body = await gql(client, query, reader, **variables)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", query
    other = await make_key(["settings:manage"])
    assert (await gql(client, LIST, other))["data"]["webhookEndpoints"]["totalCount"] == 0
    body = await gql(client, GET, other, id=endpoint_id)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
