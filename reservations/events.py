"""Live events, announced by reservations.services after commit.

Services call ``stock_changed`` / ``purchase_made`` inside their transaction; the
payload is built there from the committed values and handed over on commit. How it
reaches the channel layer is this module's business alone:

* stock changes are coalesced per drop in each process (latest version wins) and
  sent at most once per ``STOCK_EVENT_INTERVAL_SECONDS``, so a burst of reserves
  costs the layer a bounded number of messages, however many buyers there are;
* purchases are never coalesced; they go out on the same tick, in order;
* sending runs on one background thread with one event loop per process, so a
  request never opens an event loop or a Redis connection of its own.

Payloads carry absolute state and the drop's ``stock_version``; a lost message is
corrected by the next one, or by ``republish_stock_task`` within a few seconds.
"""

import asyncio
import logging
import os
import threading
import time
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction

from channels.layers import get_channel_layer
from rest_framework import serializers

logger = logging.getLogger(__name__)

ALL_DROPS_GROUP = "drops"


def drop_group(drop_id: int) -> str:
    return f"drop.{drop_id}"


def stock_payload(*, drop_id: int, available: int, total: int, version: int) -> dict:
    return {
        "type": "stockUpdate",
        "dropId": drop_id,
        "availableStock": available,
        "totalStock": total,
        "version": version,
    }


def purchase_payload(*, drop_id: int, user_id: int, username: str, timestamp: datetime) -> dict:
    return {
        "type": "newPurchase",
        "dropId": drop_id,
        "userId": user_id,
        "username": username,
        # The same format as the API and the snapshots.
        "timestamp": serializers.DateTimeField().to_representation(timestamp),
    }


def stock_changed(*, drop_id: int, available: int, total: int, version: int) -> None:
    """Announce a drop's new stock once the current transaction commits."""
    payload = stock_payload(drop_id=drop_id, available=available, total=total, version=version)
    # robust: a failed hand-over is logged, never turns a committed change into a 500.
    transaction.on_commit(partial(publisher.put_stock, payload), robust=True)


def purchase_made(*, drop_id: int, user_id: int, username: str, timestamp: datetime) -> None:
    """Announce a purchase once the current transaction commits."""
    payload = purchase_payload(
        drop_id=drop_id, user_id=user_id, username=username, timestamp=timestamp
    )
    transaction.on_commit(partial(publisher.put_purchase, payload), robust=True)


class Publisher:
    """Per-process sender: coalesces stock per drop and sends on a background thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stock: dict[int, dict] = {}
        self._purchases: list[dict] = []
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def put_stock(self, payload: dict) -> None:
        with self._lock:
            self._ensure_thread()
            held = self._stock.get(payload["dropId"])
            if held is None or held["version"] <= payload["version"]:
                self._stock[payload["dropId"]] = payload
            self._wake.set()

    def put_purchase(self, payload: dict) -> None:
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

    def _take(self) -> tuple[list[dict], list[dict]]:
        with self._lock:
            stock, purchases = list(self._stock.values()), self._purchases
            self._stock, self._purchases = {}, []
            self._wake.clear()
        return stock, purchases

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            self._wake.wait()
            stock, purchases = self._take()
            try:
                loop.run_until_complete(self._send(stock, purchases))
            except Exception:
                # Redis away: keep the newest stock for the next tick. Purchases are
                # not retried; pages get them back from the snapshot on reconnect,
                # and the periodic republish corrects any stock lost here.
                logger.exception("live event send failed")
                for payload in stock:
                    self.put_stock(payload)
            # One send per drop per interval at most; what arrives meanwhile coalesces.
            time.sleep(settings.STOCK_EVENT_INTERVAL_SECONDS)

    async def _send(self, stock: list[dict], purchases: list[dict]) -> None:
        layer = get_channel_layer()
        for payload in purchases:
            await self._send_to_groups(layer, "purchase.made", payload)
        for payload in stock:
            await self._send_to_groups(layer, "stock.changed", payload)

    async def _send_to_groups(self, layer, message_type: str, payload: dict) -> None:
        message = {"type": message_type, "event": payload}
        await layer.group_send(drop_group(payload["dropId"]), message)
        await layer.group_send(ALL_DROPS_GROUP, message)


publisher = Publisher()
