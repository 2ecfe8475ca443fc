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
    "POST /api/drops": {"Must be after dropStartTime."},
}
# Answers the built-in check accepts for valid data: a refusal by state, not by shape.
NOT_ABOUT_THE_DATA = {401, 403, 404, 409, 429}


@schemathesis.check
def positive_data_refused_only_for_unstatable_rules(ctx, response, case):
    allowed = UNSTATABLE.get(case.operation.label)
    meta = case.meta
    if allowed is None or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in NOT_ABOUT_THE_DATA:
        return None  # 5xx: not_a_server_error's business
    if status != 400:
        raise AssertionError(f"Schema-valid data refused with {status}: {response.text[:300]}")
    body = response.json()
    messages = {m for ms in body.get("fields", {}).values() for m in ms} or {body["error"]}
    if not messages <= allowed:
        raise AssertionError(f"Schema-valid data refused for: {sorted(messages - allowed)}")
    return None
