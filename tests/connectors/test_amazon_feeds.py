"""Amazon listings pushed in bulk through the JSON_LISTINGS_FEED, against the strict
Feeds API of tests.connectors.fakes.amazon_feeds: each listing once through the
exactly-once matrix with one feed and one document whatever createFeed answers, each
SKU's outcome from the processing report, a feed unfinished past the wait followed
again rather than sent again, expired tokens and redirects to another host."""

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select

from connectors.amazon import AmazonAdapter
from connectors.base import ConnectorConfig, OutgoingProduct, adapter_for
from connectors.http import PlatformError, PlatformHttp, RetryPolicy, TokenBucket
from models.products import Product
from pim import outbound
from pim.runtime import Runtime
from tests.conftest import MakeKey
from tests.connectors.conftest import create_connector, make_products, sync
from tests.connectors.exactly_once import FAULTS, HANG_SECONDS, SETTINGS, outgoing, push_all
from tests.connectors.fakes.amazon import CREDENTIALS, LISTINGS, MARKETPLACE, SELLER, SellerCentral
from tests.connectors.fakes.amazon_feeds import FEEDS, FeedsCentral
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import LOOPBACK, recorder
from tests.loopback import serve


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig(
        "amazon", base, CREDENTIALS,
        options={"seller_id": SELLER, "marketplace_id": MARKETPLACE,
                 "token_url": f"{base}/auth/o2/token", "feed_threshold": 100},
        async_wait_seconds=0.2, poll_interval_seconds=0.01,
    )  # fmt: skip


@asynccontextmanager
async def served(fake: FeedsCentral, faults: Faults) -> AsyncIterator[AmazonAdapter]:
    """The adapter as the sync job builds it (per-request retries, no waits) on `fake`
    behind `faults`."""
    async with serve(faults.wrap(fake.app())) as base, outbound.client(timeout=1.0) as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))
        # Listings are not paced here; feed submissions are, by their own bucket.
        http.bucket = TokenBucket(rate=10_000.0, burst=10_000.0)
        adapter = adapter_for(config(base), http)
        assert isinstance(adapter, AmazonAdapter)
        yield adapter


def assert_one_feed(fake: FeedsCentral, products: list[OutgoingProduct],
                    links: dict[uuid.UUID, str]) -> None:  # fmt: skip
    """Every listing once, linked by SKU, from one document and one feed."""
    assert links == {p.product_id: p.sku for p in products}
    assert sorted(fake.listings.created) == sorted(p.sku for p in products)
    assert set(fake.listings.writes.values()) == {1}
    assert (len(fake.documents), len(fake.feeds)) == (1, 1)


async def test_a_push_goes_in_one_feed_and_each_sku_gets_its_report() -> None:
    fake, products = FeedsCentral(), outgoing()
    products[7] = replace(products[7], brand=None)
    async with served(fake, Faults()) as adapter:
        assert adapter.chunk_size == 10_000
        outcomes = await adapter.push_products(products)
        # createFeed's rate (0.0083/s) is not taken for the Listings Items operations'.
        assert adapter.rate == 5.0
        # One of the seller's 5 feed submissions per 5 minutes, paced by its own bucket.
        submissions = adapter.feeds.submissions
        assert isinstance(submissions, TokenBucket)
        assert (submissions.rate, submissions.burst) == (5 / 300, 5)
        assert 4 <= submissions.tokens < 4.5
    assert [o.external_id for o in outcomes if o.ok] == [p.sku for p in products if p.brand]
    assert [(o.ok, o.transient, o.error) for o in outcomes[7:8]] == [
        (False, False, "90220: 'brand' is required but not supplied.")
    ]
    assert len(fake.listings.records) == 249 and products[7].sku not in fake.listings.records
    (document,) = fake.documents.values()
    sent = json.loads(document.content or b"")
    assert sent["header"] == {"sellerId": SELLER, "version": "2.0", "issueLocale": "fr_FR"}
    assert [m["messageId"] for m in sent["messages"]] == list(range(1, 251))
    first = sent["messages"][0]
    assert {k: v for k, v in first.items() if k != "attributes"} == {
        "messageId": 1, "sku": "SKU-0000", "operationType": "UPDATE", "productType": "PRODUCT",
        "requirements": "LISTING",
    }  # fmt: skip
    assert first["attributes"]["purchasable_offer"][0]["our_price"] == [
        {"schedule": [{"value_with_tax": 10.0}]}
    ]
    (report,) = fake.reports.values()
    assert json.loads(gzip.decompress(report))["summary"]["messagesInvalid"] == 1


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_feed_is_created_once_whatever_createfeed_answers(fault: str) -> None:
    """The fault hits the second POST of the push: createFeed, after createFeedDocument."""
    fake, faults = FeedsCentral(), Faults(hang_seconds=HANG_SECONDS)
    FAULTS[fault](faults, FEEDS + "/")
    products = outgoing()
    async with served(fake, faults) as adapter:
        links = await push_all(adapter, products)
    assert faults.rules[0].fired >= 1
    assert_one_feed(fake, products, links)


# createFeed answered 502 while another job of the seller sent a feed the same minute:
# after creating ours, two unknown feeds show and none is guessed; without creating
# it, the one shown is the other job's, whose report counts other messages. Either
# way the chunk is sent again (an upsert by SKU: it converges).
LOST_AMONG_OTHERS = {
    "created": (lambda faults: faults.fail_after_commit(FEEDS + "/feeds", at=2), 3),
    "not created": (lambda faults: faults.throttle(FEEDS + "/feeds", status=502, headers={},
                                                   method="POST", at=2), 2),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LOST_AMONG_OTHERS))
async def test_a_lost_feed_is_not_taken_for_another_jobs(case: str) -> None:
    arm, feeds = LOST_AMONG_OTHERS[case]
    fake, faults = FeedsCentral(), Faults()
    arm(faults)
    products = outgoing()
    async with served(fake, faults) as other, served(fake, faults) as adapter:
        await other.push_products(outgoing(120))
        links = await push_all(adapter, products)
    assert links == {p.product_id: p.sku for p in products}
    assert (len(fake.documents), len(fake.feeds)) == (3, feeds)
    assert len(fake.listings.records) == 250


async def test_a_feed_unfinished_past_the_wait_is_followed_not_sent_again() -> None:
    """Its items come back transient and the job's next attempt polls the same feed."""
    fake, products = FeedsCentral(polls=30), outgoing()
    async with served(fake, Faults()) as adapter:
        pending = await adapter.push_products(products)
        assert {(o.ok, o.transient) for o in pending} == {(False, True)}
        assert not fake.listings.records
        links = await push_all(adapter, products)
    (feed,) = fake.feeds.values()
    assert feed["_polls"] == 30 and feed["processingStatus"] == "DONE"
    assert_one_feed(fake, products, links)


async def test_items_left_pending_go_back_to_their_feed_however_few() -> None:
    fake, products = FeedsCentral(polls=30), outgoing()
    async with served(fake, Faults()) as adapter:
        await adapter.push_products(products)
        fake.polls = 0  # Amazon gets to it
        outcomes = await adapter.push_products(products[:40])  # fewer than the threshold
    assert [o.external_id for o in outcomes] == [p.sku for p in products[:40]]
    assert (len(fake.documents), len(fake.feeds), len(fake.listings.records)) == (1, 1, 250)


async def test_a_feed_amazon_rejects_whole_fails_its_items() -> None:
    fake, products = FeedsCentral(), outgoing(120)
    async with served(fake, Faults()) as adapter:
        adapter.feeds.header["sellerId"] = "A-OTHER"
        outcomes = await adapter.push_products(products)
    assert {(o.ok, o.transient, o.error) for o in outcomes} == {
        (False, False, "100001: The feed header is invalid.")
    }
    assert not fake.listings.records


async def test_an_access_token_amazon_says_expired_is_renewed_mid_feed() -> None:
    fake, products = FeedsCentral(token_calls=2), outgoing()
    async with served(fake, Faults()) as adapter:
        links = await push_all(adapter, products)
    assert fake.token_requests >= 2
    assert_one_feed(fake, products, links)


async def test_a_redirect_to_another_host_is_refused() -> None:
    seen, elsewhere = recorder()
    fake, faults = FeedsCentral(), Faults()
    async with serve(elsewhere, host="127.0.0.2") as other, served(fake, faults) as adapter:
        faults.redirect(FEEDS + "/", other, status=307)
        with pytest.raises(PlatformError, match="redirection vers un autre hôte refusée"):
            await adapter.push_products(outgoing())
    assert not seen and not fake.feeds and not fake.listings.records


async def test_stock_goes_in_chunks_of_100_not_in_the_feeds_10_000(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey
) -> None:
    """Stock stays one PATCH per SKU: a chunk of 10,000 would fail every level when one
    is throttled past its retries; in chunks of 100 only that chunk fails."""
    key, seller_central, faults = await make_key(), SellerCentral(), Faults()
    ids = await make_products(open_runtime, key, 250)
    async with serve(faults.wrap(seller_central.app())) as base:
        connector = await create_connector(open_client, key, {
            "name": "Amazon.fr", "platform": "amazon", "base_url": base,
            "credentials": CREDENTIALS, "options": config(base).options})  # fmt: skip
        async with open_runtime.db.transaction() as session:
            skus = list(await session.scalars(select(Product.reference).where(Product.id.in_(ids))))
        mp = {"marketplace_id": MARKETPLACE}
        listed = {"item_name": [{"value": "Produit", **mp}], "brand": [{"value": "Pixee", **mp}],
                  "condition_type": [{"value": "new_new", **mp}],
                  "externally_assigned_product_identifier": [{"type": "ean", "value": "1", **mp}]}  # fmt: skip
        for sku in skus:  # listed already: a PATCH needs the listing
            seller_central.listings.upsert(
                str(sku), {"productType": "PRODUCT", "attributes": listed}
            )
        # The first 5 PATCHes at once, each refused on every try (4 retries).
        faults.throttle(LISTINGS, method="PATCH", times=25)
        job = await sync(open_client, open_runtime, key, connector["id"], "push-stock")
    assert (job["succeeded"], job["failed"]) == (150, 100)
