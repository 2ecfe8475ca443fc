"""Each daphne's fan-out (shop.consumers.Fanout), through the real application."""

import asyncio
import json
import time
from contextlib import asynccontextmanager

from django.db import connections

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from drops.tests.factories import DropFactory
from inventory_project.asgi import application
from reservations import events
from reservations import publisher as publishing
from shop import consumers

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


ORIGIN = [(b"origin", b"http://127.0.0.1")]  # the origin validator accepts ALLOWED_HOSTS
QUIET = 1.0  # longer than an interval plus a Redis round trip


@pytest.fixture
def drop():
    return DropFactory(total_stock=100)


@pytest_asyncio.fixture
async def close_sync_thread_connections():
    """database_sync_to_async keeps its thread's connection open; close it so the test
    database can be dropped at the end of the run."""
    yield
    await sync_to_async(connections.close_all)()


@asynccontextmanager
async def watching(path: str):
    """An open socket whose connected and snapshot frames have been read."""
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        for expected in ("connected", "snapshot"):
            assert (await receive(communicator))["type"] == expected
        yield communicator
    finally:
        await communicator.disconnect()


async def receive(communicator) -> dict:
    return await communicator.receive_json_from(timeout=3)


async def send_stock_bypassing_the_throttle(drop_id: int, version: int) -> None:
    """A stock message straight onto the channel layer, as the throttle sends it, but in
    whatever order the test likes."""
    payload = events.stock_payload(
        drop_id=drop_id, sizes=[events.size_stock(1, "One size", 100, 100, version)]
    )
    await publishing.send_message(
        get_channel_layer(), "stock.changed", drop_id, version, json.dumps(payload)
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_sync_thread_connections")
async def test_a_stock_message_older_than_one_passed_on_never_reaches_the_sockets(drop):
    # Pacing is the deployment-wide throttle's alone (reservations.publisher): each
    # message is passed on at once, but never one older than the last, whatever
    # order the channel layer delivers them in.
    async with watching(f"/ws/drops/{drop.pk}/") as drop_socket:
        async with watching("/ws/drops/") as all_socket:
            for version in (5, 3, 5, 6):
                await send_stock_bypassing_the_throttle(drop.pk, version)
            for socket in (drop_socket, all_socket):
                versions = [(await receive(socket))["version"] for _ in range(2)]
                assert versions == [5, 6]
                assert await socket.receive_nothing(timeout=QUIET)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_sync_thread_connections")
async def test_stock_sent_while_the_snapshot_is_read_follows_it_if_newer(drop, monkeypatch):
    # Live messages reach the process's Fanout as soon as the socket has joined; a
    # socket still reading its snapshot holds them until the snapshot is out.
    snapshot = consumers._snapshot

    def slow_snapshot(drop_id):
        time.sleep(1.0)
        return snapshot(drop_id)

    monkeypatch.setattr(consumers, "_snapshot", slow_snapshot)
    communicator = WebsocketCommunicator(application, f"/ws/drops/{drop.pk}/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        await asyncio.sleep(0.3)  # joined by now, the snapshot still being read
        await send_stock_bypassing_the_throttle(drop.pk, 0)  # what the snapshot has
        await send_stock_bypassing_the_throttle(drop.pk, 3)
        frames = [await receive(communicator) for _ in range(3)]
        assert [f["type"] for f in frames] == ["connected", "snapshot", "stockUpdate"]
        assert frames[1]["drops"][0]["version"] == 0
        assert frames[2]["version"] == 3
        assert await communicator.receive_nothing(timeout=QUIET)
    finally:
        await communicator.disconnect()
