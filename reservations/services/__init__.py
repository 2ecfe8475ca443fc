"""Every change of stock happens here; views, admin, tasks and commands call these.

Stock lives on a drop's sizes (drops.models.Size). Invariant, true at every commit,
for every size (and so for every drop, whose stock is the sum of its sizes'):
    total_stock == available_stock + ACTIVE reservations + purchases

Lock order, on every path: one size's row, then its reservations. Every status change
of a reservation happens while its size's row is locked, so the paths (reserve,
purchase, cancel, expiry, stock edits) serialise per size and cannot deadlock or count
a unit twice; no path holds two sizes' locks at once (the sweep takes them one at a
time, each in its own transaction), and none locks the drop's row, so a hot drop's
buyers queue per size. What spans a drop's sizes needs no lock: a buyer holds at most
one unit of a drop at a time (a unique index), so their purchases of it, counted
against the drop's limit, come one after another.

Modules: ``stock`` (size runs, the counters, stock edits), ``holding`` (reserve),
``sale`` (purchase, cancel, staff release), ``expiry`` (the sweep).
"""

from reservations.services.expiry import expire_due, record_sweep_run
from reservations.services.holding import reserve
from reservations.services.sale import cancel, purchase, release_reservation
from reservations.services.stock import (
    add_sizes,
    create_drop,
    lock_for_stock_edit,
    remove_size,
    republish_recent_stock,
    set_total_stock,
)

__all__ = [
    "add_sizes",
    "cancel",
    "create_drop",
    "expire_due",
    "lock_for_stock_edit",
    "purchase",
    "record_sweep_run",
    "release_reservation",
    "remove_size",
    "republish_recent_stock",
    "reserve",
    "set_total_stock",
]
