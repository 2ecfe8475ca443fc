"""Refusals of the stock rules (reservations.services).

Each error has a stable ``code``: clients branch on it (the API's ``"code"``, the page
script, the outcome metric), so a code never changes once published; the message may.
Which HTTP status a code gets is the API's business (inventory_project/api_errors.py).
"""

from inventory_project.errors import ApplicationError


class StockError(ApplicationError):
    code = "stock_conflict"
    default_message = "The request conflicts with the drop's stock."


class DropNotFound(StockError):
    code = "drop_not_found"
    default_message = "Drop not found."


class ReservationNotFound(StockError):
    code = "reservation_not_found"
    default_message = "Reservation not found."


class DropNotOpen(StockError):
    code = "not_open"
    default_message = "The drop is not open."


class SoldOut(StockError):
    code = "sold_out"
    default_message = "Sold out."


class AlreadyReserved(StockError):
    code = "already_reserved"
    default_message = "You already hold a reservation for this drop."


class PurchaseLimitReached(StockError):
    code = "purchase_limit_reached"
    default_message = "You have reached the purchase limit for this drop."


class ReservationNotActive(StockError):
    code = "not_active"
    default_message = "The reservation is not active."


class ReservationExpired(StockError):
    code = "hold_expired"
    default_message = "The reservation has expired."


class StockBelowCommitted(StockError):
    code = "stock_below_committed"
    default_message = "Total stock cannot go below what is already held or sold."


class SizeRequired(StockError):
    code = "size_required"
    default_message = "This drop comes in several sizes: choose one."


class SizeNotFound(StockError):
    code = "size_not_found"
    default_message = "This drop has no such size."


class SizeInUse(StockError):
    code = "size_in_use"
    default_message = "This size cannot be removed: it was held or sold, or its stock changed."


class InvalidSizeRun(StockError):
    code = "invalid_size_run"
    default_message = "A size run needs at least one size, unique labels and stock of 0 or more."
