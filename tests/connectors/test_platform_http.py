"""The platform client's own rules: credentials never follow a redirect to another
host, a redirected POST does not become a GET that still announces a body, the wait
a platform asks for is read in both forms, and an expired token is renewed once."""

import time
from collections.abc import Mapping
from email.utils import formatdate

import httpx
import pytest
from starlette.responses import RedirectResponse
from starlette.routing import Route

from connectors.base import ConnectorConfig, adapter_for
from connectors.bigcommerce import window_spent
from connectors.http import (
    PlatformError,
    PlatformHttp,
    RetryPolicy,
    TokenBucket,
    retry_after_seconds,
)
from connectors.shopify import follow_cost_bucket
from pim import outbound
from pim.runtime import Runtime
from tests.conftest import MakeKey
from tests.connectors.conftest import Store, create_connector, make_products, sync
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.medusa import medusa_fake
from tests.connectors.helpers import LOOPBACK, recorder
from tests.loopback import serve


async def test_credentials_never_follow_a_redirect_to_another_host(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    seen, elsewhere = recorder()
    async with serve(elsewhere, host="127.0.0.2") as other:
        store.faults.redirect("/", other)
        key = await make_key()
        await make_products(open_runtime, key, 3)
        connector = await create_connector(open_client, key, store.fields())
        tested = await open_client.post(
            f"/api/v1/connectors/{connector['id']}/test", headers=key.bearer
        )
        job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert tested.status_code == 200 and tested.json()["success"] is False
    assert "redirection vers un autre hôte refusée (127.0.0.2)" in tested.json()["message"]
    assert (job["status"], job["failed"]) == ("completed", 3)
    assert seen == []  # neither the token header nor the products reached the other host


async def test_a_post_redirected_to_a_get_does_not_announce_the_old_body() -> None:
    seen, app = recorder()
    app.router.routes.insert(
        0, Route("/old", lambda _r: RedirectResponse("/new", 302), methods=["POST"])
    )
    async with serve(app) as base, outbound.client() as client:
        http = PlatformHttp(client, LOOPBACK)
        response = await http.request("POST", f"{base}/old", json={"a": "b" * 100})
    assert response.json() == {"data": {}, "method": "GET", "length": None}
    assert [r.url.path for r in seen] == ["/new"]


def test_retry_after_is_read_in_seconds_and_as_an_http_date() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    later = formatdate(time.time() + 30, usegmt=True)
    wait = retry_after_seconds(httpx.Response(503, headers={"Retry-After": later}))
    assert wait is not None and 28 <= wait <= 30
    past = formatdate(time.time() - 30, usegmt=True)
    assert retry_after_seconds(httpx.Response(503, headers={"Retry-After": past})) == 0.0
    reset = httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "1500"})
    assert retry_after_seconds(reset, ("X-Rate-Limit-Time-Reset-Ms",)) == 1.5


async def test_an_expired_session_token_is_renewed_once_and_the_call_goes_on() -> None:
    fake = medusa_fake()
    faults = Faults()
    expiry = faults.expire_tokens("authorization", calls=2, login="/auth/user/emailpass")
    config = ConnectorConfig("medusa", "", {"email": "admin@pixee.fr", "password": "secret"})
    async with serve(faults.wrap(fake.app())) as base, outbound.client() as client:
        adapter = adapter_for(
            ConnectorConfig("medusa", base, config.credentials), PlatformHttp(client, LOOPBACK)
        )
        names = [await adapter.test() for _ in range(5)]
    assert names == ["Medusa Store"] * 5
    assert expiry.refusals == 2  # the 3rd and the 5th call were refused once each
    assert len(fake.to("/auth/user/emailpass", "POST")) == 3


async def test_the_retries_after_a_renewal_keep_the_renewed_token() -> None:
    seen, app = recorder()
    faults = Faults()
    faults.throttle("/read", status=401, headers={}, at=1, times=1)
    faults.throttle("/read", status=503, headers={}, times=2)  # the two requests after
    asked: list[Mapping[str, str] | None] = []

    async def auth(refused: Mapping[str, str] | None) -> dict[str, str]:
        asked.append(refused)
        return {"Authorization": f"Bearer t{len([r for r in asked if r]) + 1}"}

    async with serve(faults.wrap(app)) as base, outbound.client() as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy(attempts=3, max_delay=0.0))
        await http.request("GET", f"{base}/read", auth=auth)
    # Refused, renewed once, then two 503s retried with the renewed token.
    assert asked == [None, {"Authorization": "Bearer t1"}, None, None]
    assert [r.headers["authorization"] for r in seen] == ["Bearer t2"]


async def test_only_requests_safe_to_repeat_are_retried_after_an_unknown_outcome() -> None:
    seen, app = recorder()
    faults = Faults()
    faults.fail_after_commit("/create", method="POST")
    faults.fail_after_commit("/upsert", method="POST")
    faults.fail_after_commit("/read", method="GET")
    faults.throttle("/throttled", method="POST")
    async with serve(faults.wrap(app)) as base, outbound.client() as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy(attempts=2, max_delay=0.0))
        with pytest.raises(PlatformError) as lost:
            await http.request("POST", f"{base}/create", json={})
        await http.request("POST", f"{base}/upsert", json={}, idempotent=True)
        await http.request("GET", f"{base}/read")
        await http.request("POST", f"{base}/throttled", json={})
    assert (lost.value.status, lost.value.transient, lost.value.uncertain) == (502, True, True)
    paths = [r.url.path for r in seen]
    # The create ran once and was not sent again; the others were, once each.
    assert paths == ["/create", "/upsert", "/upsert", "/read", "/read", "/throttled"]


def test_a_spent_rate_window_holds_the_next_requests_back() -> None:
    bucket = TokenBucket(rate=5, burst=10)
    spent = httpx.Response(
        200, headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "2000"}
    )
    window_spent(spent, bucket)
    assert bucket.tokens == pytest.approx(-10, abs=0.1)  # two seconds' worth owed
    fresh = TokenBucket(rate=5, burst=10)
    window_spent(httpx.Response(200, headers={"X-Rate-Limit-Requests-Left": "120",
                                              "X-Rate-Limit-Time-Reset-Ms": "2000"}), fresh)  # fmt: skip
    assert fresh.tokens == pytest.approx(10, abs=0.1)


def test_the_shopify_bucket_follows_the_shop_own_account_of_its_points() -> None:
    bucket = TokenBucket(rate=100, burst=1000)
    cost = {"throttleStatus": {"maximumAvailable": 20000.0, "currentlyAvailable": 150,
                               "restoreRate": 1000.0}}  # fmt: skip
    follow_cost_bucket(httpx.Response(200, json={"data": {}, "extensions": {"cost": cost}}), bucket)
    assert (bucket.rate, bucket.burst) == (1000.0, 20000.0)  # a Plus plan
    assert bucket.tokens == pytest.approx(150, abs=1)
