"""Every API error is JSON ``{"error": "..."}`` with a 4xx status (5xx only for faults)."""

import logging

from django.http import JsonResponse

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory_project.metrics import note_refusal
from reservations.exceptions import StockError

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    note_refusal(context["request"], exc)  # the outcome metric's result (sold_out, ...)
    if isinstance(exc, StockError):
        return Response({"error": exc.message}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django logs it and handler500 answers
    body = {"error": _first_message(response.data)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        body["fields"] = response.data
    response.data = body
    return response


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


def refuse_foreign_user_id(request) -> None:
    """Identity comes from authentication; a body naming another user is refused."""
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    if "userId" not in data:
        return
    user_id = data["userId"]
    text = "" if isinstance(user_id, bool) or not isinstance(user_id, (int, str)) else str(user_id)
    # ASCII digits and short: int() refuses other Unicode digits ("²") and strings of
    # over 4300 digits, which would otherwise surface as a 500.
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise exceptions.ValidationError({"userId": ["Must be your own user id."]})
    if int(text) != request.user.pk:
        raise exceptions.PermissionDenied("You can only act for yourself.")


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Internal server error."}, status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Bad request."}, status=400)
    from django.views.defaults import bad_request as html_bad_request

    return html_bad_request(request, exception)
