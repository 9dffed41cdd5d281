"""Connector syncs counted in /metrics by platform and outcome, against each platform's fake."""

import httpx

from pim.runtime import Runtime
from tests.conftest import MakeKey
from tests.connectors.conftest import Store, create_connector, make_products, sync
from tests.scraping import scrape, value


async def test_sync_items_are_counted_by_platform_and_outcome(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    key = await make_key()
    await make_products(open_runtime, key, 3)
    connector = await create_connector(open_client, key, store.fields())
    before = await scrape(open_client)
    await sync(open_client, open_runtime, key, connector["id"], "push-products")
    await sync(open_client, open_runtime, key, connector["id"], "push-products")
    after = await scrape(open_client)

    def moved(outcome: str) -> float:
        labels = {"platform": store.platform, "outcome": outcome}
        return value(after, "pim_connector_items_total", **labels) - value(
            before, "pim_connector_items_total", **labels
        )

    assert (moved("ok"), moved("skipped"), moved("failed")) == (3, 3, 0)
    assert (
        value(after, "pim_job_runs_total", function="run_connector_sync", outcome="ok")
        - value(before, "pim_job_runs_total", function="run_connector_sync", outcome="ok")
    ) == 2
