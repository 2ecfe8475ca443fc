"""Every API error is JSON ``{"error": "...", "code": "..."}`` with a 4xx status (5xx
only for faults).

``error`` is a sentence for people; ``code`` is stable, for programs (the page script
branches on it): a domain error's own code (inventory_project.errors.ApplicationError,
e.g. ``sold_out``), DRF's for what DRF refuses (``invalid``, ``not_authenticated``,
``throttled``, ...), or ``not_found``, ``bad_request``, ``request_too_large``,
``server_error``. The HTTP status of a domain code is decided here, in
STATUS_BY_CODE, and nowhere else.
"""

import logging

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory_project.errors import ApplicationError
from inventory_project.metrics import note_refusal

logger = logging.getLogger(__name__)

# The status of each domain error code (reservations/exceptions.py); a test checks that
# every domain error's code is here.
STATUS_BY_CODE = {
    # Bad input that only the stock rules can judge: a size the drop does not have,
    # none named where the drop has several, a run of sizes that does not add up.
    "size_required": 400,
    "size_not_found": 400,
    "invalid_size_run": 400,
    "drop_not_found": 404,
    "reservation_not_found": 404,
    "not_open": 409,
    "sold_out": 409,
    "already_reserved": 409,
    "purchase_limit_reached": 409,
    "not_active": 409,
    "stock_below_committed": 409,
    "size_in_use": 409,
    "stock_conflict": 409,
    # Gone: the hold existed and lapsed; its unit is back on sale.
    "hold_expired": 410,
}
# A domain refusal is a conflict with the current state unless listed otherwise.
DEFAULT_DOMAIN_STATUS = 409

TOO_LARGE = "The request body is too large."


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        code = exc.code
        response = Response(
            {"error": exc.message, "code": code},
            status=STATUS_BY_CODE.get(code, DEFAULT_DOMAIN_STATUS),
        )
    elif isinstance(exc, RequestDataTooBig):
        # A form body past DATA_UPLOAD_MAX_MEMORY_SIZE (a session's CSRF check reads
        # it). Answered here: Django would log it as a security error, traceback and
        # all, then answer 400.
        code = "request_too_large"
        response = Response({"error": TOO_LARGE, "code": code}, status=413)
    else:
        response = drf_exception_handler(exc, context)
        if response is None:
            return None  # unexpected: Django logs it and handler500 answers
        code = _drf_code(exc)
        body = {"error": _first_message(response.data), "code": code}
        if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
            body["fields"] = {field: _messages(value) for field, value in response.data.items()}
        response.data = body
    note_refusal(context["request"], code)  # the outcome metric's result
    return response


def _drf_code(exc: Exception) -> str:
    """DRF's code for what it refuses: the detail's own when it has one (NotFound's
    ``not_found``), else the exception's default (ValidationError's ``invalid``)."""
    if isinstance(exc, Http404):
        return exceptions.NotFound.default_code
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied.default_code
    code = getattr(exc.detail, "code", None) if isinstance(exc, exceptions.APIException) else None
    return code if isinstance(code, str) else getattr(exc, "default_code", "invalid")


def _messages(errors) -> list[str]:
    """A field's messages as one flat list of sentences, as the schema states them. A
    nested field's message starts with where it is: DRF keys a list's refused items by
    index, so "1: stock: Ensure ..." is about the second size of a drop's ``sizes``."""
    if isinstance(errors, dict):
        return [
            message if key == "non_field_errors" else f"{key}: {message}"
            for key, value in errors.items()
            for message in _messages(value)
        ]
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item)]
    return [str(errors)]


def _first_message(data) -> str:
    """A readable sentence from DRF's error structure, field name first."""
    if isinstance(data, dict):
        if "detail" in data:
            return str(data["detail"])
        for field, value in data.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
        return "Invalid request."
    if isinstance(data, list):
        return _first_message(data[0]) if data else "Invalid request."
    return str(data)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Not found.", "code": "not_found"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Internal server error.", "code": "server_error"}, status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"error": TOO_LARGE, "code": "request_too_large"}, status=413)
        return JsonResponse({"error": "Bad request.", "code": "bad_request"}, status=400)
    from django.views.defaults import bad_request as html_bad_request

    return html_bad_request(request, exception)


class DebugErrorPagesMiddleware:
    """With DEBUG on (``make run``), a 404 is the shop's own page and an API 400 or 404
    is JSON, as with DEBUG off.

    Django answers those with its debug pages whenever DEBUG is on, without asking
    handler404/handler400 (``response_for_exception``), and no setting changes that:
    so a demo visitor saw a URL-pattern dump for a mistyped page, and an API client an
    HTML page where the README promises JSON. This swaps such an answer for the
    handler's. A 500 keeps Django's debug page with its traceback. DRF's own answers
    (a Response, JSON or the browsable API's HTML) are left as they are.

    Innermost middleware, so its answer still passes through the others (security
    headers, CommonMiddleware's APPEND_SLASH redirect of a 404). Not loaded with DEBUG
    off, so production pays nothing; with DEBUG on it costs one status comparison per
    answer.
    """

    def __init__(self, get_response):
        if not settings.DEBUG:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        status = response.status_code
        if status not in (400, 404) or isinstance(response, Response):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if status == 404:
            return not_found(request)
        if request.path.startswith("/api/"):
            return bad_request(request)
        return response
