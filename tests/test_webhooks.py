"""Webhooks: endpoints over REST, and delivery of real outbox events to a real receiver on
loopback — signatures, per-product order, retries through time, dead letters, disabling,
replay — by the in-process runner and by a real arq worker."""

import asyncio
import contextlib
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from jobs import webhooks as sender
from models import Event, WebhookDelivery
from pim.clock import write_timestamp
from pim.runtime import Runtime
from pim.settings import Settings
from pim.timeutil import isoformat_z, utcnow
from resolvers import events, webhooks
from resolvers import webhook_delivery as delivery
from resolvers.webhook_delivery import BACKOFF, MAX_ATTEMPTS, verify
from service.worker import worker_for
from tests.conftest import Key, MakeKey
from tests.jobs_helper import run_jobs
from tests.webhook_receiver import Receiver
from tests.webhooks_helper import (
    BASE,
    create_endpoint,
    deliver_at,
    deliveries,
    ean13,
    write_products,
)

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


# --- endpoints over REST -------------------------------------------------------------


async def test_create_shows_the_secret_once_and_reads_never_do(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    created = await create_endpoint(
        client, key, "http://127.0.0.1:9/hooks", ["product.updated", "stock.updated"]
    )
    assert created["secret"].startswith("whsec_")
    assert created["url"] == "http://127.0.0.1:9/hooks"
    assert created["events"] == ["product.updated", "stock.updated"]
    assert created["status"] == "active" and created["is_active"] is True
    assert created["description"] == "ERP mirror"
    assert created["consecutive_failures"] == 0 and created["disabled_reason"] is None
    assert ISO_Z.match(created["created_at"]) and ISO_Z.match(created["updated_at"])

    got = (await client.get(f"{BASE}/{created['id']}", headers=key.headers)).json()
    assert "secret" not in got
    assert got == {k: v for k, v in created.items() if k != "secret"}

    listing = (await client.get(BASE, headers=key.headers)).json()
    assert listing["items"] == [got]
    assert listing["meta"] == {"total": 1, "page": 1, "per_page": 100, "total_pages": 1,
                               "has_next": False, "has_previous": False}  # fmt: skip
    assert created["secret"] not in str(listing)


async def test_update_and_delete(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    created = await create_endpoint(client, key, "http://127.0.0.1:9/a")
    assert created["events"] == ["*"]
    response = await client.patch(
        f"{BASE}/{created['id']}",
        json={"url": "http://127.0.0.1:9/b", "events": ["price.updated"], "is_active": False},
        headers=key.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["url"], body["events"], body["status"]) == (
        "http://127.0.0.1:9/b",
        ["price.updated"],
        "paused",
    )
    assert (await client.delete(f"{BASE}/{created['id']}", headers=key.headers)).json() == {}
    missing = await client.get(f"{BASE}/{created['id']}", headers=key.headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


async def test_bad_input_is_a_plain_422_naming_the_field(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    cases = [
        ({"url": "http://127.0.0.1:9/x", "events": ["product.exploded"]}, "events"),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "events"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "pas une url"}, "url"),
        ({"events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9/x", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = await client.post(BASE, json=body, headers=key.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())
    malformed = await client.post(BASE, content=b"{nope", headers=key.headers)
    assert malformed.status_code == 422 and malformed.json()["field"] == "body"
    not_an_object = await client.post(BASE, json=["http://127.0.0.1:9/x"], headers=key.headers)
    assert not_an_object.status_code == 422 and not_an_object.json()["field"] == "body"
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"skip": -1}, "skip"),
        ({"limit": "x"}, "limit"),
    ):
        response = await client.get(BASE, params=params, headers=key.headers)
        assert response.status_code == 422 and response.json()["field"] == field, params
    bad_id = await client.get(f"{BASE}/not-a-uuid", headers=key.headers)
    assert bad_id.status_code == 422 and bad_id.json()["field"] == "endpoint_id"
    assert (await client.get(BASE, headers=key.headers)).json()["meta"]["total"] == 0


async def test_the_outbound_guard_refuses_private_and_plain_http_urls(
    client: httpx.AsyncClient, key: Key
) -> None:
    # Without the test allowance: loopback, private ranges, metadata and http are refused.
    for url in ("https://127.0.0.1/h", "https://10.1.2.3/h", "https://169.254.169.254/latest",
                "https://localhost/h", "http://93.184.216.34/h"):  # fmt: skip
        response = await client.post(BASE, json={"url": url}, headers=key.headers)
        assert response.status_code == 422, url
        assert response.json()["field"] == "url"
    assert (await client.get(BASE, headers=key.headers)).json()["meta"]["total"] == 0


async def test_every_route_needs_settings_manage(
    client: httpx.AsyncClient, make_key: MakeKey, loopback_allowed: None
) -> None:
    admin = await make_key(["settings:manage"])
    endpoint = await create_endpoint(client, admin, "http://127.0.0.1:9/h")
    reader = await make_key(
        ["products:read", "products:write", "connectors:read"], account=admin.account
    )
    eid = endpoint["id"]
    routes = [
        ("GET", BASE, None), ("POST", BASE, {"url": "http://127.0.0.1:9/h"}),
        ("GET", f"{BASE}/{eid}", None), ("PATCH", f"{BASE}/{eid}", {"is_active": False}),
        ("DELETE", f"{BASE}/{eid}", None), ("POST", f"{BASE}/{eid}/rotate-secret", None),
        ("POST", f"{BASE}/{eid}/enable", None), ("GET", f"{BASE}/{eid}/deliveries", None),
        ("GET", f"{BASE}/{eid}/deliveries/{uuid.uuid4()}/attempts", None),
        ("POST", f"{BASE}/{eid}/replay", {"event_id": str(uuid.uuid4())}),
        ("POST", f"{BASE}/{eid}/replay-range", {"since": "2026-01-01T00:00:00Z"}),
    ]  # fmt: skip
    for method, path, body in routes:
        response = await client.request(method, path, json=body, headers=reader.headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "forbidden"
        unauthenticated = await client.request(method, path, json=body)
        assert unauthenticated.status_code == 401, (method, path)
    assert (await client.get(f"{BASE}/{eid}", headers=admin.headers)).status_code == 200


async def test_accounts_cannot_see_or_touch_each_others_endpoints(
    client: httpx.AsyncClient, make_key: MakeKey, loopback_allowed: None
) -> None:
    alice, bob = await make_key(), await make_key()
    endpoint = await create_endpoint(client, alice, "http://127.0.0.1:9/h")
    eid = endpoint["id"]
    assert (await client.get(BASE, headers=bob.headers)).json()["items"] == []
    for method, path, body in [
        ("GET", f"{BASE}/{eid}", None), ("PATCH", f"{BASE}/{eid}", {"is_active": False}),
        ("DELETE", f"{BASE}/{eid}", None), ("POST", f"{BASE}/{eid}/rotate-secret", None),
        ("POST", f"{BASE}/{eid}/enable", None), ("GET", f"{BASE}/{eid}/deliveries", None),
    ]:  # fmt: skip
        response = await client.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, path)
    # Bob cannot replay Alice's events to his own endpoint either.
    await write_products(client, alice, {"ean": ean13(1), "name": "Alice"})
    async with runtime_session(client) as session:
        event_id = await session.scalar(
            select(Event.id).where(Event.account_id == alice.account_id).limit(1)
        )
    bobs = await create_endpoint(client, bob, "http://127.0.0.1:9/h")
    replay = await client.post(
        f"{BASE}/{bobs['id']}/replay", json={"event_id": str(event_id)}, headers=bob.headers
    )
    assert replay.status_code == 404
    assert (await client.get(f"{BASE}/{eid}", headers=alice.headers)).json()["status"] == "active"


def runtime_session(client: httpx.AsyncClient) -> Any:
    transport: Any = client._transport
    rt: Runtime = transport.app.state.runtime
    return rt.db.transaction()


# --- delivery --------------------------------------------------------------------------


async def test_product_writes_are_delivered_signed_with_the_event(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    await write_products(
        client, key, {"ean": ean13(10), "name": "Support TV"}, {"ean": ean13(11), "name": "Câble"}
    )
    await run_jobs(runtime)

    assert [b["type"] for b in receiver.bodies] == ["product.created", "product.created"]
    # Different products may arrive in any order (only one product's events are ordered).
    first = next(r for r in receiver.received if r.json["data"]["ean"] == ean13(10))
    body = first.json
    assert set(body) == {"id", "type", "account_id", "occurred_at", "data"}
    assert body["account_id"] == str(key.account_id)
    assert ISO_Z.match(body["occurred_at"])
    assert body["data"]["id"] and body["data"]["reference"] is None
    headers = first.headers
    assert headers["pixee-event-id"] == body["id"]
    assert headers["pixee-event-type"] == "product.created"
    assert headers["content-type"] == "application/json"
    assert headers["pixee-signature"].startswith(f"t={headers['pixee-timestamp']},v1=")
    assert verify(headers["pixee-signature"], first.body, endpoint["secret"])
    assert not verify(headers["pixee-signature"], first.body, "whsec_someone_else")
    assert not verify(headers["pixee-signature"], first.body + b" ", endpoint["secret"])

    log = await deliveries(client, key, endpoint["id"])
    assert {d["status"] for d in log} == {"succeeded"}
    assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in log)
    attempts = (
        await client.get(
            f"{BASE}/{endpoint['id']}/deliveries/{log[0]['id']}/attempts", headers=key.headers
        )
    ).json()["items"]
    assert len(attempts) == 1
    assert attempts[0]["attempt"] == 1 and attempts[0]["status_code"] == 200
    assert attempts[0]["error"] is None and attempts[0]["latency_ms"] >= 0


async def test_only_subscribed_types_and_only_own_account_events_arrive(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey, receiver: Receiver
) -> None:
    alice, bob = await make_key(), await make_key()
    await create_endpoint(client, alice, receiver.url, ["product.updated"])
    await write_products(client, alice, {"ean": ean13(20), "name": "v1"})
    await write_products(client, bob, {"ean": ean13(20), "name": "Bob v1"})
    await write_products(client, bob, {"ean": ean13(20), "name": "Bob v2"})
    await write_products(client, alice, {"ean": ean13(20), "name": "v2"})
    await run_jobs(runtime)
    assert [(b["type"], b["account_id"]) for b in receiver.bodies] == [
        ("product.updated", str(alice.account_id))
    ]


async def test_rotation_signs_with_both_secrets_until_the_old_one_expires(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url)
    response = await client.post(
        f"{BASE}/{endpoint['id']}/rotate-secret", json={"expires_in_hours": 1}, headers=key.headers
    )
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert ISO_Z.match(rotated["previous_secret_expires_at"])

    await write_products(client, key, {"ean": ean13(30), "name": "Rotated"})
    await run_jobs(runtime)
    during = receiver.received[-1]
    assert during.headers["pixee-signature"].count("v1=") == 2
    assert verify(during.headers["pixee-signature"], during.body, rotated["secret"])
    assert verify(during.headers["pixee-signature"], during.body, endpoint["secret"])

    # A rotation whose grace has already run out: only the newest secret signs.
    async with runtime.db.transaction() as session:
        newest = await webhooks.rotate_secret(
            session, key.caller(), endpoint_id=uuid.UUID(endpoint["id"]), settings=runtime.settings,
            expires_in_hours=1, now=utcnow() - timedelta(hours=2),
        )  # fmt: skip
    await write_products(client, key, {"ean": ean13(30), "name": "After expiry"})
    await run_jobs(runtime)
    after = receiver.received[-1]
    assert after.headers["pixee-signature"].count("v1=") == 1
    assert verify(after.headers["pixee-signature"], after.body, newest.secret)
    assert not verify(after.headers["pixee-signature"], after.body, rotated["secret"])


async def test_events_of_one_product_arrive_in_order_through_failures_and_retries(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(
        client, key, receiver.url, ["product.created", "product.updated"]
    )
    ean = ean13(40)
    receiver.always = 500
    for version in range(1, 4):
        await write_products(client, key, {"ean": ean, "name": f"v{version}"})
    await run_jobs(runtime)
    # The first delivery failed; the two later ones wait behind it, unsent.
    assert len(receiver.received) == 1
    log = await deliveries(client, key, endpoint["id"])
    assert sorted(d["status"] for d in log) == ["failed", "pending", "pending"]

    start = utcnow()
    await deliver_at(runtime, start + timedelta(seconds=10))  # not due yet
    assert len(receiver.received) == 1
    await deliver_at(runtime, start + BACKOFF[0] + timedelta(seconds=1))
    assert len(receiver.received) == 2  # retried, failed again, still holding the others
    receiver.always = None
    await deliver_at(runtime, start + BACKOFF[0] + BACKOFF[1] + timedelta(seconds=2))

    types = [b["type"] for b in receiver.bodies]
    assert types == ["product.created"] * 3 + ["product.updated"] * 2
    # The receiver saw the first event three times, then the two updates in order.
    ids = [b["id"] for b in receiver.bodies]
    assert ids[0] == ids[1] == ids[2] and len(set(ids)) == 3
    log = await deliveries(client, key, endpoint["id"])
    assert [d["status"] for d in log] == ["succeeded"] * 3
    assert [d["attempts"] for d in log] == [1, 1, 3]  # newest first
    attempts = (
        await client.get(
            f"{BASE}/{endpoint['id']}/deliveries/{log[2]['id']}/attempts", headers=key.headers
        )
    ).json()["items"]
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[0]["error"].startswith("HTTP 500")


async def test_other_products_are_not_held_back_by_a_failing_one(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    await create_endpoint(client, key, receiver.url, ["product.created"])
    receiver.answers = [500]
    await write_products(
        client, key, {"ean": ean13(50), "name": "A"}, {"ean": ean13(51), "name": "B"}
    )
    await run_jobs(runtime)
    assert sorted(b["data"]["ean"] for b in receiver.bodies) == [ean13(50), ean13(51)]


async def test_retries_back_off_for_a_day_then_the_delivery_dies_and_the_endpoint_is_disabled(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    receiver.always = 503
    await write_products(client, key, {"ean": ean13(60), "name": "Never"})
    await run_jobs(runtime)
    clock = utcnow()
    for delay in BACKOFF:
        clock += delay + timedelta(seconds=1)
        await deliver_at(runtime, clock)
    assert len(receiver.received) == MAX_ATTEMPTS
    assert sum(BACKOFF, timedelta()) >= timedelta(hours=24)

    [dead] = await deliveries(client, key, endpoint["id"], status="dead")
    assert dead["attempts"] == MAX_ATTEMPTS and dead["last_status_code"] == 503
    assert dead["next_attempt_at"] is None
    got = (await client.get(f"{BASE}/{endpoint['id']}", headers=key.headers)).json()
    assert got["status"] == "disabled" and ISO_Z.match(got["disabled_at"])
    assert f"{MAX_ATTEMPTS} échecs consécutifs" in got["disabled_reason"]
    assert got["consecutive_failures"] == MAX_ATTEMPTS

    # Disabled: new events wait (never dropped) and go out once re-enabled.
    receiver.always = None
    await write_products(client, key, {"ean": ean13(61), "name": "Held"})
    await run_jobs(runtime)
    await deliver_at(runtime, clock + timedelta(minutes=1))
    assert len(receiver.received) == MAX_ATTEMPTS
    enabled = await client.post(f"{BASE}/{endpoint['id']}/enable", headers=key.headers)
    assert enabled.json()["status"] == "active" and enabled.json()["disabled_reason"] is None
    await run_jobs(runtime)
    assert receiver.bodies[-1]["data"]["ean"] == ean13(61)


async def test_a_timeout_and_an_unreachable_receiver_are_logged_and_retried(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "webhook_timeout_seconds", 0.2)
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    receiver.answers = ["timeout"]
    await write_products(client, key, {"ean": ean13(70), "name": "Slow"})
    await run_jobs(runtime)
    [log] = await deliveries(client, key, endpoint["id"])
    assert log["status"] == "failed" and log["last_status_code"] is None
    assert log["last_error"] == "délai de réponse dépassé"
    assert log["next_attempt_at"] is not None

    closed = await create_endpoint(client, key, "http://127.0.0.1:9/closed", ["product.created"])
    await write_products(client, key, {"ean": ean13(71), "name": "Nobody"})
    await run_jobs(runtime)
    [refused] = await deliveries(client, key, closed["id"])
    assert refused["status"] == "failed" and refused["last_error"].startswith("erreur réseau")


async def test_replay_of_one_event_and_of_a_time_range(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    before = utcnow()
    await write_products(client, key, *({"ean": ean13(80 + i), "name": f"P{i}"} for i in range(3)))
    await run_jobs(runtime)
    assert len(receiver.received) == 3
    first_id = receiver.bodies[0]["id"]

    response = await client.post(
        f"{BASE}/{endpoint['id']}/replay", json={"event_id": first_id}, headers=key.headers
    )
    assert response.status_code == 202, response.text
    assert response.json()["is_replay"] is True and response.json()["event_id"] == first_id
    await run_jobs(runtime)
    assert receiver.bodies[-1]["id"] == first_id

    response = await client.post(
        f"{BASE}/{endpoint['id']}/replay-range",
        json={"since": isoformat_z(before), "until": isoformat_z(utcnow() + timedelta(seconds=1))},
        headers=key.headers,
    )
    assert response.status_code == 202 and response.json() == {"deliveries_created": 3}
    await run_jobs(runtime)
    assert sorted(b["id"] for b in receiver.bodies[-3:]) == sorted(
        b["id"] for b in receiver.bodies[:3]
    )

    unknown = await client.post(
        f"{BASE}/{endpoint['id']}/replay", json={"event_id": str(uuid.uuid4())}, headers=key.headers
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "event_id"
    bad_status = await client.get(
        f"{BASE}/{endpoint['id']}/deliveries", params={"status": "lost"}, headers=key.headers
    )
    assert bad_status.status_code == 422 and bad_status.json()["field"] == "status"
    backwards = await client.post(
        f"{BASE}/{endpoint['id']}/replay-range",
        json={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=key.headers,
    )
    assert backwards.status_code == 422 and backwards.json()["field"] == "until"


async def test_an_event_committed_late_with_a_lower_sequence_is_not_skipped(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver, backend: str
) -> None:
    """The cursor stops below a sequence number still held by an open transaction."""
    if backend != "postgres":
        pytest.skip("SQLite has one writer at a time: sequence order is commit order there")
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    async with runtime.db.transaction() as slow:
        # The slow transaction takes its sequence number first...
        stamp = await write_timestamp(slow)
        late = events.event_row(key.account_id, "product.created", {"ean": "late"}, stamp)
        await events.record(slow, [late])
        # ...then a quick write takes the next one and commits.
        await write_products(client, key, {"ean": ean13(90), "name": "Early"})
        await sender.run(runtime)
        assert receiver.bodies == []  # delivering "Early" now would move past "late"
    await sender.run(runtime)
    assert sorted(b["data"]["ean"] for b in receiver.bodies) == [ean13(90), "late"]
    assert len(await deliveries(client, key, endpoint["id"])) == 2


async def test_a_real_arq_worker_or_the_in_process_runner_delivers(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    """run_jobs runs a burst arq worker on PostgreSQL + Redis, the in-process queue on SQLite."""
    await create_endpoint(client, key, receiver.url)
    await write_products(client, key, {"ean": ean13(95), "name": "Queued", "stock": 4})
    await run_jobs(runtime)
    assert {b["type"] for b in receiver.bodies} == {"product.created", "stock.updated"}
    stock = next(b for b in receiver.bodies if b["type"] == "stock.updated")
    assert stock["data"]["eans"] == [ean13(95)]


async def test_a_claimed_delivery_whose_sender_died_is_sent_again_after_the_lease(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    await write_products(client, key, {"ean": ean13(97), "name": "Lease"})
    await run_jobs(runtime)
    async with runtime.db.transaction() as session:
        # As if a sender had claimed it and crashed: pending with a lease in the future.
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint["id"]))
            .values(status="pending", attempts=0, next_attempt_at=utcnow() + timedelta(minutes=5))
        )
    await deliver_at(runtime, utcnow())
    assert len(receiver.received) == 1
    await deliver_at(runtime, utcnow() + timedelta(minutes=6))
    assert len(receiver.received) == 2


async def _pending_again(runtime: Runtime, endpoint_id: str) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
        )


async def test_a_dead_senders_claims_lapse_after_the_job_lease(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    await write_products(client, key, {"ean": ean13(98), "name": "Lapse"})
    await run_jobs(runtime)
    await _pending_again(runtime, endpoint["id"])
    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    async with runtime.db.transaction() as session:
        # Claimed by a sender that died before sending.
        assert len(await delivery.claim_due(session, now=utcnow(), lease=lease)) >= 1
    await deliver_at(runtime, utcnow())
    assert len(receiver.received) == 1
    await deliver_at(runtime, utcnow() + lease + timedelta(seconds=1))
    assert len(receiver.received) == 2


async def test_a_round_slower_than_the_lease_keeps_its_claims(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "job_lease_seconds", 0.4)
    monkeypatch.setattr(runtime.settings, "job_lease_renew_seconds", 0.1)
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    await write_products(client, key, {"ean": ean13(99), "name": "Slow"})
    await run_jobs(runtime)
    await _pending_again(runtime, endpoint["id"])
    receiver.answers = ["timeout"]  # answers after a second: past the lease
    slow = asyncio.create_task(sender.run(runtime))
    await asyncio.sleep(0.7)
    second = await sender.run(runtime)  # another sender, while the first still waits
    await slow
    assert second.attempted == 0
    assert len(receiver.received) == 2  # the first run's, then the slow round's alone


async def test_the_guard_also_refuses_at_delivery_time_and_the_attempt_says_why(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An address accepted when saved is checked again on every request (DNS can change)."""
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    monkeypatch.setattr(settings, "outbound_allowed_networks", [])
    await write_products(client, key, {"ean": ean13(98), "name": "Rebound"})
    await run_jobs(runtime)
    assert receiver.received == []
    [refused] = await deliveries(client, key, endpoint["id"])
    assert refused["status"] == "failed" and refused["last_status_code"] is None
    assert refused["last_error"].startswith("destination refusée par le garde sortant")


async def test_concurrent_senders_deliver_each_event_once_and_in_order(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    await create_endpoint(client, key, receiver.url, ["product.created", "product.updated"])
    products = [{"ean": ean13(200 + i), "name": "v1"} for i in range(20)]
    await write_products(client, key, *products)
    await write_products(client, key, *({**p, "name": "v2"} for p in products))
    await asyncio.gather(*(sender.run(runtime) for _ in range(4)))
    await run_jobs(runtime)
    ids = [b["id"] for b in receiver.bodies]
    assert len(ids) == len(set(ids)) == 40
    for product in products:
        seen = [b["type"] for b in receiver.bodies if b["data"]["ean"] == product["ean"]]
        assert seen == ["product.created", "product.updated"]


def test_the_real_worker_runs_the_sender_on_a_timer_too(backend: str, settings: Settings) -> None:
    if backend != "postgres":
        pytest.skip("the embedded default's timer is the app's background task")
    worker = worker_for(settings)
    assert "cron:deliver_webhooks" in worker.functions
    assert worker.functions["deliver_webhooks"].keep_result_s == 0


async def test_the_timer_delivers_what_no_job_ran_for(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver
) -> None:
    """The safety net alone delivers (on PostgreSQL the enqueued job is never run here)."""
    await create_endpoint(client, key, receiver.url, ["product.created"])
    await write_products(client, key, {"ean": ean13(99), "name": "Timer"})
    timer = asyncio.create_task(sender.every(runtime, 0.01))
    try:
        for _ in range(500):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    assert [b["data"]["ean"] for b in receiver.bodies] == [ean13(99)]
    await run_jobs(runtime)  # the job enqueued by the write finds nothing left to do
    assert len(receiver.received) == 1
