import asyncio
import json
import logging
import weakref

from django.utils import timezone

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from drops import selectors as catalog
from drops.serializers import DropSerializer
from inventory_project.metrics import WEBSOCKETS_OPEN
from reservations import selectors
from reservations.events import ALL_DROPS_GROUP, LiveMessage, drop_group

logger = logging.getLogger(__name__)


def _snapshot(drop_id: int | None) -> list[dict] | None:
    """Current state of one drop (None if unknown) or of every live and upcoming drop."""
    if drop_id is not None:
        drop = selectors.drop_with_recent_purchases(drop_id)
        return None if drop is None else [DropSerializer(drop).data]
    now = timezone.now()
    drops = selectors.with_recent_purchases(
        [*catalog.live_drops(now), *catalog.upcoming_drops(now)]
    )
    return DropSerializer(drops, many=True).data


class Fanout:
    """This process's one listener on the channel layer, for every socket it serves.

    Each group is joined once per process, on one channel, and a message is handed to
    the process's sockets of that group in one pass: the frame text comes prebuilt
    from reservations.events, so a socket costs one write and no decoding, task or
    queue of its own (docs/benchmarks.md, live stock at scale).

    Stock is paced once, deployment-wide, before it reaches the layer
    (reservations.publisher); here a stock message older than one already passed on
    for its group and drop is dropped, so delivery jitter never moves a socket back.
    """

    def __init__(self):
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.sockets: dict[str, set[DropConsumer]] = {}
        self.lock = asyncio.Lock()  # joins and leaves reach Redis in the order made
        self.reader: asyncio.Task | None = None
        self.sent_version: dict[tuple[str, int], int] = {}

    async def join(self, group: str, consumer: "DropConsumer") -> None:
        """Returns once the group's messages reach this process."""
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            if self.reader is None or self.reader.done():
                self.reader = asyncio.ensure_future(self._read())
            members = self.sockets.setdefault(group, set())
            if not members:
                await self.layer.group_add(group, self.channel)
            members.add(consumer)

    async def leave(self, group: str, consumer: "DropConsumer") -> None:
        async with self.lock:
            members = self.sockets.get(group)
            if members is None or consumer not in members:
                return
            members.discard(consumer)
            if not members:
                del self.sockets[group]
                await self.layer.group_discard(group, self.channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                logger.exception("channel layer receive failed")
                await asyncio.sleep(1)
                continue
            try:
                await self._route(message)
            except Exception:
                # One bad message or socket must not stop the process's live updates.
                logger.exception("live message not delivered")

    async def _route(self, message: LiveMessage) -> None:
        if message["type"] == "stock.changed":
            key = (message["group"], message["dropId"])
            if message["version"] <= self.sent_version.get(key, -1):
                return
            self.sent_version[key] = message["version"]
        await self._deliver(message)

    async def _deliver(self, message: LiveMessage) -> None:
        for consumer in list(self.sockets.get(message["group"], ())):
            try:
                await consumer.forward(message)
            except Exception:
                logger.exception("live frame not written")


_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout]" = (
    weakref.WeakKeyDictionary()
)


def fanout() -> Fanout:
    """The Fanout of the running event loop (daphne has one; each test its own)."""
    loop = asyncio.get_running_loop()
    if loop not in _fanouts:
        _fanouts[loop] = Fanout()
    return _fanouts[loop]


class DropConsumer(AsyncJsonWebsocketConsumer):
    """Watches one drop (/ws/drops/<id>/) or all of them (/ws/drops/). Read-only.

    Live messages come through the process's Fanout, not a channel of the socket's
    own. Stock frames older than what the socket already shows are dropped.
    """

    # No channel per socket: the Fanout listens for all of them.
    channel_layer_alias = None

    async def connect(self):
        drop_id = self.scope["url_route"]["kwargs"].get("drop_id")
        self.drop_id = int(drop_id) if drop_id is not None else None
        self.group = ALL_DROPS_GROUP if self.drop_id is None else drop_group(self.drop_id)
        self.versions: dict[int, int] = {}
        # Messages that arrive while the snapshot is read; sent after it.
        self.early: list[LiveMessage] | None = []
        self.fanout = fanout()
        await self.accept()
        self.open_gauge = WEBSOCKETS_OPEN.labels("all" if self.drop_id is None else "drop")
        self.open_gauge.inc()
        # Join before reading the snapshot: an event racing the read is then either in
        # the snapshot or delivered afterwards (older versions are dropped).
        await self.fanout.join(self.group, self)
        drops = await database_sync_to_async(_snapshot)(self.drop_id)
        if drops is None:
            await self.send_json({"type": "error", "error": "Drop not found."})
            await self.close(code=4404)
            return
        for drop in drops:
            self.versions[drop["id"]] = drop["version"]
        await self.send_json({"type": "connected", "message": "Watching live stock and purchases."})
        await self.send_json({"type": "snapshot", "drops": drops})
        early, self.early = self.early, None
        for message in early:
            await self.forward(message)

    async def forward(self, message: LiveMessage) -> None:
        """Called by the Fanout for each message of the socket's group."""
        if self.early is not None:
            self.early.append(message)
            return
        if message["type"] == "stock.changed":
            if message["version"] <= self.versions.get(message["dropId"], -1):
                return  # older than what this client already has
            self.versions[message["dropId"]] = message["version"]
        await self.send(text_data=message["text"])

    async def dispatch(self, message):
        # Channels runs close_old_connections before every handler, in the process's
        # one sync thread: one hop per frame a client sends (and per connect), queued
        # behind whatever holds that thread. Every database access here goes through
        # database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        # Also called for a socket refused before accept, which was never counted.
        if getattr(self, "open_gauge", None) is not None:
            self.open_gauge.dec()
            self.open_gauge = None
        await self.fanout.leave(self.group, self)

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
            drops = await database_sync_to_async(_snapshot)(self.drop_id) or []
            for drop in drops:  # no frame older than this snapshot after it
                self.versions[drop["id"]] = max(drop["version"], self.versions.get(drop["id"], -1))
            await self.send_json({"type": "snapshot", "drops": drops})
        else:
            await self.send_json(
                {"type": "error", "error": "Unknown message; sockets only accept ping and refresh."}
            )
