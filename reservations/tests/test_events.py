"""The deployment-wide stock throttle in reservations.publisher, on the real Redis.

Each ``Publisher()`` stands for one process (its own thread, event loop and
Redis connections); only Redis joins them, as in a deployment. What they send is
heard through the real channel layer.
"""

import asyncio
import contextlib
import itertools
import threading
import time
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

import pytest
from channels.layers import get_channel_layer

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from reservations import events, services
from reservations import publisher as publishing
from reservations.publisher import SEND, WAIT, Pacing, Publisher, StockThrottle, layer_prefix
from reservations.tasks import republish_stock_task

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

# Drop ids of the tests without a database; the throttle's keys live for a minute.
_drop_ids = itertools.count(10_000_000 + int(time.time()) % 1_000_000 * 10)


def stock(drop_id: int, version: int, size_id: int = 1) -> events.StockUpdate:
    """The stock of a drop of one size, at ``version``."""
    return events.stock_payload(
        drop_id=drop_id,
        sizes=[events.size_stock(size_id, "One size", 1000 - version, 1000, version)],
    )


@pytest.fixture
def pacing(settings):
    """Short intervals, so a test sees many of them."""
    settings.STOCK_EVENT_INTERVAL_SECONDS = 0.1
    settings.STOCK_EVENT_BURST_INTERVAL_SECONDS = 0.1
    settings.STOCK_EVENT_QUIET_SECONDS = 0.05
    return settings


@asynccontextmanager
async def listening(drop_id: int):
    """Stock messages of ``drop_id`` on both its groups, as (arrival, message), heard on
    the channel layer like a daphne does."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    heard: list[tuple[float, dict]] = []

    async def listen():
        while True:
            message = await layer.receive(channel)
            if message["type"] == "stock.changed" and message["dropId"] == drop_id:
                heard.append((time.monotonic(), message))

    for group in (events.drop_group(drop_id), events.ALL_DROPS_GROUP):
        await layer.group_add(group, channel)
    task = asyncio.ensure_future(listen())
    try:
        yield heard
    finally:
        task.cancel()
        for group in (events.drop_group(drop_id), events.ALL_DROPS_GROUP):
            await layer.group_discard(group, channel)


async def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def versions_in(heard, group: str) -> list[int]:
    return [m["version"] for _, m in heard if m["group"] == group]


def most_in_any_window(heard, group: str, window: float) -> int:
    times = [at for at, m in heard if m["group"] == group]
    return max((sum(t <= u < t + window for u in times) for t in times), default=0)


async def test_racing_publishers_send_at_most_one_message_per_interval_and_the_newest_last(
    pacing,
):
    drop_id = next(_drop_ids)
    publishers = [Publisher() for _ in range(4)]
    versions, lock = itertools.count(1), threading.Lock()
    newest = 0

    def commit_for_a_while(publisher):
        nonlocal newest
        until_ = time.monotonic() + 1.5
        while time.monotonic() < until_:
            # The lock hands out versions in commit order, as a size's row lock does.
            with lock:
                newest = next(versions)
                publisher.put_stock(stock(drop_id, newest))
            time.sleep(0.001)

    async with listening(drop_id) as heard:
        await asyncio.gather(*(asyncio.to_thread(commit_for_a_while, p) for p in publishers))
        await until(lambda: newest in versions_in(heard, events.ALL_DROPS_GROUP), timeout=2)
        await until(lambda: newest in versions_in(heard, events.drop_group(drop_id)), timeout=2)
        await asyncio.sleep(0.3)  # nothing may follow the newest

    assert newest > 200  # hundreds of commits from four publishers
    for group in (events.drop_group(drop_id), events.ALL_DROPS_GROUP):
        sent = versions_in(heard, group)
        assert sent == sorted(set(sent)) and sent[-1] == newest, sent
        assert len(sent) >= 5  # the throttle passes updates along, it does not sit on them
        # At most one message per 0.1 s interval, in any second, whichever publisher
        # sent it: 4 publishers on their own sent 4 per interval.
        assert most_in_any_window(heard, group, 1.0) <= 1.0 / 0.1 + 1


async def test_a_continuing_burst_is_sent_once_per_burst_interval_and_its_end_at_once(pacing):
    pacing.STOCK_EVENT_BURST_INTERVAL_SECONDS = 0.5
    pacing.STOCK_EVENT_QUIET_SECONDS = 0.15
    drop_id = next(_drop_ids)
    publisher = Publisher()

    def commit_for_a_while() -> tuple[int, float]:
        until_, version = time.monotonic() + 1.6, 0
        while time.monotonic() < until_:
            version += 1
            publisher.put_stock(stock(drop_id, version))
            time.sleep(0.002)
        return version, time.monotonic()

    async with listening(drop_id) as heard:
        last, ended = await asyncio.to_thread(commit_for_a_while)
        group = events.drop_group(drop_id)
        await until(lambda: last in versions_in(heard, group), timeout=2)

    arrivals = [at for at, m in heard if m["group"] == group]
    # The first at once, then one per 0.5 s while the burst goes on (not one per 0.1 s
    # interval), then the last one once the drop has been quiet for 0.15 s.
    assert 3 <= len(arrivals) <= 1.6 / 0.5 + 3, len(arrivals)
    assert arrivals[-1] - ended < 0.15 + 0.25, arrivals[-1] - ended


async def test_a_sender_that_dies_between_taking_the_drop_and_sending_is_covered(pacing):
    drop_id = next(_drop_ids)
    throttle = StockThrottle(pacing.REDIS_URL, layer_prefix())
    async with listening(drop_id) as heard:
        # A process takes the drop for version 1, then dies before its group_send.
        outcome, (version, _) = await throttle.offer(stock(drop_id, 1), Pacing())
        assert (outcome, version) == (SEND, 1)
        # Another process offering the same version does not take it as sent ...
        Publisher().put_stock(stock(drop_id, 1))
        # ... and sends it once the dead one's interval has passed.
        await until(lambda: 1 in versions_in(heard, events.drop_group(drop_id)), timeout=2)


async def test_a_version_whose_publisher_died_waiting_is_sent_by_another(pacing):
    # An interval long enough for the dead process's offer to fall within it.
    pacing.STOCK_EVENT_INTERVAL_SECONDS = pacing.STOCK_EVENT_BURST_INTERVAL_SECONDS = 1.0
    drop_id = next(_drop_ids)
    group = events.drop_group(drop_id)
    alive = Publisher()
    throttle = StockThrottle(pacing.REDIS_URL, layer_prefix())
    async with listening(drop_id) as heard:
        alive.put_stock(stock(drop_id, 1))
        await until(lambda: 1 in versions_in(heard, group), timeout=2)
        # Version 2 is offered within the interval by a process that is told to wait,
        # and dies.
        outcome, _ = await throttle.offer(stock(drop_id, 2), Pacing())
        assert outcome == WAIT
        await asyncio.sleep(0.3)
        assert versions_in(heard, group) == [1]
        # Any other offer for the drop, even of a version already sent, sends it.
        alive.put_stock(stock(drop_id, 1))
        await until(lambda: 2 in versions_in(heard, group), timeout=2)
    assert versions_in(heard, group) == [1, 2]


@pytest.mark.django_db(transaction=True)
async def test_a_change_whose_process_died_before_offering_it_goes_out_with_the_republish(
    pacing, monkeypatch
):
    drop = await asyncio.to_thread(DropFactory, total_stock=5)

    def in_own_thread(function):
        def run():
            try:
                return function()
            finally:
                connection.close()

        return asyncio.to_thread(run)

    async with listening(drop.pk) as heard:
        group = events.drop_group(drop.pk)
        await in_own_thread(lambda: services.reserve(user=UserFactory(), drop_id=drop.pk))
        await until(lambda: 1 in versions_in(heard, group), timeout=2)
        # Version 2 commits, and its process dies before the offer.
        with monkeypatch.context() as patch:
            patch.setattr(publishing.publisher, "put_stock", lambda payload: None)
            await in_own_thread(lambda: services.reserve(user=UserFactory(), drop_id=drop.pk))
        await asyncio.sleep(0.3)
        assert versions_in(heard, group) == [1]

        assert await in_own_thread(republish_stock_task) == 1
        await until(lambda: 2 in versions_in(heard, group), timeout=2)
    assert [m["version"] for _, m in heard if m["group"] == group] == [1, 2]


async def test_republishing_cannot_defeat_the_interval_but_repeats_a_quiet_drop(pacing):
    drop_id = next(_drop_ids)
    publisher = Publisher()
    group = events.drop_group(drop_id)
    async with listening(drop_id) as heard:
        # The same committed state announced over and over, as a republish every few
        # milliseconds would: sent at once, then not again while it is remembered.
        started = time.monotonic()
        while time.monotonic() - started < 0.6:
            publisher.put_stock(stock(drop_id, 7))
            await asyncio.sleep(0.005)
        assert versions_in(heard, group) == [7]
        # Once the send is forgotten (after a second here), announcing it again sends
        # it again: a socket whose daphne missed it is corrected.
        await asyncio.sleep(1.0)
        publisher.put_stock(stock(drop_id, 7))
        await until(lambda: len(versions_in(heard, group)) == 2, timeout=2)
        # Newer versions still go out, one per interval.
        for version in range(8, 30):
            publisher.put_stock(stock(drop_id, version))
            await asyncio.sleep(0.01)
        await until(lambda: 29 in versions_in(heard, group), timeout=2)
    assert most_in_any_window(heard, group, 0.5) <= 0.5 / 0.1 + 1


class RedisProxy:
    """A TCP proxy to the test Redis, to take Redis away and bring it back."""

    def __init__(self, port: int):
        target = urlsplit(settings.REDIS_URL)
        self.target = (target.hostname, target.port or 6379)
        self.url = target._replace(netloc=f"127.0.0.1:{port}").geturl()
        self.port, self.server, self.open = port, None, set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def cut(self) -> None:
        self.server.close()
        for writer in self.open:
            writer.close()

    async def _serve(self, reader, writer) -> None:
        upstream_reader, upstream = await asyncio.open_connection(*self.target)
        self.open |= {writer, upstream}

        async def pipe(source, sink):
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))


async def test_stock_offered_while_redis_is_away_goes_out_once_it_is_back(pacing, free_port):
    drop_id = next(_drop_ids)
    proxy = RedisProxy(free_port())
    async with listening(drop_id) as heard:  # on the real Redis
        # The publishing process reaches Redis (throttle and channel layer) through
        # the proxy, which is down.
        pacing.REDIS_URL = proxy.url
        layers = pacing.CHANNEL_LAYERS["default"]
        config = {**layers["CONFIG"], "hosts": [proxy.url]}
        pacing.CHANNEL_LAYERS = {"default": {**layers, "CONFIG": config}}
        publisher = Publisher()
        started = time.monotonic()
        publisher.put_stock(stock(drop_id, 1))  # as on_commit does, after a sale
        assert time.monotonic() - started < 0.05  # the sale never waits for Redis
        await asyncio.sleep(0.5)  # offers fail, and are retried
        assert heard == []

        await proxy.start()
        await until(lambda: 1 in versions_in(heard, events.drop_group(drop_id)), timeout=3)
    proxy.cut()
