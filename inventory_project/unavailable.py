"""A database that is down, frozen or saturated answers 503 with Retry-After, not 500.

PostgreSQL refusing connections, a connect timeout, a statement or lock timeout: the
request could not be served now and may be retried, so the answer says so (JSON under
/api/, a short page elsewhere), and the log gets one line per failure, not a traceback
per request. Django replaces the broken connection at the end of the request, so the
server recovers on its own when the database does.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        reason = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
        logger.warning(
            "Database unavailable: %s %s: %s: %s",
            request.method,
            request.path,
            type(exception.__cause__ or exception).__name__,
            reason[:200],
        )
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {
                    "error": "The shop is busy or briefly unavailable; try again shortly.",
                    "code": "unavailable",
                },
                status=503,
            )
        else:
            response = HttpResponse(loader.render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        # Logged above in one line; Django's request logger would add a second.
        response._has_been_logged = True
        return response
