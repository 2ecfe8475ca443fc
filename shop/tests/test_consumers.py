"""DropConsumer through the real ASGI application and the real Redis pub/sub layer.

Changes are made through reservations.services in Django's sync thread
(``database_sync_to_async``); their events travel the whole way: on_commit, the
process's Publisher thread, the stock throttle and the channel layer in Redis, the
test loop's Fanout, the consumer, the socket.
"""

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.tests.factories import UserFactory
from drops.models import Drop
from drops.tests.factories import DropFactory, UpcomingDropFactory
from inventory_project.asgi import application
from reservations import events, services
from reservations.models import Purchase, Reservation
from reservations.selectors import public_buyer_name

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.timeout(60),
]

# The origin validator accepts only ALLOWED_HOSTS (127.0.0.1 and localhost here).
ORIGIN = [(b"origin", b"http://127.0.0.1")]
# Longer than STOCK_EVENT_INTERVAL_SECONDS (0.25) plus a Redis round trip: once
# changes stop, a frame that was going to come would have come by then.
QUIET = 1.0


class Boom(Exception):
    pass


@asynccontextmanager
async def watching(path: str):
    """An open socket on ``path`` whose connected and snapshot frames have been read; yields
    (communicator, snapshot drops)."""
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "connected",
            "message": "Watching live stock and purchases.",
        }
        snapshot = await communicator.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot"
        yield communicator, snapshot["drops"]
    finally:
        await communicator.disconnect()


def in_own_thread(service, **kwargs):
    """Run a service on a fresh thread with its own connection, not on Django's
    shared sync thread."""

    def run():
        try:
            return service(**kwargs)
        finally:
            connection.close()

    return asyncio.to_thread(run)


async def receive(communicator, timeout: float = 3.0) -> dict:
    return await communicator.receive_json_from(timeout=timeout)


def stock_of(drop_id: int) -> tuple[int, int]:
    drop = Drop.objects.get(pk=drop_id)
    return drop.available_stock, drop.stock_version


@pytest_asyncio.fixture(autouse=True)
async def close_sync_thread_connections():
    """database_sync_to_async keeps its thread's connection open (CONN_MAX_AGE);
    close it so the test database can be dropped at the end of the run."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def drop():
    return DropFactory(total_stock=10)


@pytest.fixture
def buyers():
    return UserFactory.create_batch(3)


# Connecting


async def test_drop_socket_sends_connected_then_a_snapshot_with_the_stock(drop, buyers):
    await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)

    async with watching(f"/ws/drops/{drop.pk}/") as (_, drops):
        assert len(drops) == 1
        assert drops[0]["id"] == drop.pk
        assert drops[0]["availableStock"] == 9
        assert drops[0]["totalStock"] == 10
        assert drops[0]["version"] == 1
        assert drops[0]["recentPurchases"] == []


async def test_unknown_drop_gets_an_error_then_the_socket_closes(drop):
    communicator = WebsocketCommunicator(
        application, f"/ws/drops/{drop.pk + 1000}/", headers=ORIGIN
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await receive(communicator) == {"type": "error", "error": "Drop not found."}
    closed = await communicator.receive_output(timeout=3)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4404)
    await communicator.wait(timeout=3)


@pytest.fixture
def live_upcoming_and_ended():
    now = timezone.now()
    ended = DropFactory(
        drop_start_time=now - timedelta(hours=2), drop_end_time=now - timedelta(hours=1)
    )
    return DropFactory(), UpcomingDropFactory(), ended


async def test_all_drops_snapshot_lists_live_and_upcoming_drops_only(live_upcoming_and_ended):
    live, upcoming, _ = live_upcoming_and_ended

    async with watching("/ws/drops/") as (_, drops):
        assert sorted(d["id"] for d in drops) == sorted([live.pk, upcoming.pk])


async def test_socket_from_a_foreign_origin_is_refused(drop):
    communicator = WebsocketCommunicator(
        application, f"/ws/drops/{drop.pk}/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_anonymous_client_may_watch_and_gets_updates(drop, buyers):
    # No session cookie at all: AuthMiddlewareStack makes the user anonymous.
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, drops):
        assert drops[0]["availableStock"] == 10
        await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)
        assert (await receive(communicator))["availableStock"] == 9


# Events from services


async def test_reserve_sends_a_stock_update_with_the_committed_stock_and_version(drop, buyers):
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):
        await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)

        frame = await receive(communicator)
        size_id = await database_sync_to_async(lambda: drop.sizes.get().pk)()
        assert frame == {
            "type": "stockUpdate",
            "dropId": drop.pk,
            "availableStock": 9,
            "totalStock": 10,
            "version": 1,
            "sizes": [events.size_stock(size_id, "One size", 9, 10, 1)],
        }
        assert await database_sync_to_async(stock_of)(drop.pk) == (9, 1)


@pytest.fixture
def two_drops():
    return DropFactory(total_stock=4), DropFactory(total_stock=6)


async def test_all_drops_socket_gets_stock_updates_of_every_drop(two_drops, buyers):
    first, second = two_drops
    async with watching("/ws/drops/") as (communicator, _):
        await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=first.pk)
        await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=second.pk)

        frames = [await receive(communicator), await receive(communicator)]
        assert {(f["dropId"], f["availableStock"], f["version"]) for f in frames} == {
            (first.pk, 3, 1),
            (second.pk, 5, 1),
        }


async def test_purchase_sends_new_purchase_with_the_username(drop, buyers):
    buyer = buyers[0]
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):

        def reserve_and_buy():
            reservation = services.reserve(user=buyer, drop_id=drop.pk)
            return services.purchase(user=buyer, reservation_id=reservation.pk)

        sale = await database_sync_to_async(reserve_and_buy)()

        frames = [await receive(communicator), await receive(communicator)]
        by_type = {frame["type"]: frame for frame in frames}
        assert by_type.keys() == {"stockUpdate", "newPurchase"}
        assert by_type["stockUpdate"]["availableStock"] == 9
        purchase = by_type["newPurchase"]
        assert purchase["username"] == public_buyer_name(buyer.username)
        assert "userId" not in purchase  # the feed is public
        assert purchase["dropId"] == drop.pk
        assert parse_datetime(purchase["timestamp"]) == sale.created_at
        assert await communicator.receive_nothing(timeout=QUIET)


async def test_purchases_in_a_burst_are_not_coalesced(drop, buyers):
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):

        def reserve_all_then_buy_all():
            held = [services.reserve(user=buyer, drop_id=drop.pk) for buyer in buyers]
            for buyer, reservation in zip(buyers, held, strict=True):
                services.purchase(user=buyer, reservation_id=reservation.pk)

        await database_sync_to_async(reserve_all_then_buy_all)()

        frames = []
        while not await communicator.receive_nothing(timeout=QUIET):
            frames.append(await receive(communicator))
        purchases = [f for f in frames if f["type"] == "newPurchase"]
        assert [f["username"] for f in purchases] == [public_buyer_name(b.username) for b in buyers]
        # The stock frames, however many the throttle let through, end on the truth.
        stock = [f for f in frames if f["type"] == "stockUpdate"]
        assert stock and stock[-1]["availableStock"] == 7 and stock[-1]["version"] == 3


async def test_rolled_back_change_sends_nothing(drop, buyers):
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):

        def change_then_roll_back():
            with pytest.raises(Boom), transaction.atomic():
                services.set_total_stock(size_id=drop.sizes.get().pk, total_stock=20)
                raise Boom
            # reserve is durable: inside an outer transaction it refuses before it
            # touches anything, rather than publishing from a block that may roll back.
            with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
                services.reserve(user=buyers[0], drop_id=drop.pk)

        await database_sync_to_async(change_then_roll_back)()

        assert await communicator.receive_nothing(timeout=QUIET)
        assert await database_sync_to_async(stock_of)(drop.pk) == (10, 0)
        # A committed change still arrives, with the version after the last commit.
        await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)
        frame = await receive(communicator)
        assert (frame["availableStock"], frame["totalStock"], frame["version"]) == (9, 10, 1)


async def test_burst_of_reserves_is_throttled_and_ends_on_the_committed_stock():
    interval = settings.STOCK_EVENT_INTERVAL_SECONDS
    drop = await database_sync_to_async(DropFactory)(total_stock=100)
    buyers = await database_sync_to_async(UserFactory.create_batch)(50)

    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):

        def burst() -> tuple[float, float]:
            # 50 reserves at ~25/s, six times the rate the socket may carry.
            started = time.monotonic()
            for buyer in buyers:
                services.reserve(user=buyer, drop_id=drop.pk)
                time.sleep(0.04)
            return started, time.monotonic()

        task = asyncio.ensure_future(database_sync_to_async(burst)())
        arrivals, frames = [], []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            frame = await receive(communicator, timeout=5)
            arrivals.append(time.monotonic())
            frames.append(frame)
            if frame["version"] == 50:
                break
        started, last_change = await task

        assert {f["type"] for f in frames} == {"stockUpdate"}
        versions = [f["version"] for f in frames]
        assert versions == sorted(set(versions)), versions
        assert (frames[-1]["availableStock"], frames[-1]["version"]) == (50, 50)
        assert await database_sync_to_async(stock_of)(drop.pk) == (50, 50)
        # The last frame is the committed state, soon after the last commit ...
        assert arrivals[-1] - last_change <= 0.5, arrivals[-1] - last_change
        # ... and nothing follows it.
        assert await communicator.receive_nothing(timeout=QUIET)

        # At most one frame per interval (~4/s), measured where the client sees them;
        # 50 ms of slack for scheduling jitter on a loaded machine.
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        assert min(gaps, default=interval) >= interval - 0.05, gaps
        duration = arrivals[-1] - started
        assert len(frames) <= duration / interval + 2, (len(frames), duration)
        assert len(frames) >= 3  # the throttle passes updates along, it does not sit on them


async def test_live_frames_do_not_wait_for_a_busy_sync_thread(drop, buyers):
    # Snapshots and session lookups of other sockets hold Django's one sync thread
    # for a while when many clients connect at once; stock must keep flowing meanwhile.
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):
        busy = asyncio.ensure_future(sync_to_async(time.sleep)(3))
        await asyncio.sleep(0.1)
        changed_at = time.monotonic()
        await in_own_thread(services.reserve, user=buyers[0], drop_id=drop.pk)

        frame = await receive(communicator, timeout=5)
        arrived = time.monotonic()
        assert (frame["availableStock"], frame["version"]) == (9, 1)
        assert not busy.done()
        assert arrived - changed_at < 0.5, arrived - changed_at
        await busy


# What clients send


async def test_malformed_frames_get_an_error_and_the_socket_stays_usable(drop, buyers):
    async with watching(f"/ws/drops/{drop.pk}/") as (bystander, _):
        async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):
            for frame in [
                "not json",
                "{",
                json.dumps([1, 2]),
                json.dumps("ping"),
                json.dumps({"type": "shout"}),
                json.dumps({"kind": "ping"}),
                json.dumps({"type": ["ping"]}),
                "[" * 100_000,
                "1" * 5_000,
            ]:
                await communicator.send_to(text_data=frame)
                reply = await receive(communicator)
                assert reply["type"] == "error" and reply["error"], frame[:40]
            await communicator.send_to(bytes_data=b"\x00\xff")
            assert (await receive(communicator))["type"] == "error"

            await communicator.send_json_to({"type": "ping"})
            assert await receive(communicator) == {"type": "pong"}
            await communicator.send_json_to({"type": "refresh"})
            refreshed = await receive(communicator)
            assert refreshed["type"] == "snapshot" and refreshed["drops"][0]["id"] == drop.pk

            # The other socket heard none of it and still gets updates.
            assert await bystander.receive_nothing(timeout=0.2)
            await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)
            for socket in (communicator, bystander):
                frame = await receive(socket)
                assert (frame["type"], frame["availableStock"]) == ("stockUpdate", 9)
            await bystander.send_json_to({"type": "ping"})
            assert await receive(bystander) == {"type": "pong"}


async def test_nothing_a_socket_sends_changes_stock(drop, buyers):
    reservation = await database_sync_to_async(services.reserve)(user=buyers[0], drop_id=drop.pk)
    async with watching(f"/ws/drops/{drop.pk}/") as (communicator, _):
        for message in [
            {"type": "reserve", "dropId": drop.pk},
            {"type": "purchase", "reservationId": reservation.pk},
            {"type": "cancel", "reservationId": reservation.pk},
            # Group message types, as if a client could dispatch to the handlers.
            {
                "type": "stock.changed",
                "event": {"dropId": drop.pk, "availableStock": 0, "totalStock": 10, "version": 99},
            },
            {"type": "stock_changed"},
            {"type": "purchase.made", "event": {"dropId": drop.pk, "username": "mallory"}},
        ]:
            await communicator.send_json_to(message)
            assert (await receive(communicator))["type"] == "error"
        assert await communicator.receive_nothing(timeout=QUIET)

    assert await database_sync_to_async(stock_of)(drop.pk) == (9, 1)
    assert await database_sync_to_async(Purchase.objects.count)() == 0
    held = await database_sync_to_async(Reservation.objects.get)(pk=reservation.pk)
    assert held.status == Reservation.Status.ACTIVE
