"""Prometheus metrics (inventory_project/metrics.py): what they count and who may read
them, in one process (real processes sharing a directory: test_metrics_processes.py)."""

import asyncio
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from django.db import connections
from django.utils import timezone

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from inventory_project.asgi import application
from inventory_project.testing import assert_json_error
from reservations import events, idempotency, services
from reservations import publisher as publishing
from reservations.models import Reservation
from reservations.tasks import expire_reservations_task
from reservations.tests.helpers import token_client

BIN = Path(sys.executable).parent
# No proxy from the environment for loopback requests.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ORIGIN = "http://127.0.0.1"  # the WebSocket origin validator accepts ALLOWED_HOSTS only
# What Prometheus 2.x/3.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def parse(text: str) -> list[tuple[str, dict, float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(samples, name: str, **labels) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        value
        for sample, sample_labels, value in samples
        if sample == name and labels.items() <= sample_labels.items()
    )


def local(name: str, **labels) -> float:
    """This process's value (no multiprocess directory in the test process)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def until(condition, *, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(every)
    return result


@pytest.fixture
def staff_scraper(staff_user):
    client = token_client(staff_user)

    def scrape() -> list[tuple[str, dict, float]]:
        response = client.get("/metrics")
        assert response.status_code == 200, response.content
        return parse(response.content.decode())

    return scrape


# In one process (no PROMETHEUS_MULTIPROC_DIR): what is counted


@pytest.mark.django_db
def test_reserve_purchase_and_cancel_are_counted_by_result(user, throttle_rates):
    throttle_rates(reserve="4/min")  # the buyer's 5th reserve is throttled
    drop = DropFactory(total_stock=1)
    buyer, other = token_client(user), token_client(UserFactory())
    actions = "inventory_stock_actions_total"
    before = {
        (action, result): local(actions, action=action, result=result)
        for action, result in [
            ("reserve", "created"),
            ("reserve", "already_reserved"),
            ("reserve", "sold_out"),
            ("reserve", "throttled"),
            ("reserve", "not_authenticated"),
            ("reserve", "replayed"),
            ("purchase", "purchased"),
            ("cancel", "cancelled"),
        ]
    }

    held = buyer.post(f"/api/reserve/{drop.pk}", HTTP_IDEMPOTENCY_KEY="k1")
    assert held.status_code == 201
    replay = buyer.post(f"/api/reserve/{drop.pk}", HTTP_IDEMPOTENCY_KEY="k1")
    assert replay[idempotency.REPLAYED_HEADER] == "true"
    assert buyer.post(f"/api/reserve/{drop.pk}").status_code == 409  # holding already
    assert buyer.post(f"/api/reserve/{drop.pk}").status_code == 409
    assert buyer.post(f"/api/reserve/{drop.pk}").status_code == 429
    assert buyer.post(f"/api/reserve/{drop.pk}").status_code == 429
    assert other.post(f"/api/reserve/{drop.pk}").status_code == 409  # sold out
    assert APIClient().post(f"/api/reserve/{drop.pk}").status_code == 401
    reservation_id = held.json()["reservation"]["id"]
    assert buyer.post(f"/api/purchase/{reservation_id}").status_code == 201
    second = DropFactory(total_stock=1)
    hold = other.post(f"/api/reserve/{second.pk}").json()["reservation"]["id"]
    assert other.post(f"/api/reservations/{hold}/cancel").status_code == 200

    moved = {key: local(actions, action=key[0], result=key[1]) - was for key, was in before.items()}
    assert moved == {
        ("reserve", "created"): 2,
        ("reserve", "already_reserved"): 2,
        ("reserve", "sold_out"): 1,
        ("reserve", "throttled"): 2,
        ("reserve", "not_authenticated"): 1,
        ("reserve", "replayed"): 1,
        ("purchase", "purchased"): 1,
        ("cancel", "cancelled"): 1,
    }


@pytest.mark.django_db
def test_a_refusal_is_counted_by_its_code(user):
    buyer = token_client(user)
    upcoming = DropFactory(drop_start_time=timezone.now() + timedelta(hours=1))
    held = services.reserve(user=user, drop_id=DropFactory().pk)
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    actions = "inventory_stock_actions_total"
    before = {
        "not_open": local(actions, action="reserve", result="not_open"),
        "hold_expired": local(actions, action="purchase", result="hold_expired"),
    }

    assert_json_error(buyer.post(f"/api/reserve/{upcoming.pk}"), 409, "not_open")
    assert_json_error(buyer.post(f"/api/purchase/{held.pk}"), 410, "hold_expired")

    assert local(actions, action="reserve", result="not_open") == before["not_open"] + 1
    assert local(actions, action="purchase", result="hold_expired") == before["hold_expired"] + 1


@pytest.mark.django_db
def test_latency_is_observed_by_route_name_never_by_path(auth_client, staff_scraper):
    drops = [DropFactory(), DropFactory()]
    count = "inventory_http_request_duration_seconds_count"
    before = local(count, route="api:reserve", status="201")
    for drop in drops:
        assert auth_client.post(f"/api/reserve/{drop.pk}").status_code == 201
    assert auth_client.get("/api/no/such/path").status_code == 404

    assert local(count, route="api:reserve", status="201") - before == 2
    routes = {
        labels["route"]
        for name, labels, _ in staff_scraper()
        if name.startswith("inventory_http_request_duration_seconds")
    }
    assert {"api:reserve", "unmatched"} <= routes
    assert not [route for route in routes if "/" in route]  # no raw path, no drop id


@pytest.mark.django_db
def test_metrics_are_for_staff_only_and_refusals_are_json(user, staff_user, api_client):
    anonymous = api_client.get("/metrics", HTTP_ACCEPT=PROMETHEUS_ACCEPT)
    assert_json_error(anonymous, 401)
    assert_json_error(token_client(user).get("/metrics", HTTP_ACCEPT=PROMETHEUS_ACCEPT), 403)
    session = APIClient()
    session.force_login(user)
    assert_json_error(session.get("/metrics"), 403)

    staff = token_client(staff_user)
    plain = staff.get("/metrics")
    assert plain.status_code == 200
    assert plain["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE inventory_http_request_duration_seconds histogram" in plain.content
    scraped = staff.get("/metrics", HTTP_ACCEPT=PROMETHEUS_ACCEPT)
    assert scraped.status_code == 200
    assert scraped["Content-Type"].startswith("application/openmetrics-text")
    assert scraped.content.endswith(b"# EOF\n")
    staff_session = APIClient()
    staff_session.force_login(staff_user)
    assert staff_session.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_prometheus_scrapes_over_plain_http_where_https_is_enforced(staff_user, settings):
    settings.SECURE_SSL_REDIRECT = True
    staff = token_client(staff_user)
    assert staff.get("/metrics").status_code == 200
    assert staff.get("/api/drops").status_code == 301  # the rest still goes to https


@pytest.mark.django_db
def test_sweep_metrics_move_when_holds_expire(staff_scraper, settings):
    drop = DropFactory(total_stock=3)
    holds = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(3)]
    now = timezone.now()
    for hold, ago in zip(holds[:2], (7, 3), strict=True):
        Reservation.objects.filter(pk=hold.pk).update(expires_at=now - timedelta(seconds=ago))
    runs, returned = (
        local("inventory_sweep_runs_total"),
        local("inventory_sweep_units_returned_total"),
    )
    swept = local("inventory_sweep_duration_seconds_count")
    started = time.time()

    lapsed = staff_scraper()
    assert total(lapsed, "inventory_holds_lapsed") == 2
    assert 7 <= total(lapsed, "inventory_holds_lapsed_oldest_seconds") < 60

    assert expire_reservations_task() == 2
    assert local("inventory_sweep_runs_total") - runs == 1
    assert local("inventory_sweep_units_returned_total") - returned == 2
    assert local("inventory_sweep_duration_seconds_count") - swept == 1
    assert local("inventory_sweep_last_run_timestamp_seconds") >= started
    after = staff_scraper()
    assert total(after, "inventory_holds_lapsed") == 0
    assert total(after, "inventory_holds_lapsed_oldest_seconds") == 0

    assert expire_reservations_task() == 0  # a run with nothing due still counts as a run
    assert local("inventory_sweep_runs_total") - runs == 2
    assert local("inventory_sweep_units_returned_total") - returned == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_open_websockets_are_counted_by_stream_until_they_close(drop_for_sockets):
    gauge = "inventory_websockets_open"
    before = {stream: local(gauge, stream=stream) for stream in ("drop", "all")}

    def opened() -> tuple[float, float]:
        return local(gauge, stream="drop") - before["drop"], local(gauge, stream="all") - before[
            "all"
        ]

    def socket(path: str) -> WebsocketCommunicator:
        return WebsocketCommunicator(application, path, headers=[(b"origin", ORIGIN.encode())])

    try:
        sockets = [
            socket(path)
            for path in (
                f"/ws/drops/{drop_for_sockets}/",
                f"/ws/drops/{drop_for_sockets}/",
                "/ws/drops/",
            )
        ]
        for watcher in sockets:
            assert (await watcher.connect(timeout=5))[0]
            await watcher.receive_json_from(timeout=5)  # connected
            await watcher.receive_json_from(timeout=5)  # snapshot
        assert opened() == (2, 1)

        # An unknown drop: accepted, told so, closed by the server, and uncounted.
        unknown = socket("/ws/drops/999999999/")
        assert (await unknown.connect(timeout=5))[0]
        assert (await unknown.receive_json_from(timeout=5))["type"] == "error"
        assert (await unknown.receive_output(timeout=5))["type"] == "websocket.close"
        await unknown.disconnect()
        assert opened() == (2, 1)

        await sockets[0].disconnect()
        assert opened() == (1, 1)
        for watcher in sockets[1:]:
            await watcher.disconnect()
        assert opened() == (0, 0)
    finally:
        # database_sync_to_async keeps its thread's connection (CONN_MAX_AGE); close it
        # so the test database can be dropped at the end of the run.
        await sync_to_async(connections.close_all)()


@pytest.fixture
def drop_for_sockets(transactional_db) -> int:
    return DropFactory().pk


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_every_stock_change_is_sent_or_coalesced_once(settings):
    settings.STOCK_EVENT_INTERVAL_SECONDS = 0.05
    settings.STOCK_EVENT_BURST_INTERVAL_SECONDS = 0.1
    settings.STOCK_EVENT_QUIET_SECONDS = 0.02
    from reservations.tests.test_events import listening, stock

    drop_id = 20_000_000 + int(time.time() * 1000) % 10_000_000
    name = "inventory_live_events_total"

    def counts() -> tuple[float, float]:
        return local(name, kind="stock", outcome="sent"), local(
            name, kind="stock", outcome="coalesced"
        )

    # The counters are the process's: wait for the process's own publisher (fed by
    # earlier tests' commits) to have nothing left to offer.
    deadline = time.monotonic() + 10
    while publishing.publisher._stock:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    before = counts()
    publisher = publishing.Publisher()  # one process's, as it gets a burst of commits
    changes = 60

    def moved() -> tuple[float, float]:
        now = counts()
        return now[0] - before[0], now[1] - before[1]

    async with listening(drop_id) as heard:
        for version in range(1, changes + 1):
            publisher.put_stock(stock(drop_id, version))
            await asyncio.sleep(0.003)
        group = events.drop_group(drop_id)

        def messages() -> list[int]:
            return [m["version"] for _, m in heard if m["group"] == group]

        deadline = time.monotonic() + 10
        while sum(moved()) < changes or changes not in messages():
            assert time.monotonic() < deadline, (moved(), messages())
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # room for a wrong extra count or message to show

    sent_count, coalesced_count = moved()
    assert (sent_count, coalesced_count) == (len(messages()), changes - len(messages()))
    assert messages()[-1] == changes
    assert 2 <= len(messages()) < changes  # a burst costs fewer messages than changes
