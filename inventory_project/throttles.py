"""Request throttles: per buyer on the buying endpoints, per address on sign-up, log-in
and anonymous requests, and failed log-ins per username and per address.

Counted in the cache's Redis (``CACHES["default"]``), through DRF's throttle classes.
A process notes a client's hits and adds them in Redis a batch at a time (a tenth of
the rate: _unsent_hits), each batch in one round trip: a Lua script adds the hits and
reads the window's time left (a fixed window, from its first hit), where DRF's
``SimpleRateThrottle`` gets and sets a pickled list of timestamps per request (two
round trips; docs/benchmarks.md compares them). A fixed window lets a client spend up
to twice its rate across a window's edge; that is still far from the hammering these
stop.

They fail open: when Redis errs or does not answer within the cache's socket timeout,
the request goes through and this process leaves Redis alone for
``THROTTLE_FAIL_OPEN_SECONDS``, so a frozen Redis costs one request per process and
pause that timeout, not every request, and the log gets a line per process and pause
(and one when Redis is back), not a traceback per request. Sales never wait for Redis.

Rates are ``DEFAULT_THROTTLE_RATES`` (settings, from the environment), read when a
request is checked: "<count>/<period>", period s, m, h or d, optionally multiplied
("10/15m"). A scope without a rate (None) is not throttled.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
import unicodedata
import weakref

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from redis import Redis
from redis.exceptions import NoScriptError, RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)

# KEYS: counters; ARGV[1]: what to add (0 only reads, creating nothing); ARGV[1 + i]:
# KEYS[i]'s window in ms. Returns count and milliseconds left per key. A counter gets
# its window when it has none, so it can never outlive it whatever happened before.
_COUNT_LUA = """
local add, out = tonumber(ARGV[1]), {}
for i, key in ipairs(KEYS) do
  local n
  if add == 0 then
    n = tonumber(redis.call('GET', key) or 0)
  else
    n = redis.call('INCRBY', key, add)
  end
  local left = redis.call('PTTL', key)
  if left < 0 and add ~= 0 then
    left = tonumber(ARGV[i + 1])
    redis.call('PEXPIRE', key, left)
  end
  out[#out + 1] = n
  out[#out + 1] = left
end
return out
"""
_COUNT_SHA = hashlib.sha1(_COUNT_LUA.encode()).hexdigest()
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"(\d+)/(\d*)([smhd])[a-z]*")

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # cache backend -> client
_redis_skipped_until = 0.0  # monotonic; this process leaves Redis alone until then
_redis_failing = False
_refused_until: dict[str, float] = {}  # cache key -> monotonic end of its refused window
_REFUSED_KEPT = 10_000  # beyond this many, lapsed entries are dropped
# cache key -> (monotonic end of this process's window, hits noted but not yet in Redis)
_unsent: dict[str, tuple[float, int]] = {}
_UNSENT_KEPT = 200_000  # beyond this many, lapsed entries are dropped
# The share of a rate a process may note before it adds the hits in Redis (_unsent_hits).
BATCH_SHARE = 0.1


def count(keys: list[str], windows_s: list[int], add: int) -> list[tuple[int, float]] | None:
    """Add ``add`` to each counter (made with its window if new); return each one's
    count and seconds left, or None when Redis is unavailable (fail open)."""
    global _redis_skipped_until, _redis_failing
    if time.monotonic() < _redis_skipped_until:
        return None
    cache = caches["default"]
    client = _client(cache)
    args = [cache.make_key(key) for key in keys] + [add] + [w * 1000 for w in windows_s]
    try:
        try:
            reply = client.evalsha(_COUNT_SHA, len(keys), *args)
        except NoScriptError:  # a Redis that restarted or was flushed
            reply = client.eval(_COUNT_LUA, len(keys), *args)
    except (RedisError, OSError) as error:
        pause = settings.THROTTLE_FAIL_OPEN_SECONDS
        _redis_skipped_until = time.monotonic() + pause
        _redis_failing = True
        logger.warning(
            "Throttles off for %ss: Redis unavailable (%s: %s)",
            pause,
            type(error).__name__,
            error,
        )
        return None
    if _redis_failing:
        _redis_failing = False
        logger.warning("Throttles back on: Redis answers again")
    return [(int(reply[i]), int(reply[i + 1]) / 1000) for i in range(0, len(reply), 2)]


def _unsent_hits(key: str, now: float, window_s: int, batch: int) -> int:
    """Hits of this client to add in Redis now: 0 while fewer than ``batch`` are noted in
    this process for the window, then all of them at once.

    So a client's requests cost a round trip only one in ``batch`` (BATCH_SHARE of the
    rate), and the one or two requests of most of a drop's buyers none at all: a round
    trip per request cost the hot drop a quarter of its throughput and the sold-out
    storm over a third (docs/benchmarks.md, "Throttles on the hot path"). What it costs
    the limit: a client may get up to ``batch - 1`` requests more per web process and
    window than the rate says; a low rate (log-in failures) has a batch of 1 and is
    exact.
    """
    if batch <= 1:
        return 1
    end, unsent = _unsent.get(key, (0.0, 0))
    if end <= now:
        if len(_unsent) >= _UNSENT_KEPT:
            for lapsed in [k for k, (until, _) in _unsent.items() if until <= now]:
                _unsent.pop(lapsed, None)
            if len(_unsent) >= _UNSENT_KEPT:
                return 1  # that many clients in one window: count each in Redis
        end, unsent = now + window_s, 0
    unsent += 1
    if unsent < batch:
        _unsent[key] = (end, unsent)
        return 0
    _unsent[key] = (end, 0)
    return unsent


def _remember_refusal(key: str, until: float, now: float) -> None:
    if len(_refused_until) >= _REFUSED_KEPT:
        for lapsed in [k for k, end in _refused_until.items() if end <= now]:
            _refused_until.pop(lapsed, None)
        if len(_refused_until) >= _REFUSED_KEPT:
            return  # that many clients refused at once: Redis still answers them
    _refused_until[key] = until


def _client(cache) -> Redis:
    """The cache's own Redis client (its pool, socket timeouts), kept: Django's cache API
    has no add-and-expire in one call, and get_client() builds a new client each time,
    which costs about as much as the round trip itself (docs/benchmarks.md)."""
    backend = cache._cache
    client = _clients.get(backend)
    if client is None:
        client = _clients[backend] = backend.get_client(write=True)
    return client


def parse_rate(rate: str | None) -> tuple[int | None, int | None]:
    """("10/15m") -> (10, 900): DRF's format, plus an optional multiple of the period."""
    if not rate:
        return None, None
    match = _RATE.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"Bad throttle rate {rate!r}: expected e.g. 60/min or 10/15m.")
    number, multiple, period = match.groups()
    return int(number), int(multiple or 1) * _PERIODS[period]


def rate_for(scope: str) -> str | None:
    # api_settings, not the class attribute DRF binds at import: rates follow settings.
    rates = api_settings.DEFAULT_THROTTLE_RATES
    if scope not in rates:
        raise ImproperlyConfigured(f"No throttle rate set for scope {scope!r}.")
    return rates[scope]


def client_address(request) -> str:
    """The client's address as DRF finds it (NUM_PROXIES); IPv6 by its /64, which one
    subscriber holds whole."""
    ident = BaseThrottle().get_ident(request) or ""
    if ":" in ident:
        try:
            return str(ipaddress.ip_network(f"{ident}/64", strict=False).network_address)
        except ValueError:
            pass
    return ident


class RateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's interface (scope, get_cache_key, wait) on the counter above."""

    def __init__(self):
        # The rate is resolved per request (get_scope may depend on the view's action).
        self.wait_s: float | None = None

    def get_scope(self, view) -> str | None:
        return self.scope

    def get_rate(self):
        return rate_for(self.scope)

    def parse_rate(self, rate):
        return parse_rate(rate)

    def allow_request(self, request, view) -> bool:
        self.scope = self.get_scope(view)
        if self.scope is None:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        # In a fixed window a refused client stays refused until the window ends, so
        # this process answers its next requests without Redis: a hammering client's
        # 429s cost no round trip (docs/benchmarks.md).
        memo_key = caches["default"].make_key(self.key)
        now = time.monotonic()
        refused_until = _refused_until.get(memo_key)
        if refused_until is not None:
            if now < refused_until:
                self.wait_s = refused_until - now
                return False
            _refused_until.pop(memo_key, None)
        batch = max(1, int(self.num_requests * BATCH_SHARE))
        add = _unsent_hits(memo_key, now, self.duration, batch)
        if add == 0:
            return True
        counted = count([self.key], [self.duration], add)
        if counted is None:
            return True
        [(hits, left)] = counted
        if hits <= self.num_requests:
            return True
        self.wait_s = left
        _remember_refusal(memo_key, now + left, now)
        return False

    def wait(self) -> float | None:
        return self.wait_s


class AnonRateThrottle(RateThrottle):
    """Anonymous requests, per address (the API's default throttle)."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return f"throttle:{self.scope}:{client_address(request)}"


class AddressRateThrottle(RateThrottle):
    """Every request of the view, per address, signed in or not."""

    def get_cache_key(self, request, view):
        return f"throttle:{self.scope}:{client_address(request)}"


class SignUpRateThrottle(AddressRateThrottle):
    scope = "signup"


class LoginRateThrottle(AddressRateThrottle):
    scope = "login"


class BuyerRateThrottle(RateThrottle):
    """Reserve, purchase and cancel, per buyer (the view's action is the scope).

    Keyed by the user, never the address: buyers behind one address (a campus, a
    carrier's NAT, a load test) must not throttle each other.
    """

    scopes = frozenset({"reserve", "purchase", "cancel"})

    def get_scope(self, view) -> str | None:
        action = getattr(view, "action", None)
        return action if action in self.scopes else None

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None  # refused by the permission check before this runs
        return f"throttle:{self.scope}:{request.user.pk}"


# Failed log-ins ------------------------------------------------------------------------


def _login_failure_counters(
    request, username: str | None
) -> tuple[list[str], list[int], list[int]]:
    """Keys, windows and limits of the failure counters of this address and username."""
    keys, windows, limits = [], [], []
    scopes = [("login_failures_ip", client_address(request))]
    if username:
        # One counter for every spelling that could name the same account.
        folded = unicodedata.normalize("NFKC", username).casefold()
        # surrogatepass: JSON can carry lone surrogates ("\ud800"); they must not be a 500.
        digest = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()
        scopes.append(("login_failures_username", digest))
    for scope, ident in scopes:
        limit, window = parse_rate(rate_for(scope))
        if limit is None:
            continue
        keys.append(f"throttle:{scope}:{ident}")
        windows.append(window)
        limits.append(limit)
    return keys, windows, limits


def login_refused_for(request, username: str | None, *, failed: bool = False) -> float | None:
    """Seconds to wait before another log-in from this address or for this username may
    be tried, or None. With failed=True, first count a failed attempt for both."""
    keys, windows, limits = _login_failure_counters(request, username)
    if not keys:
        return None
    counted = count(keys, windows, 1 if failed else 0)
    if counted is None:
        return None
    waits = [
        left if left > 0 else window  # a limit of 0 refuses before any failure
        for (hits, left), limit, window in zip(counted, limits, windows, strict=True)
        if hits >= limit
    ]
    return max(waits) if waits else None


def record_login_failure(request, username: str | None) -> None:
    login_refused_for(request, username, failed=True)


def submitted_username(data) -> str | None:
    value = data.get("username") if hasattr(data, "get") else None
    return value if isinstance(value, str) and value else None


class LoginFailureThrottle(BaseThrottle):
    """Refuses a log-in while its address or its username has had too many failures.

    Counts nothing itself: the log-in views call record_login_failure() when the
    credentials are refused. A locked username refuses the right password too;
    otherwise guessing would go on and merely not be told when it hit.
    """

    def __init__(self):
        self.wait_s: float | None = None

    def allow_request(self, request, view) -> bool:
        data = request.data if hasattr(request, "data") else request.POST
        self.wait_s = login_refused_for(request, submitted_username(data))
        return self.wait_s is None

    def wait(self) -> float | None:
        return self.wait_s


def refusal(request, view, throttle_classes) -> int | None:
    """DRF's check_throttles for a plain Django view: the Retry-After in seconds when
    any of the throttles refuses the request, else None."""
    waits = []
    for throttle_class in throttle_classes:
        throttle = throttle_class()
        if not throttle.allow_request(request, view):
            waits.append(throttle.wait() or 0)
    return math.ceil(max(waits)) if waits else None
