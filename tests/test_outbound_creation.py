"""Addresses users save (automation sources, connector and webhook URLs) go through the
outbound guard when they are saved, on REST and GraphQL alike: numeric host forms are
read as the address they stand for, and private ones are refused before anything runs."""

import httpx
import pytest

from tests.conftest import Key, gql

PRIVATE_URLS = [
    "https://2130706433/f.csv",
    "https://0x7f000001/f.csv",
    "https://127.1/f.csv",
    "https://0177.0.0.1/f.csv",
    "https://[64:ff9b::a9fe:a9fe]/f.csv",
    "https://[::127.0.0.1]/f.csv",
]
CREATE_AUTOMATION = """mutation($input: AutomationInput!) { createAutomation(input: $input) {
  automation { id fileSource { url host } } errors { field code } } }"""
CREATE_CONNECTOR = """mutation($input: ConnectorInput!) { createConnector(input: $input) {
  connector { id } errors { field code } } }"""
CREATE_WEBHOOK = """mutation($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
  endpoint { id } errors { field code } } }"""


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_an_automation_naming_a_private_address_in_any_form_is_refused(
    client: httpx.AsyncClient, key: Key, url: str
) -> None:
    body = {"name": "F", "schedule": "0 2 * * *", "file_source": {"type": "https", "url": url}}
    response = await client.post("/api/v1/imports/automations", json=body, headers=key.headers)
    assert response.status_code == 422
    assert response.json()["field"] == "file_source.url"
    graphql = await gql(
        client,
        CREATE_AUTOMATION,
        key,
        input={"name": "F", "schedule": "0 2 * * *", "fileSource": {"type": "HTTPS", "url": url}},
    )
    assert graphql["data"]["createAutomation"] == {
        "automation": None,
        "errors": [{"field": "file_source.url", "code": "INVALID"}],
    }
    host = url.split("/")[2]
    sftp = {"type": "sftp", "host": host.strip("[]"), "path": "/f.csv"}
    response = await client.post(
        "/api/v1/imports/automations", json=body | {"file_source": sftp}, headers=key.headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "file_source.host"
    listed = await client.get("/api/v1/imports/automations", headers=key.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_an_automation_stores_a_public_numeric_host_as_its_dotted_quad(
    client: httpx.AsyncClient, key: Key
) -> None:
    created = await gql(
        client,
        CREATE_AUTOMATION,
        key,
        input={
            "name": "F",
            "schedule": "0 2 * * *",
            "fileSource": {"type": "HTTPS", "url": "https://134744072/f.csv"},
        },
    )
    assert created["data"]["createAutomation"]["automation"]["fileSource"] == {
        "url": "https://8.8.8.8/f.csv",
        "host": None,
    }
    body = {
        "name": "G",
        "schedule": "0 2 * * *",
        "file_source": {"type": "sftp", "host": "010.010.010.010", "path": "/f.csv"},
    }
    response = await client.post("/api/v1/imports/automations", json=body, headers=key.headers)
    assert response.status_code == 201
    stored = await client.get(
        f"/api/v1/imports/automations/{response.json()['id']}", headers=key.headers
    )
    assert stored.json()["file_source"]["host"] == "8.8.8.8"


@pytest.mark.parametrize("url", PRIVATE_URLS[:4])
async def test_connector_and_webhook_urls_naming_private_addresses_are_refused_on_graphql(
    client: httpx.AsyncClient, key: Key, url: str
) -> None:
    connector = await gql(
        client,
        CREATE_CONNECTOR,
        key,
        input={"name": "Boutique", "platform": "woocommerce", "baseUrl": url},
    )
    assert connector["data"]["createConnector"] == {
        "connector": None,
        "errors": [{"field": "base_url", "code": "INVALID"}],
    }
    webhook = await gql(client, CREATE_WEBHOOK, key, input={"url": url})
    assert webhook["data"]["createWebhookEndpoint"] == {
        "endpoint": None,
        "errors": [{"field": "url", "code": "INVALID"}],
    }
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["*"]}, headers=key.headers
    )
    assert response.status_code == 422 and response.json()["field"] == "url"
    listed = await client.get("/api/v1/connectors/", headers=key.headers)
    assert listed.json()["meta"]["total"] == 0
