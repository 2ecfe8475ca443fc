"""The live-event contract: the frames sockets get, and what travels the channel layer.

Shared by the sender (reservations.publisher), the consumer (shop.consumers)
and the tests. A stock frame carries absolute state, the whole drop's: its totals and
every size, each size with its own ``version`` (bumped with every change of its
stock), and the drop's ``version``, the sum of its sizes' versions. A size's version
only grows, so the sum does too: a client keeps a frame only if its version is newer
than the one it shows, per drop, and a lost frame is corrected by the next.
"""

from datetime import datetime
from typing import Literal, TypedDict

from rest_framework import serializers

from reservations.selectors import public_buyer_name

ALL_DROPS_GROUP = "drops"


class SizeStock(TypedDict):
    """One size's stock, in a stock frame and in a drop's snapshot."""

    id: int
    label: str
    availableStock: int
    totalStock: int
    version: int


class StockUpdate(TypedDict):
    """The frame a socket gets when a drop's stock changes."""

    type: Literal["stockUpdate"]
    dropId: int
    availableStock: int  # the sums over sizes
    totalStock: int
    version: int  # the sum of the sizes' versions
    sizes: list[SizeStock]  # every size of the drop, in run order


class NewPurchase(TypedDict):
    """The frame a socket gets when a unit of a drop is bought."""

    type: Literal["newPurchase"]
    dropId: int
    username: str  # masked: the feed is public (reservations.selectors.public_buyer_name)
    size: str  # the size's label
    timestamp: str


class LiveMessage(TypedDict):
    """What travels the channel layer: the frame, serialized once, and what the
    consumer needs to route and order it without parsing the frame."""

    type: Literal["stock.changed", "purchase.made"]
    group: str  # the group it was sent to; one process listens to several at once
    dropId: int
    version: int  # the drop's stock version; 0 for purchases, which are never reordered
    text: str


def drop_group(drop_id: int) -> str:
    return f"drop.{drop_id}"


def size_stock(size_id: int, label: str, available: int, total: int, version: int) -> SizeStock:
    return {
        "id": size_id,
        "label": label,
        "availableStock": available,
        "totalStock": total,
        "version": version,
    }


def stock_payload(*, drop_id: int, sizes: list[SizeStock]) -> StockUpdate:
    return {
        "type": "stockUpdate",
        "dropId": drop_id,
        "availableStock": sum(size["availableStock"] for size in sizes),
        "totalStock": sum(size["totalStock"] for size in sizes),
        "version": sum(size["version"] for size in sizes),
        "sizes": sizes,
    }


def newest_stock(held: StockUpdate, offered: StockUpdate) -> StockUpdate:
    """The newest of both per size: frames of one drop from transactions on different
    sizes each know their own size's newest stock, and neither is newer as a whole.
    The Redis throttle (reservations.publisher, _OFFER) merges the same way."""
    # In the offered run's order; a size only the held frame knows goes last.
    newest = {size["id"]: size for size in offered["sizes"]}
    for size in held["sizes"]:
        known = newest.get(size["id"])
        if known is None or known["version"] < size["version"]:
            newest[size["id"]] = size
    return stock_payload(drop_id=held["dropId"], sizes=list(newest.values()))


def purchase_payload(*, drop_id: int, username: str, size: str, timestamp: datetime) -> NewPurchase:
    return {
        "type": "newPurchase",
        "dropId": drop_id,
        "username": public_buyer_name(username),  # masked, as in the feed on pages and API
        "size": size,
        # The same format as the API and the snapshots.
        "timestamp": serializers.DateTimeField().to_representation(timestamp),
    }
