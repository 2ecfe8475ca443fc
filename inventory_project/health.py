"""Liveness and readiness: what a process supervisor and a load balancer ask.

``/api/health/live`` answers from the process alone. ``/api/health`` asks whether this
server can sell: PostgreSQL must answer within HEALTH_DATABASE_TIMEOUT_SECONDS, or the
answer is 503. Redis carries live events, the throttles and the sweep's schedule, not
sales, so Redis away and a stale expiry sweep make the answer "degraded", still 200:
a load balancer must not pull servers that can sell. README, "Health", documents the
body.

Nothing here can hang a request. PostgreSQL is asked on a connection of health's own,
driven through libpq's non-blocking calls against one deadline for connecting and
querying: a frozen server (the kernel accepts the connection, the process never
answers) never fires its own statement_timeout, and libpq's connect_timeout covers
only connecting, in whole seconds of at least 2. Django's connection of the request is
never used, so a stuck or broken health connection cannot reach other requests.
"""

import functools
import logging
import selectors
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

import psycopg
import redis
from drf_spectacular.utils import OpenApiResponse, extend_schema
from psycopg import pq
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory_project.unavailable import RETRY_AFTER_SECONDS
from reservations.models import SweepRun
from reservations.services.expiry import EXPIRY_JOB

logger = logging.getLogger(__name__)

# The sweep is stale once it missed this many intervals in a row.
STALE_AFTER_SWEEPS = 3
# A probe's thread is given this much past its own deadline to report it gave up.
_REPORT_SLACK_SECONDS = 0.2
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_LIBPQ_KEYWORDS = frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


class HealthView(APIView):
    """Answers without authentication, throttles, sessions or templates, none of which
    may depend on the servers being checked (the browsable renderer reads the session)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    renderer_classes = [JSONRenderer]


class LivenessView(HealthView):
    """200 while the process answers HTTP; asks neither PostgreSQL nor Redis."""

    @extend_schema(responses={200: OpenApiResponse(description='{"status": "OK"}')})
    def get(self, request):
        return Response({"status": "OK"})


class ReadinessView(HealthView):
    """200 when this server can sell (PostgreSQL answers), 503 when it cannot."""

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Can sell; status OK or degraded, per check."),
            503: OpenApiResponse(description="PostgreSQL is unavailable or too slow to answer."),
        }
    )
    def get(self, request):
        flight = _database_probe.start(settings.HEALTH_DATABASE_TIMEOUT_SECONDS)
        # Redis is asked while the probe's thread waits for PostgreSQL.
        checks = {"redis": {"state": _redis_state()}}
        database = flight.outcome(settings.HEALTH_DATABASE_TIMEOUT_SECONDS)
        checks["postgresql"] = {"state": database.state}
        checks["expirySweep"] = _sweep_check(database)
        if database.state != "ok":
            seconds = f"{settings.HEALTH_DATABASE_TIMEOUT_SECONDS:g}"
            error = (
                f"PostgreSQL did not answer within {seconds} s."
                if database.state == "timeout"
                else "PostgreSQL is unavailable."
            )
            response = Response(
                {"error": error, "code": "unavailable", "status": "unavailable", "checks": checks},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            # The probe logged the failure once for every request that shares it;
            # Django's request logger would add a line per request.
            response._has_been_logged = True
            return response
        degraded = checks["redis"]["state"] != "ok" or checks["expirySweep"]["state"] != "ok"
        return Response({"status": "degraded" if degraded else "OK", "checks": checks})


def _sweep_check(database: "_DatabaseOutcome") -> dict:
    stale_after = STALE_AFTER_SWEEPS * settings.EXPIRY_SWEEP_SECONDS
    check = {"state": "unknown", "lastRunAt": None, "staleAfterSeconds": stale_after}
    if database.state != "ok":
        return check
    last_run = database.sweep_finished_at
    if last_run is None:
        check["state"] = "never_run"
        return check
    check["lastRunAt"] = last_run
    fresh = timezone.now() - last_run <= timedelta(seconds=stale_after)
    check["state"] = "ok" if fresh else "stale"
    return check


# Redis


def _redis_state() -> str:
    timeout = settings.HEALTH_REDIS_TIMEOUT_SECONDS
    try:
        _redis(settings.REDIS_URL, timeout).ping()
    except redis.TimeoutError as exc:
        logger.warning("health: Redis did not answer within %g s: %s", timeout, exc)
        return "timeout"
    except redis.RedisError as exc:
        logger.warning("health: Redis unavailable: %s", exc)
        return "unavailable"
    return "ok"


@functools.cache
def _redis(url: str, timeout: float) -> redis.Redis:
    """One client (and connection pool) per URL for the life of the process.

    One attempt, bounded by the timeout, is the answer: retries are ruled out here
    rather than left to redis-py's default policy, which has changed between versions.
    """
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


# PostgreSQL


@dataclass(frozen=True)
class _DatabaseOutcome:
    state: str  # "ok", "timeout" or "unavailable"
    sweep_finished_at: datetime | None = None


@dataclass
class _Flight:
    """One probe of PostgreSQL; every request that arrives while it runs shares it."""

    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    result: _DatabaseOutcome = _DatabaseOutcome("timeout")

    def outcome(self, timeout: float) -> _DatabaseOutcome:
        # A flight still running past its deadline is stuck (in name resolution, the
        # one step libpq cannot do without blocking): the wait below is then zero.
        wait_until = min(time.monotonic() + timeout, self.deadline + _REPORT_SLACK_SECONDS)
        if self.done.wait(max(0.0, wait_until - time.monotonic())):
            return self.result
        return _DatabaseOutcome("timeout")


class _DatabaseProbe:
    """Reads the expiry sweep's last run from PostgreSQL on a connection of its own.

    At most one probe runs per process, on a thread of its own, so a server that
    never answers costs one thread and one socket however often health is asked.
    The connection is kept between probes (a new one costs a server process and
    ~6.5 ms, and may be refused when max_connections is used up though this server's
    own connections work) and dropped after any failure.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _flight; held for microseconds
        self._flight: _Flight | None = None
        # The kept connection and the conninfo it was made with; touched only by the
        # flight's thread, or by close() once no flight runs.
        self._pgconn: pq.PGconn | None = None
        self._pgconn_conninfo = ""

    def start(self, timeout: float) -> _Flight:
        with self._lock:
            flight = self._flight
            if flight is None or flight.done.is_set():
                flight = self._flight = _Flight(deadline=time.monotonic() + timeout)
                threading.Thread(
                    target=self._fly,
                    args=(flight, _conninfo()),
                    name="health-postgresql",
                    daemon=True,
                ).start()
            return flight

    def close(self) -> None:
        """Close the kept connection (tests do, before their database is dropped)."""
        with self._lock:
            flight = self._flight
            if flight is not None:
                until = flight.deadline + _REPORT_SLACK_SECONDS
                flight.done.wait(max(0.0, until - time.monotonic()))
            if self._pgconn is not None:
                self._pgconn.finish()
                self._pgconn = None

    def _fly(self, flight: _Flight, conninfo: str) -> None:
        try:
            flight.result = _DatabaseOutcome("ok", self._ask(conninfo, flight.deadline))
        except TimeoutError:
            logger.warning("health: PostgreSQL did not answer in time")
            flight.result = _DatabaseOutcome("timeout")
        except Exception as exc:  # any failure means it cannot sell
            logger.warning("health: PostgreSQL unavailable: %s", _one_line(exc))
            flight.result = _DatabaseOutcome("unavailable")
        finally:
            flight.done.set()

    def _ask(self, conninfo: str, deadline: float) -> datetime | None:
        pgconn, self._pgconn = self._pgconn, None
        if pgconn is not None and self._pgconn_conninfo != conninfo:
            pgconn.finish()  # the settings changed (tests point health elsewhere)
            pgconn = None
        if pgconn is not None:
            try:
                finished_at = _read_sweep_run(pgconn, deadline)
            except TimeoutError:
                pgconn.finish()
                raise
            except Exception:  # closed since the last probe: connect anew
                pgconn.finish()
            else:
                self._pgconn = pgconn
                return finished_at
        pgconn = _connect(conninfo, deadline)
        try:
            finished_at = _read_sweep_run(pgconn, deadline)
        except BaseException:
            pgconn.finish()
            raise
        self._pgconn, self._pgconn_conninfo = pgconn, conninfo
        return finished_at


_database_probe = _DatabaseProbe()


def _conninfo() -> str:
    """The default database's connection string, as Django would connect."""
    params = connections["default"].get_connection_params()
    libpq_params = {key: value for key, value in params.items() if key in _LIBPQ_KEYWORDS}
    libpq_params.setdefault("application_name", "inventory-health")
    return psycopg.conninfo.make_conninfo("", **libpq_params)


def _connect(conninfo: str, deadline: float) -> pq.PGconn:
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        # libpq's protocol: poll as if the last poll had asked to write.
        status = pq.PollingStatus.WRITING
        while status != pq.PollingStatus.OK:
            if status == pq.PollingStatus.FAILED:
                raise psycopg.OperationalError(_message(pgconn.error_message))
            # The socket can change between polls (another address, another host).
            ready_for = _WRITE if status == pq.PollingStatus.WRITING else _READ
            _wait(pgconn.socket, ready_for, deadline)
            status = pgconn.connect_poll()
        pgconn.nonblocking = 1
        return pgconn
    except BaseException:
        pgconn.finish()
        raise


def _read_sweep_run(pgconn: pq.PGconn, deadline: float) -> datetime | None:
    """When the expiry sweep last finished (as reservations.selectors.last_sweep_run)."""
    pgconn.send_query_params(_SWEEP_RUN_SQL.encode(), [EXPIRY_JOB.encode()])
    while pgconn.flush():
        _wait(pgconn.socket, _READ | _WRITE, deadline)  # libpq: either, then both calls
        pgconn.consume_input()
    results = []
    while True:
        while pgconn.is_busy():
            _wait(pgconn.socket, _READ, deadline)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        results.append(result)
    if not results or results[0].status != pq.ExecStatus.TUPLES_OK:
        detail = results[0].error_message if results else pgconn.error_message
        raise psycopg.OperationalError(_message(detail))
    value = results[0].get_value(0, 0) if results[0].ntuples else None
    return None if value is None else datetime.fromtimestamp(float(value), tz=UTC)


_SWEEP_RUN_SQL = "SELECT extract(epoch FROM {finished_at}) FROM {table} WHERE {job} = $1".format(
    table=SweepRun._meta.db_table,
    finished_at=SweepRun._meta.get_field("finished_at").column,
    job=SweepRun._meta.get_field("job").column,
)


def _wait(fd: int, events: int, deadline: float) -> None:
    """Wait until ``fd`` is ready for ``events``, or raise TimeoutError at ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    with selectors.DefaultSelector() as selector:
        selector.register(fd, events)
        if not selector.select(remaining):
            raise TimeoutError


def _message(raw: bytes) -> str:
    return _one_line(raw.decode(errors="replace")) or "no detail from libpq"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
