"""Domain errors raised by reservations.services; each knows its HTTP status."""


class StockError(Exception):
    status_code = 409
    default_message = "The request conflicts with the drop's stock."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class DropNotFound(StockError):
    status_code = 404
    default_message = "Drop not found."


class ReservationNotFound(StockError):
    status_code = 404
    default_message = "Reservation not found."


class DropNotOpen(StockError):
    default_message = "The drop is not open."


class SoldOut(StockError):
    default_message = "Sold out."


class AlreadyReserved(StockError):
    default_message = "You already hold a reservation for this drop."


class PurchaseLimitReached(StockError):
    default_message = "You have reached the purchase limit for this drop."


class ReservationNotActive(StockError):
    default_message = "The reservation is not active."


class ReservationExpired(StockError):
    status_code = 410
    default_message = "The reservation has expired."


class StockBelowCommitted(StockError):
    default_message = "Total stock cannot go below what is already held or sold."
