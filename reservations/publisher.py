"""Sending live events, announced by reservations.services after commit.

Services call ``stock_changed`` / ``purchase_made`` inside their transaction; the
payload (the contract: reservations.events) is built there from the committed values
and handed over on commit. How it reaches the channel layer is this module's alone:

* stock is coalesced per drop across the deployment by one throttle per drop in
  Redis (``_OFFER``): every process offers its newest stock, each size is kept from
  whichever offer knew it newest, and only the caller the throttle picks sends the
  newest stock of every size. So a drop costs the layer at most one stock message
  (to each of its two groups) per ``STOCK_EVENT_INTERVAL_SECONDS``, however many
  processes publish and sizes change; during a burst, one per
  ``STOCK_EVENT_BURST_INTERVAL_SECONDS``; and a burst's last change goes out once
  the drop has been quiet for ``STOCK_EVENT_QUIET_SECONDS`` (never closer than an
  interval to the previous one), whichever process committed it;
* purchases are never coalesced; they go out at once, in order;
* sending runs on one background thread with one event loop per process, so a
  request never opens an event loop or a Redis connection of its own, and a sale
  never waits for Redis.

A lost message is corrected by the next, or by ``republish_stock_task`` within a few
seconds (through the same throttle). The frame text is built once, in Redis, and each
daphne forwards it as it is (shop.consumers.Fanout).
"""

import asyncio
import json
import logging
import os
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction

import redis.asyncio as aioredis
from channels.layers import get_channel_layer

from inventory_project.metrics import LIVE_EVENTS
from reservations.events import (
    ALL_DROPS_GROUP,
    LiveMessage,
    NewPurchase,
    SizeStock,
    StockUpdate,
    drop_group,
    newest_stock,
    purchase_payload,
    stock_payload,
)

logger = logging.getLogger(__name__)

# While Redis is away, one log line per this many seconds says how many sends failed.
FAILURE_LOG_SECONDS = 5.0


def stock_changed(*, drop_id: int, sizes: list[SizeStock]) -> None:
    """Announce a drop's new stock (every size of it) once the current transaction commits."""
    payload = stock_payload(drop_id=drop_id, sizes=sizes)
    # robust: a failed hand-over is logged, never turns a committed change into a 500.
    transaction.on_commit(partial(publisher.put_stock, payload), robust=True)


def purchase_made(*, drop_id: int, username: str, size: str, timestamp: datetime) -> None:
    """Announce a purchase once the current transaction commits."""
    payload = purchase_payload(drop_id=drop_id, username=username, size=size, timestamp=timestamp)
    transaction.on_commit(partial(publisher.put_purchase, payload), robust=True)


# The deployment-wide throttle, one hash per drop in Redis changed only by these
# scripts, so every process sees one order of offers and sends: how it merges sizes
# and when it sends is told in the scripts.
_LUA = Path(__file__).parent / "lua"
_OFFER = (_LUA / "stock_offer.lua").read_text()
_CONFIRM = (_LUA / "stock_confirm.lua").read_text()
DONE, WAIT, SEND = 0, 1, 2

STOCK_SENT = LIVE_EVENTS.labels("stock", "sent")
STOCK_COALESCED = LIVE_EVENTS.labels("stock", "coalesced")
STOCK_FAILED = LIVE_EVENTS.labels("stock", "failed")
PURCHASES_SENT = LIVE_EVENTS.labels("purchase", "sent")
PURCHASES_FAILED = LIVE_EVENTS.labels("purchase", "failed")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class Pacing:
    """The stock settings, read when used."""

    def __init__(self):
        self.spacing = settings.STOCK_EVENT_INTERVAL_SECONDS
        self.burst = max(self.spacing, settings.STOCK_EVENT_BURST_INTERVAL_SECONDS)
        self.quiet = settings.STOCK_EVENT_QUIET_SECONDS
        # Long enough for every waiter to see a send before it offers again; short
        # enough that the periodic republish of a quiet drop, which offers a version
        # already sent, goes out again and corrects a socket whose daphne missed it.
        self.memory = max(1.0, 2 * self.burst)


class StockThrottle:
    """Client of the per-drop throttle in Redis; one per event loop."""

    def __init__(self, redis_url: str, prefix: str):
        # Timeouts: a Redis that hangs must not hold up this process's purchases.
        self.redis = aioredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self._offer = self.redis.register_script(_OFFER)
        self._confirm = self.redis.register_script(_CONFIRM)

    def key(self, drop_id: int) -> str:
        return f"{self.prefix}:stock-by-size:{drop_id}"

    async def offer(self, payload: StockUpdate, pacing: Pacing) -> tuple[int, object]:
        args = [
            json.dumps(payload),
            _ms(pacing.spacing),
            _ms(pacing.quiet),
            _ms(pacing.burst),
            _ms(pacing.memory),
        ]
        reply = await self._offer(keys=[self.key(payload["dropId"])], args=args)
        if reply[0] == WAIT:
            return WAIT, int(reply[1]) / 1000
        if reply[0] == SEND:
            return SEND, (int(reply[1]), reply[2].decode())
        return DONE, None

    async def confirm(self, drop_id: int, version: int) -> None:
        await self._confirm(keys=[self.key(drop_id)], args=[version])


def layer_prefix() -> str:
    # The channel layer's prefix separates deployments and test runs sharing a Redis;
    # the throttle's keys follow it.
    return settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")


class _Pending:
    """A drop's newest local stock not yet known to be sent, and when to offer it."""

    def __init__(self, payload: StockUpdate):
        self.payload = payload
        self.offered: StockUpdate | None = None  # the payload last offered
        self.offered_at = float("-inf")
        self.retry_at = float("-inf")  # when the throttle said to offer again
        # Stock changes folded into this entry, for the metrics: waiting, and taken for
        # the offer under way. Each change is counted once, when an offer settles it:
        # as the one a message was sent for, or as coalesced.
        self.changes = 1
        self.in_offer = 0

    def due_at(self, report: float) -> float:
        # Stock newer than the last offered is reported at least every `report`, so
        # the throttle's `at` (and with it the quiet check) stays fresh in a burst.
        if self.payload is not self.offered:
            return min(self.retry_at, self.offered_at + report)
        return self.retry_at


class Publisher:
    """Per-process sender: offers stock to the drop's throttle, sends purchases as they
    come; all on one background thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stock: dict[int, _Pending] = {}
        self._purchases: list[NewPurchase] = []
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._failure_logged_at = float("-inf")
        self._failures_unlogged = 0

    def put_stock(self, payload: StockUpdate) -> None:
        with self._lock:
            self._ensure_thread()
            held = self._stock.get(payload["dropId"])
            if held is None:
                self._stock[payload["dropId"]] = _Pending(payload)
            else:
                held.changes += 1
                held.payload = newest_stock(held.payload, payload)
            self._wake.set()

    def put_purchase(self, payload: NewPurchase) -> None:
        with self._lock:
            self._ensure_thread()
            self._purchases.append(payload)
            self._wake.set()

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            # First use, or a forked child (gunicorn, Celery prefork): the parent's
            # thread and pending events are not this process's to send.
            self._pid = os.getpid()
            self._stock, self._purchases = {}, []
            self._thread = None
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="event-publisher", daemon=True)
            self._thread.start()

    def _take(self, report: float) -> tuple[list[StockUpdate], list[NewPurchase], float | None]:
        """What is due now, and how long to sleep if nothing else comes."""
        now = time.monotonic()
        with self._lock:
            self._wake.clear()
            purchases, self._purchases = self._purchases, []
            due, later = [], []
            for pending in self._stock.values():
                at = pending.due_at(report)
                if at <= now:
                    pending.offered, pending.offered_at = pending.payload, now
                    pending.in_offer, pending.changes = pending.changes, 0
                    due.append(pending.payload)
                else:
                    later.append(at)
        return due, purchases, (min(later) - now if later else None)

    def _settle(self, drop_id: int, retry_in: float, outcome: int) -> None:
        """Forget the drop's stock if the offer covered it; offer anything newer after
        retry_in. ``outcome`` is the offer's (SEND, DONE; WAIT also when it failed)."""
        with self._lock:
            pending = self._stock.get(drop_id)
            if pending is None:
                return
            offered, pending.in_offer = pending.in_offer, 0
            if outcome == SEND:
                coalesced = offered - 1  # one change is the message, the rest rode along
            elif outcome == DONE:
                coalesced = offered
            else:
                pending.changes += offered  # offered again later
                coalesced = 0
            if outcome != WAIT and pending.payload is pending.offered:
                # The throttle has merged what was offered, and sent it or found it sent.
                del self._stock[drop_id]
                coalesced += pending.changes
            else:
                pending.retry_at = time.monotonic() + retry_in
        if coalesced > 0:
            STOCK_COALESCED.inc(coalesced)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        throttle, timeout = None, None
        while True:
            self._wake.wait(timeout)
            pacing = Pacing()
            stock, purchases, timeout = self._take(pacing.quiet / 2)
            if stock or purchases:
                throttle = throttle or StockThrottle(settings.REDIS_URL, layer_prefix())
                loop.run_until_complete(self._send(throttle, pacing, stock, purchases))
                timeout = 0  # look again at once: sending settled what is due next

    def _warn(self, what: str, exc: Exception) -> None:
        """One line, at most every FAILURE_LOG_SECONDS: while Redis is away every send
        fails, and a traceback each buried the log (the counters have every failure)."""
        now = time.monotonic()
        self._failures_unlogged += 1
        if now - self._failure_logged_at < FAILURE_LOG_SECONDS:
            return
        logger.warning(
            "%s (%d since the last report): %s: %s",
            what,
            self._failures_unlogged,
            type(exc).__name__,
            str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
        )
        self._failure_logged_at, self._failures_unlogged = now, 0

    async def _send(
        self,
        throttle: StockThrottle,
        pacing: Pacing,
        stock: list[StockUpdate],
        purchases: list[NewPurchase],
    ) -> None:
        layer = get_channel_layer()
        sent = 0
        try:
            for payload in purchases:
                await send_message(
                    layer, "purchase.made", payload["dropId"], 0, json.dumps(payload)
                )
                sent += 1
        except Exception as exc:
            # Not retried; pages get purchases back from the snapshot on reconnect.
            self._warn("live purchase send failed", exc)
        if sent:
            PURCHASES_SENT.inc(sent)
        if sent < len(purchases):
            PURCHASES_FAILED.inc(len(purchases) - sent)
        for payload in stock:
            drop_id = payload["dropId"]
            try:
                outcome, detail = await throttle.offer(payload, pacing)
                if outcome == SEND:
                    version, text = detail
                    await send_message(layer, "stock.changed", drop_id, version, text)
                    STOCK_SENT.inc()
                    await throttle.confirm(drop_id, version)
                    self._settle(drop_id, pacing.spacing, SEND)
                elif outcome == WAIT:
                    self._settle(drop_id, detail, WAIT)
                else:
                    self._settle(drop_id, 0, DONE)
            except Exception as exc:
                # Redis away: keep the stock and offer again after an interval; sales
                # go on meanwhile, and the periodic republish corrects what is lost.
                STOCK_FAILED.inc()
                self._warn("live stock send failed", exc)
                self._settle(drop_id, pacing.spacing, WAIT)


async def send_message(layer, message_type: str, drop_id: int, version: int, text: str) -> None:
    for group in (drop_group(drop_id), ALL_DROPS_GROUP):
        message: LiveMessage = {
            "type": message_type,
            "group": group,
            "dropId": drop_id,
            "version": version,
            "text": text,
        }
        await layer.group_send(group, message)


publisher = Publisher()
