"""The base of every domain error: a stable code and a readable message, no HTTP.

Apps raise subclasses (reservations/exceptions.py). The code is the contract: the
API's exception handler maps it to a status (inventory_project/api_errors.py) and puts
it in the body next to the message, the page script branches on it, and the outcome
metric counts it. This module imports nothing, so any layer may use it.
"""


class ApplicationError(Exception):
    """A refusal by the domain rules; subclasses set ``code`` and ``default_message``."""

    code = "application_error"
    default_message = "The request cannot be carried out."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)
