"""Prometheus metrics: what they are, the middleware that times requests, the scrape view.

Multiprocess-safe: with ``PROMETHEUS_MULTIPROC_DIR`` set (``make run``, production),
every process (gunicorn workers, daphne, Celery's pool processes) writes its values to
its own files in that directory, and ``/metrics`` on any gunicorn worker of the host
reads them all (prometheus_client's MultiProcessCollector). The directory must be
empty when the host's processes start; gunicorn's ``child_exit`` hook
(inventory_project/gunicorn_conf.py) and this module's exit hook drop a dead
process's live gauges. Without the variable (development, most tests) each process
keeps its values in memory and ``/metrics`` shows that process's alone.

Labels come from fixed sets (route names, exception codes, HTTP statuses), never
from a raw path or input, so the number of series stays bounded.

prometheus_client rather than django-prometheus: the latter instruments every
request with several metrics per middleware pass and wraps the database backend,
which would put its cursor in front of the prepared reserve statement
(inventory_project/db.py); neither gives the domain outcomes asked for here.
"""

import atexit
import logging
import os
import time
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone

from drf_spectacular.utils import extend_schema
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROC_DIR:
    # A missing directory would fail the first metric below and with it every import
    # of this module; create it (emptying it is the starter's job, at host start).
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    # This process's live gauges (open WebSockets) go when it exits; getpid() at exit
    # time, since a forked child inherits the hook.
    atexit.register(lambda: mark_process_dead(os.getpid()))

# The latency targets (docs/benchmarks.md: p99 100 ms, 150 ms, 1 s) are bucket edges.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "inventory_http_request_duration_seconds",
    "Time from the first middleware to the response, by route name and status.",
    ["route", "status"],
    buckets=LATENCY_BUCKETS,
)
STOCK_ACTIONS = Counter(
    "inventory_stock_actions",
    "Reserve, purchase and cancel requests by result: the success, the domain "
    "refusal's code (sold_out, already_reserved, ...), throttled, unavailable, ...",
    ["action", "result"],
)
SWEEP_RUNS = Counter("inventory_sweep_runs", "Expiry sweeps run to the end.")
SWEEP_UNITS_RETURNED = Counter(
    "inventory_sweep_units_returned", "Units the expiry sweep gave back from lapsed holds."
)
SWEEP_SECONDS = Histogram(
    "inventory_sweep_duration_seconds",
    "How long one expiry sweep took.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SWEEP_LAST_RUN = Gauge(
    "inventory_sweep_last_run_timestamp_seconds",
    "When an expiry sweep last finished (Unix time).",
    multiprocess_mode="max",
)
LIVE_EVENTS = Counter(
    "inventory_live_events",
    "Live events by kind (stock, purchase) and outcome: sent (messages to the channel "
    "layer, each standing for one change); coalesced (stock changes that went out "
    "inside another change's message, a newer version of the drop); failed (a send or "
    "an offer to the stock throttle that Redis did not take; stock is offered again).",
    ["kind", "outcome"],
)
WEBSOCKETS_OPEN = Gauge(
    "inventory_websockets_open",
    "Open WebSockets by stream (one drop, or all drops); per daphne process (pid).",
    ["stream"],
    # One series per live process; a process that exits takes its series with it.
    multiprocess_mode="liveall",
)

# The API routes whose outcomes are counted, and what their success is called.
ACTIONS = {
    "api:reserve": ("reserve", "created"),
    "api:purchase": ("purchase", "purchased"),
    "api:cancel": ("cancel", "cancelled"),
}
# An answer without a noted refusal (not raised through the API's exception handler).
_RESULT_BY_STATUS = {429: "throttled", 503: "unavailable"}
_UNMATCHED = "unmatched"  # no URL pattern: 404s, static files, requests refused earlier
# reservations.idempotency.REPLAYED_HEADER, not imported (that module imports api_errors,
# which imports this one): a retry answered with the first answer counts as a replay.
_REPLAYED_HEADER = "Idempotent-Replayed"


class MetricsMiddleware:
    """Times every request and counts the outcomes of reserve, purchase and cancel.

    Cost per request: one histogram observation (two writes) and, on the three stock
    routes, one counter increment: 1.8 us in memory, 3.6 us with the multiprocess
    files, against a reserve's ~3.5 ms (docs/operations.md, "Metrics and what to
    alert on").
    """

    def __init__(self, get_response):
        self.get_response = get_response
        # The labelled children, so a request skips prometheus_client's label checks.
        self._latency = {}
        self._actions = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        route = match.view_name if match is not None else _UNMATCHED
        status = response.status_code
        key = (route, status)
        child = self._latency.get(key)
        if child is None:
            child = self._latency[key] = REQUEST_SECONDS.labels(route, str(status))
        child.observe(elapsed)
        action = ACTIONS.get(route)
        if action is not None:
            if response.has_header(_REPLAYED_HEADER):
                result = "replayed"
            else:
                result = getattr(request, "stock_result", None) or _result(action[1], status)
            counter = self._actions.get((route, result))
            if counter is None:
                counter = self._actions[(route, result)] = STOCK_ACTIONS.labels(action[0], result)
            counter.inc()
        return response


def _result(success: str, status: int) -> str:
    if status < 300:
        return success
    if status in _RESULT_BY_STATUS:
        return _RESULT_BY_STATUS[status]
    return "server_error" if status >= 500 else f"http_{status}"


def note_refusal(request, code: str) -> None:
    """Record why the API refused ``request`` (a DRF Request), for STOCK_ACTIONS.

    Called by the API's exception handler with the error's code: a domain error's
    (``sold_out``, ``hold_expired``, ...) or DRF's (``throttled``, ``not_authenticated``,
    ``invalid``). A request answered without one is labelled by its status (a fault's
    503 is ``unavailable``).
    """
    http_request = getattr(request, "_request", None)
    if http_request is not None:
        http_request.stock_result = code


class LapsedHolds:
    """Read at scrape time from PostgreSQL: ACTIVE holds already past expires_at, and
    how long ago the oldest of them lapsed. Unlike anything the sweep records, these
    keep growing when beat or every worker is down (docs/operations.md)."""

    def collect(self):
        from reservations.models import Reservation

        now = timezone.now()
        try:
            with transaction.atomic():
                # A scrape must not hang on a stuck database. The answer is one range
                # of the partial index of ACTIVE holds by expires_at.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = 2000")
                lapsed = Reservation.objects.filter(
                    status=Reservation.Status.ACTIVE, expires_at__lte=now
                ).aggregate(count=Count("pk"), oldest=Min("expires_at"))
        except DatabaseError as exc:
            logger.warning("metrics: lapsed holds not read: %s", str(exc).strip())
            return
        oldest = lapsed["oldest"]
        yield GaugeMetricFamily(
            "inventory_holds_lapsed",
            "ACTIVE holds already past expires_at, whose units are not yet back.",
            value=lapsed["count"],
        )
        yield GaugeMetricFamily(
            "inventory_holds_lapsed_oldest_seconds",
            "How long ago the oldest ACTIVE hold past expires_at lapsed (0: none).",
            value=(now - oldest) / timedelta(seconds=1) if oldest else 0.0,
        )


class _Scrape:
    """Every process's metrics (or this process's, without the directory) and the
    lapsed holds, as one collector of a registry made for each scrape."""

    def collect(self):
        if MULTIPROC_DIR:
            yield from MultiProcessCollector(None, path=MULTIPROC_DIR).collect()
        else:
            yield from REGISTRY.collect()
        yield from LapsedHolds().collect()


class _IgnoreAccept(BaseContentNegotiation):
    """Errors render as JSON whatever Prometheus' Accept header asks for, never a 406;
    the metrics themselves are encoded from the header below."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class MetricsView(APIView):
    """Prometheus scrape endpoint, for staff only (token or session)."""

    permission_classes = [IsAdminUser]
    content_negotiation_class = _IgnoreAccept

    @extend_schema(exclude=True)
    def get(self, request):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape())
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return HttpResponse(encode(registry), content_type=content_type)
