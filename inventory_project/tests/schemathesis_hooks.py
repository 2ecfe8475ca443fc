"""schemathesis hooks for the run against the live schema (test_schemathesis.py).

Loaded by schemathesis.toml beside this file, in the schemathesis process.
"""

import schemathesis

# What schema-valid data may still be refused for (400): rules against stored data or
# across fields, which no schema can state. schemathesis.toml turns the built-in
# positive_data_acceptance check off for these operations; this check replaces it and
# refuses any other reason.
UNSTATABLE = {
    "POST /api/users": {
        "This username is taken.",
        "The password is too similar to the username.",
        "This password is too common.",
    },
    "POST /api/auth/token": {"Unable to log in with provided credentials."},
    "POST /api/drops": {
        "Must be after dropStartTime.",
        # drops.serializers: labels unique after trimming, and a run with some stock.
        "Each size needs its own label.",
        "A drop needs at least one unit of stock.",
    },
}
# Codes of 400s for schema-valid data that the stored data decides: a size that is not
# one of the drop's, or none named for a drop of several (reservations.exceptions).
REFUSED_BY_STATE = {"POST /api/reserve/{drop_id}": {"size_required", "size_not_found"}}
# Answers the built-in check accepts for valid data: a refusal by state, not by shape
# (422: an Idempotency-Key the run already used for another request).
NOT_ABOUT_THE_DATA = {401, 403, 404, 409, 422, 429}


@schemathesis.check
def positive_data_refused_only_for_unstatable_rules(ctx, response, case):
    label = case.operation.label
    allowed, codes = UNSTATABLE.get(label, set()), REFUSED_BY_STATE.get(label, set())
    meta = case.meta
    if not (allowed or codes) or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in NOT_ABOUT_THE_DATA:
        return None  # 5xx: not_a_server_error's business
    if status != 400:
        raise AssertionError(f"Schema-valid data refused with {status}: {response.text[:300]}")
    body = response.json()
    if body.get("code") in codes:
        return None
    messages = {m for ms in body.get("fields", {}).values() for m in ms} or {body["error"]}
    if not messages <= allowed:
        raise AssertionError(f"Schema-valid data refused for: {sorted(messages - allowed)}")
    return None
