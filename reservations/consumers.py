import asyncio
import json

from django.conf import settings
from django.utils import timezone

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from drops import selectors
from drops.serializers import DropSerializer
from reservations.events import ALL_DROPS_GROUP, drop_group


def _snapshot(drop_id: int | None) -> list[dict] | None:
    """Current state of one drop (None if unknown) or of every live and upcoming drop."""
    if drop_id is not None:
        drop = selectors.drop_with_recent_purchases(drop_id)
        return None if drop is None else [DropSerializer(drop).data]
    now = timezone.now()
    drops = selectors.with_recent_purchases(
        [*selectors.live_drops(now), *selectors.upcoming_drops(now)]
    )
    return DropSerializer(drops, many=True).data


class DropConsumer(AsyncJsonWebsocketConsumer):
    """Watches one drop (/ws/drops/<id>/) or all of them (/ws/drops/). Read-only.

    Stock events are throttled per socket and drop to one per
    STOCK_EVENT_INTERVAL_SECONDS, newest version wins; purchases pass straight through.
    """

    async def connect(self):
        drop_id = self.scope["url_route"]["kwargs"].get("drop_id")
        self.drop_id = int(drop_id) if drop_id is not None else None
        self.group = ALL_DROPS_GROUP if self.drop_id is None else drop_group(self.drop_id)
        self.interval = settings.STOCK_EVENT_INTERVAL_SECONDS
        self.sent_version: dict[int, int] = {}
        self.sent_at: dict[int, float] = {}
        self.pending: dict[int, dict] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        await self.accept()
        # Join before reading the snapshot: an event racing the read is then either in
        # the snapshot or delivered afterwards (older versions are dropped).
        await self.channel_layer.group_add(self.group, self.channel_name)
        drops = await database_sync_to_async(_snapshot)(self.drop_id)
        if drops is None:
            await self.send_json({"type": "error", "error": "Drop not found."})
            await self.close(code=4404)
            return
        for drop in drops:
            self.sent_version[drop["id"]] = drop["version"]
        await self.send_json({"type": "connected", "message": "Watching live stock and purchases."})
        await self.send_json({"type": "snapshot", "drops": drops})

    async def dispatch(self, message):
        # Channels runs close_old_connections before every handler, in the process's
        # one sync thread; for a group message that is one hop per socket, queued
        # behind whatever else holds that thread (snapshots, session lookups), so live
        # frames stalled while it was busy. Every database access here goes through
        # database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        for timer in self.timers.values():
            timer.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Malformed frames get an error reply; the socket (and everyone else's) stays up.
        if text_data is None:
            await self.send_json({"type": "error", "error": "Send JSON text frames."})
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            await self.send_json({"type": "error", "error": "Malformed JSON."})
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "refresh":
            drops = await database_sync_to_async(_snapshot)(self.drop_id)
            await self.send_json({"type": "snapshot", "drops": drops or []})
        else:
            await self.send_json(
                {"type": "error", "error": "Unknown message; sockets only accept ping and refresh."}
            )

    async def purchase_made(self, message):
        await self.send_json(message["event"])

    async def stock_changed(self, message):
        event = message["event"]
        drop_id = event["dropId"]
        if event["version"] <= self.sent_version.get(drop_id, -1):
            return  # older than what this client already has
        held = self.pending.get(drop_id)
        if held is None or held["version"] < event["version"]:
            self.pending[drop_id] = event
        if drop_id in self.timers:
            return  # a send is already scheduled; it will carry the newest version
        loop = asyncio.get_running_loop()
        wait = self.sent_at.get(drop_id, float("-inf")) + self.interval - loop.time()
        if wait <= 0:
            await self._send_stock(drop_id)
        else:
            self.timers[drop_id] = loop.call_later(
                wait, lambda: asyncio.ensure_future(self._send_stock(drop_id))
            )

    async def _send_stock(self, drop_id: int) -> None:
        self.timers.pop(drop_id, None)
        event = self.pending.pop(drop_id, None)
        if event is None or event["version"] <= self.sent_version.get(drop_id, -1):
            return
        self.sent_version[drop_id] = event["version"]
        self.sent_at[drop_id] = asyncio.get_running_loop().time()
        await self.send_json(event)
