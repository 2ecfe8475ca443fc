"""Every change of stock happens here; views, admin, tasks and commands call these.

Invariant, true at every commit, for every drop:
    total_stock == available_stock + ACTIVE reservations + purchases

Lock order, on every path: the drop row first, then its reservations. Every status
change of a reservation happens while its drop's row is locked, so the paths
(reserve, purchase, cancel, expiry, stock edits) serialise per drop and cannot
deadlock or count a unit twice.

Modules: ``stock`` (the drop's counters, creation and stock edits), ``holding``
(reserve), ``sale`` (purchase, cancel, staff release), ``expiry`` (the sweep).
"""

from reservations.services.expiry import expire_due, record_sweep_run
from reservations.services.holding import reserve
from reservations.services.sale import cancel, purchase, release_reservation
from reservations.services.stock import (
    create_drop,
    lock_for_stock_edit,
    republish_recent_stock,
    set_total_stock,
)

__all__ = [
    "cancel",
    "create_drop",
    "expire_due",
    "lock_for_stock_edit",
    "purchase",
    "record_sweep_run",
    "release_reservation",
    "republish_recent_stock",
    "reserve",
    "set_total_stock",
]
