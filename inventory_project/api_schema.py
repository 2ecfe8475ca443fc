"""The OpenAPI schema (/api/schema/) states what the API checks and every answer it gives.

drf-spectacular derives most of it from the serializers; this AutoSchema adds what DRF
enforces but drf-spectacular leaves out, so that data the schema allows is accepted
(the schemathesis run in inventory_project/tests/test_schemathesis.py holds it to that).
"""

from django.core.validators import ProhibitNullCharactersValidator

from drf_spectacular import openapi
from drf_spectacular.plumbing import force_instance, is_list_serializer
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

from inventory_project.api_errors import STATUS_BY_CODE

# DRF refuses NUL in every CharField (PostgreSQL cannot store it) and, unless
# allow_blank, a value that is empty once trimmed.
NO_NUL = r"^[^\x00]*$"
NO_NUL_NOT_BLANK = r"^[^\x00]+$"
NO_NUL_NOT_BLANK_TRIMMED = r"^[^\x00]*[^\x00\s][^\x00]*$"


class ErrorSerializer(serializers.Serializer):
    """Every error answer of the API (inventory_project.api_errors)."""

    error = serializers.CharField(help_text="A readable sentence; a field's name comes first.")
    code = serializers.CharField(
        help_text="Stable, for programs to branch on (the sentence may change): a refusal "
        f"of the stock rules ({', '.join(f'`{code}`' for code in STATUS_BY_CODE)}); one "
        "of DRF's (`invalid`, `parse_error`, `not_authenticated`, `authentication_failed`, "
        "`permission_denied`, `not_found`, `unsupported_media_type`, `throttled`, ...); "
        "`request_too_large` or `unavailable`."
    )
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="400 only: the messages of each refused field.",
    )


ERRORS = {
    400: "Invalid input: the body, a parameter or the fields named in `fields`.",
    401: "No credentials, or an unknown token.",
    403: "Authenticated but not allowed (staff only, acting for another user, or no CSRF "
    "token with session authentication).",
    404: "No such object.",
    415: "The body's Content-Type is not one the operation accepts.",
    429: "Too many requests; retry after the `Retry-After` header's seconds.",
    503: "The database is down or too slow to answer; retry after the `Retry-After` "
    "header's seconds (inventory_project.unavailable).",
}


def domain_error(description: str) -> OpenApiResponse:
    """A refusal by the stock rules (reservations.exceptions), e.g. 409 sold out."""
    return OpenApiResponse(ErrorSerializer, description=description)


# OpenAPI links: which answer feeds which operation's parameter. They tell clients (and
# schemathesis' stateful phase) that a created drop can be reserved, a hold bought.
LINKS = {
    ("drops_create", "201"): {
        "GetDrop": ("drops_retrieve", {"id": "$response.body#/drop/id"}),
        "ReserveDrop": ("reserve_create", {"drop_id": "$response.body#/drop/id"}),
    },
    ("reserve_create", "201"): {
        "PurchaseHold": ("purchase_create", {"reservation_id": "$response.body#/reservation/id"}),
        "CancelHold": (
            "reservations_cancel_create",
            {"reservation_id": "$response.body#/reservation/id"},
        ),
    },
}


class AutoSchema(openapi.AutoSchema):
    def get_auth(self):
        auths = super().get_auth()
        # No permission classes at all (DRF's ObtainAuthToken) lets anyone in, as AllowAny.
        if not self.view.get_permissions() and {} not in auths:
            auths.append({})
        return auths

    def _get_response_bodies(self, direction="response"):
        """The operation's own answers, then the errors DRF and the project give it."""
        responses = super()._get_response_bodies(direction)
        codes = []
        has_query = any(p["in"] == "query" for p in self._get_parameters())
        if self.method not in permissions.SAFE_METHODS or has_query:
            codes.append(400)
        if {} not in self.get_auth():
            codes += [401, 403]
        if "{" in self.path:
            codes.append(404)
        if self.method not in permissions.SAFE_METHODS:
            codes.append(415)
        if self.view.get_throttles():
            codes.append(429)
        codes.append(503)
        for code in codes:
            responses.setdefault(
                str(code),
                self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERRORS[code]), str(code)
                ),
            )
        # Answered by gunicorn (or the proxy) before Django sees the request: no JSON.
        responses.setdefault("414", {"description": "The request line is too long."})
        operation_id = self.get_operation_id()
        for code, response in responses.items():
            links = LINKS.get((operation_id, code), {})
            if links:
                response["links"] = {
                    name: {"operationId": target, "parameters": parameters}
                    for name, (target, parameters) in links.items()
                }
        return responses

    def _is_list_view(self, serializer=None):
        # A list action's answer is an array only when declared many=True: the ones
        # here that answer an object ({"users": [...]}) declare it with extend_schema.
        if (
            serializer is not None
            and getattr(self.view, "action", None) == "list"
            and not is_list_serializer(serializer)
        ):
            return False
        return super()._is_list_view(serializer)

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            for name, field in force_instance(serializer).fields.items():
                prop = schema["properties"].get(name)
                if prop is not None:
                    _state_text_rules(field, prop)
                    _state_decimal_rules(field, prop)
                    _state_list_rules(field, prop)
        return schema


def _state_text_rules(field, prop: dict) -> None:
    """A text field's NUL and blank rules as a pattern. A field with a pattern (or a
    format) of its own keeps it, and that one must exclude NUL and blanks too."""
    if (
        not isinstance(field, serializers.CharField)
        or prop.get("type") != "string"
        or {"pattern", "format", "enum", "$ref"} & prop.keys()
        or not any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators)
    ):
        return
    if field.allow_blank:
        prop["pattern"] = NO_NUL
    elif field.trim_whitespace:
        prop["pattern"] = NO_NUL_NOT_BLANK_TRIMMED
    else:
        prop["pattern"] = NO_NUL_NOT_BLANK


def _state_list_rules(field, prop: dict) -> None:
    """A list of objects' length limits (``Serializer(many=True, min_length=...)``),
    which drf-spectacular leaves out."""
    if not isinstance(field, serializers.ListSerializer) or prop.get("type") != "array":
        return
    if field.min_length is not None:
        prop["minItems"] = field.min_length
    elif not field.allow_empty:
        prop["minItems"] = 1
    if field.max_length is not None:
        prop["maxItems"] = field.max_length


def _state_decimal_rules(field, prop: dict) -> None:
    """A decimal sent as a string: drf-spectacular's pattern also allows "", "." and a
    sign that the field's min_value refuses; this one needs a digit and has no sign
    when negative numbers are refused."""
    if (
        not isinstance(field, serializers.DecimalField)
        or prop.get("type") != "string"
        or not field.max_whole_digits
        or not field.decimal_places
    ):
        return
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    whole, places = field.max_whole_digits, field.decimal_places
    prop["pattern"] = rf"^{sign}(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"
