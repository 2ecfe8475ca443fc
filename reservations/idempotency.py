"""Idempotent retries of reserve, purchase and cancel: the ``Idempotency-Key`` header.

A phone on a bad network cannot tell a lost request from a lost answer, so it retries.
With the same key, a buyer's retry gets the first answer again (same status, same body)
and never a second hold, sale or release:

- The key is claimed with INSERT ... ON CONFLICT on the unique (user, key) index, in one
  transaction with the service's change and the answer. A concurrent retry's INSERT
  waits on that index until the first transaction ends, then finds the key answered and
  replays it; if the first rolled back (a fault: nothing is stored for a 5xx), the retry
  runs the request itself. No crash can split a hold, sale or release from its answer.
- Every answer the service gives is stored: a sale, and a refusal too (sold out, limit
  reached, expired), even one that commits nothing, so a retry never turns a refusal
  into a sale minutes later. Input refused before the service runs (a bad body, a bad
  key, a throttle) stores nothing, and is safe to retry as it is.
- Lock order: the key row first (only requests with the same key wait for it), then
  the drop, then its reservations, as on every other path.
- A key answered for another request (method, path or body) is refused with 422. A key
  lives IDEMPOTENCY_KEY_TTL_SECONDS (24 h); an older one counts as new, and beat's
  purge deletes it.

A request without the header does not come here beyond one header look-up: each
service runs in its own durable transaction, as it always has.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from inventory_project.api_errors import exception_handler
from reservations.exceptions import StockError
from reservations.models import IdempotencyKey
from reservations.services import transactions

HEADER = "Idempotency-Key"
# Printable ASCII, 1 to 255 characters, no space at either end (a server may strip
# those in transit, and the retry would then carry another key). A UUID fits.
KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
_META_NAME = "HTTP_IDEMPOTENCY_KEY"
# Set on a replayed answer, so a client (or its log) can tell.
REPLAYED_HEADER = "Idempotent-Replayed"

# Keys deleted per statement by the purge: each DELETE is a short transaction of its
# own, so the purge never holds many rows a concurrent retry might need.
PURGE_CHUNK = 5000

_TABLE = IdempotencyKey._meta.db_table
# Inserts the key, or takes over an expired one. Either way the row is this
# transaction's until it commits; a concurrent INSERT of the same key waits for that.
# On a live key nothing is updated and nothing returned, but the row is still locked,
# so the purge cannot delete it before the replay has read it.
_CLAIM_SQL = f"""
INSERT INTO "{_TABLE}" AS k ("user_id", "key", "fingerprint", "created_at")
VALUES (%(user_id)s, %(key)s, %(fingerprint)s, %(now)s)
ON CONFLICT ("user_id", "key") DO UPDATE
   SET "fingerprint" = EXCLUDED."fingerprint",
       "created_at" = EXCLUDED."created_at",
       "status_code" = NULL,
       "response_body" = NULL
 WHERE k."created_at" <= %(expired_at)s
RETURNING k."id"
"""


class InvalidIdempotencyKey(exceptions.APIException):
    status_code = 400
    default_detail = (
        f"{HEADER} must be 1 to 255 printable ASCII characters, not starting or ending "
        "with a space."
    )
    default_code = "invalid_idempotency_key"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = 422
    default_detail = f"This {HEADER} was already used for a different request."
    default_code = "idempotency_key_reused"


def respond(request: Request, answer: Callable[[], Response]) -> Response:
    """``answer()``, or with an Idempotency-Key the first answer given to that key.

    ``answer`` calls one stock service and builds the response from its result; a
    StockError it raises becomes the API's error response, and is the key's answer
    too. Call this once the request's own input has been checked: what is refused
    before it is not stored. Raises InvalidIdempotencyKey (400) and
    IdempotencyKeyReused (422).
    """
    key = request.META.get(_META_NAME)
    if key is None:
        return answer()
    if not _KEY.fullmatch(key):
        raise InvalidIdempotencyKey()
    fingerprint = _fingerprint(request)
    now = timezone.now()
    with transactions.callers_transaction(), transaction.atomic(durable=True):
        claimed = _claim(user_id=request.user.pk, key=key, fingerprint=fingerprint, now=now)
        if claimed is None:
            return _replay(user_id=request.user.pk, key=key, fingerprint=fingerprint)
        try:
            response = answer()
        except StockError as exc:
            response = exception_handler(exc, {"request": request})
        IdempotencyKey.objects.filter(pk=claimed).update(
            status_code=response.status_code,
            response_body=json.dumps(response.data, cls=JSONEncoder),
        )
    return response


def purge_expired_keys(*, now: datetime | None = None) -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL_SECONDS; returns how many."""
    expired_at = _expired_at(now or timezone.now())
    purged = 0
    while True:
        chunk = (
            IdempotencyKey.objects.filter(created_at__lte=expired_at)
            .order_by()
            .values("pk")[:PURGE_CHUNK]
        )
        # created_at again in the DELETE itself: a key a retry has just taken over
        # (claimed anew, so younger) is re-checked on its new row and kept.
        deleted, _ = IdempotencyKey.objects.filter(
            pk__in=chunk, created_at__lte=expired_at
        ).delete()
        purged += deleted
        if deleted < PURGE_CHUNK:
            return purged


def _claim(*, user_id: int, key: str, fingerprint: str, now: datetime) -> int | None:
    """The key row's id if this request is the key's first (or the key had expired)."""
    params = {
        "user_id": user_id,
        "key": key,
        "fingerprint": fingerprint,
        "now": now,
        "expired_at": _expired_at(now),
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _replay(*, user_id: int, key: str, fingerprint: str) -> Response:
    # A new statement, so READ COMMITTED sees the answer the first request committed.
    stored, status_code, body = IdempotencyKey.objects.values_list(
        "fingerprint", "status_code", "response_body"
    ).get(user_id=user_id, key=key)
    if stored != fingerprint:
        raise IdempotencyKeyReused()
    if status_code is None or body is None:
        # Cannot happen: a key commits only together with its answer.
        raise RuntimeError(f"Idempotency key {key!r} of user {user_id} has no answer.")
    return Response(json.loads(body), status=status_code, headers={REPLAYED_HEADER: "true"})


def _fingerprint(request: Request) -> str:
    """What makes two requests the same one: method, path and (canonical JSON) body."""
    try:
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        raise exceptions.ParseError("The request body cannot be keyed.") from None
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _expired_at(now: datetime) -> datetime:
    """Keys created at or before this have expired."""
    return now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
