"""The transaction a stock service commits its change in.

Normally each service runs in its own durable transaction, which commits when the
service returns (and sends its events then). A caller that must commit something of
its own together with the change (an Idempotency-Key's stored answer:
reservations.idempotency) opens ``callers_transaction()``: services then run in a
savepoint of the caller's transaction, and durable still fails loudly for any other
nesting.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_in_callers_transaction: ContextVar[bool] = ContextVar("in_callers_transaction", default=False)


@contextmanager
def callers_transaction() -> Iterator[None]:
    """Run the block's services inside the caller's (already open) transaction."""
    marker = _in_callers_transaction.set(True)
    try:
        yield
    finally:
        _in_callers_transaction.reset(marker)


def in_callers_transaction() -> bool:
    return _in_callers_transaction.get()


def service_atomic() -> transaction.Atomic:
    """A service's own durable transaction, or a savepoint of the caller's (see above).

    A refusal raised inside rolls back to the savepoint, as the durable transaction
    would have rolled back; events (on_commit) go out when the caller commits.
    """
    if _in_callers_transaction.get():
        return transaction.atomic()
    return transaction.atomic(durable=True)
