"""Settings for the drop inventory, read from the environment (see README)."""

import re
import tempfile
from pathlib import Path
from urllib.parse import unquote

from django.core.exceptions import ImproperlyConfigured

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

# A development key is only acceptable while DEBUG is on; production must bring its own.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "drops",
    "reservations",
    "shop",
]

MIDDLEWARE = [
    # First, so a request's time includes every other middleware (inventory_project/metrics.py).
    "inventory_project.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Inside the others, so its 503 still passes through them (security headers).
    "inventory_project.unavailable.DatabaseUnavailableMiddleware",
    # DEBUG only (make run): the shop's 404 page and JSON API errors instead of Django's
    # debug pages; innermost for the same reason.
    "inventory_project.api_errors.DebugErrorPagesMiddleware",
]

ROOT_URLCONF = "inventory_project.urls"
WSGI_APPLICATION = "inventory_project.wsgi.application"
ASGI_APPLICATION = "inventory_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.live_settings",
            ],
        },
    },
]

# Database and Redis. The quick start (inventory_project.devservices) fills these in
# with embedded servers when they are unset.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test")
}
# A socket directory arrives percent-encoded in the URL's host (postgres://u@%2Fsock%2Fdir/db).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
# Keep connections open across requests: a new PostgreSQL connection costs ~6.5 ms here.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
# A health check is a SELECT 1 before the first query of every request: one round trip
# in five on the reserve path (docs/benchmarks.md). Without it a connection that broke
# between requests fails that one request, and Django replaces it at the request's end.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
# No wait on PostgreSQL is unbounded: a database that does not answer a new connection,
# a statement or a lock in time fails the request with a 503 and Retry-After
# (inventory_project.unavailable) instead of holding one of the few sync workers.
# The lock timeout is above the reserve p99 of the sell-out spike (docs/benchmarks.md)
# so a busy drop answers slowly rather than refuses. All are below gunicorn's worker
# timeout (inventory_project/gunicorn_conf.py), which alone bounds a statement already
# sent to a server frozen outright (SIGSTOP). Migrations on big tables may need
# DATABASE_STATEMENT_TIMEOUT_MS=0 (README, Production).
DATABASES["default"].setdefault("OPTIONS", {}).update(
    connect_timeout=env.int("DATABASE_CONNECT_TIMEOUT", default=2),
    options=" ".join(
        [
            f"-c statement_timeout={env.int('DATABASE_STATEMENT_TIMEOUT_MS', default=3000)}",
            f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=2000)}",
        ]
    ),
    # Django turns psycopg's prepared statements off (for transaction poolers, which
    # this deployment does not use), and psycopg then ignores even an explicit
    # prepare=True. With a threshold no statement reaches, only the hot path's
    # statements that ask for it (inventory_project.db) are prepared, once per
    # connection; the ORM's, bound client-side, are not (docs/benchmarks.md).
    prepare_threshold=2**31 - 1,
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="inventory"),
        # The throttles count here and fail open (inventory_project/throttles.py): a
        # short timeout bounds what a frozen or unreachable Redis costs a request.
        "OPTIONS": {
            "socket_connect_timeout": env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.1),
            "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.1),
        },
    }
}

# Pub/sub layer: one PUBLISH per group_send however many sockets watch (see README,
# "Live updates", for the measurements behind the choice).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="inventory"),
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Overridable so the test suite (and the servers it starts) can hash quickly.
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "drop-list"
LOGOUT_REDIRECT_URL = "drop-list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded product photos and their renditions (drops/media.py). Django serves them
# only with DEBUG on; in production the proxy does (docs/nginx.conf, location /media/).
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "inventory_project.storage.StaticFilesStorage"
        )
    },
}

# Throttles (inventory_project/throttles.py): "<count>/<period>", period s, m, h or d,
# optionally multiplied ("10/15m"); empty turns one off. Buying is counted per buyer,
# so buyers behind one address never throttle each other; the rest per address. The
# buying rates are far above what a person (or a phone retrying) sends, and far below
# what one token on many connections can.
THROTTLE_RATES = {
    scope: env.str(f"THROTTLE_{scope.upper()}_RATE", default=default) or None
    for scope, default in {
        "reserve": "60/min",
        "purchase": "30/min",
        "cancel": "30/min",
        "anon": "300/min",
        "signup": "30/hour",
        "login": "60/min",
        "login_failures_ip": "100/hour",
        "login_failures_username": "10/15min",
    }.items()
}
for _scope, _rate in THROTTLE_RATES.items():
    if _rate and not re.fullmatch(r"\d+/\d*[smhd][a-z]*", _rate):
        raise ImproperlyConfigured(f"THROTTLE_{_scope.upper()}_RATE: expected e.g. 60/min, 10/15m.")
# After a Redis error the throttles let everything through this long, then try again.
THROTTLE_FAIL_OPEN_SECONDS = env.float("THROTTLE_FAIL_OPEN_SECONDS", default=5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inventory_project.api_input.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["inventory_project.api_input.JSONParser"],
    "EXCEPTION_HANDLER": "inventory_project.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "inventory_project.api_schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["inventory_project.throttles.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    # Proxies in front whose X-Forwarded-For entries are trusted, to find a client's
    # address. Production sits behind one (README, docs/nginx.conf); without one, 0, or
    # a client could pick its own address by sending the header.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0 if DEBUG else 1),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sneaker drop inventory API",
    "DESCRIPTION": "Reserve, purchase and watch limited-edition drops.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Request bodies get components of their own, without read-only fields and with
    # minLength 1 where DRF refuses blanks, so the schema states what a request may be.
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags from the path after /api/ (auth_token_create, tag drops),
    # whatever else the URLconf serves outside the API.
    "SCHEMA_PATH_PREFIX": "/api/",
}

# Domain settings.
RESERVATION_TTL_SECONDS = env.int("RESERVATION_TTL_SECONDS", default=60)
EXPIRY_SWEEP_SECONDS = env.float("EXPIRY_SWEEP_SECONDS", default=1.0)
# Readiness (/api/health) gives each server this long to answer (inventory_project.health).
HEALTH_DATABASE_TIMEOUT_SECONDS = env.float("HEALTH_DATABASE_TIMEOUT_SECONDS", default=1.0)
HEALTH_REDIS_TIMEOUT_SECONDS = env.float("HEALTH_REDIS_TIMEOUT_SECONDS", default=0.5)
# How long a process answers "sold out" from memory after it saw a drop sold out;
# shorter than the sweep interval, so a returned unit is offered again within it.
SOLD_OUT_MEMO_SECONDS = env.float("SOLD_OUT_MEMO_SECONDS", default=0.5)
# How long an Idempotency-Key's first answer is replayed (reservations.idempotency); an
# older key counts as new, and beat purges it every IDEMPOTENCY_PURGE_SECONDS.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)
IDEMPOTENCY_PURGE_SECONDS = env.float("IDEMPOTENCY_PURGE_SECONDS", default=3600.0)
# Stock updates are coalesced per drop across the deployment (reservations.events):
# at most one per interval; while a burst of changes goes on, one per burst interval;
# the last change of a burst as soon as the drop has been quiet for the quiet time.
STOCK_EVENT_INTERVAL_SECONDS = env.float("STOCK_EVENT_INTERVAL_SECONDS", default=0.25)
STOCK_EVENT_BURST_INTERVAL_SECONDS = env.float("STOCK_EVENT_BURST_INTERVAL_SECONDS", default=1.0)
STOCK_EVENT_QUIET_SECONDS = env.float("STOCK_EVENT_QUIET_SECONDS", default=0.05)
# Where pages open their socket; empty means same origin, path /ws/.
WEBSOCKET_URL = env.str("WEBSOCKET_URL", default="")

# Celery: Redis is the broker; results are not needed (tasks return counts for logs).
CELERY_BROKER_URL = REDIS_URL
# Separate queues let several deployments (or test runs) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat's record of when each task last ran, kept in a directory that always exists:
# under ./var/ (the old default) beat died at start wherever var/ had not been made.
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME",
    default=str(Path(tempfile.gettempdir()) / f"celerybeat-{CELERY_TASK_DEFAULT_QUEUE}"),
)
CELERY_BEAT_SCHEDULE = {
    "expire-reservations": {
        "task": "reservations.tasks.expire_reservations_task",
        "schedule": EXPIRY_SWEEP_SECONDS,
        # A sweep that could not start within its interval is superseded by the next one.
        "options": {"expires": EXPIRY_SWEEP_SECONDS},
    },
    "republish-stock": {
        "task": "reservations.tasks.republish_stock_task",
        "schedule": env.float("STOCK_REPUBLISH_SECONDS", default=5.0),
        "options": {"expires": env.float("STOCK_REPUBLISH_SECONDS", default=5.0)},
    },
    "purge-idempotency-keys": {
        "task": "reservations.tasks.purge_idempotency_keys_task",
        "schedule": IDEMPOTENCY_PURGE_SECONDS,
        "options": {"expires": IDEMPOTENCY_PURGE_SECONDS},
    },
}

# Production hardening, switched by the environment (all on when DEBUG is off).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers and supervisors probe health over plain HTTP inside the network; a
# redirect to https would read as "down". Prometheus scrapes each gunicorn the same way
# (docs/operations.md).
SECURE_REDIRECT_EXEMPT = [r"^api/health(/live)?$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# Celery logs each task a worker receives and finishes, and beat each task it sends:
# with the sweep every second and the republish every 5 s, three and more lines a
# second that say nothing. Failures are still logged (ERROR), and the tasks log what
# they did when they did something (reservations/tasks.py). LOG_LEVEL=DEBUG shows all.
_CELERY_PER_TASK_LEVEL = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # A sold-out drop answers thousands of 409s a second; they are business, not
    # warnings (the access log still has them). 5xx are still logged.
    "loggers": {
        "django.request": {"level": "ERROR"},
        # psycopg warns, over four lines, of each pipeline it could not flush to a
        # server that went away; the request's 503 is logged already, in one line
        # (inventory_project.unavailable).
        "psycopg": {"level": "ERROR"},
        "celery.worker.strategy": {"level": _CELERY_PER_TASK_LEVEL},  # "Task ... received"
        "celery.app.trace": {"level": _CELERY_PER_TASK_LEVEL},  # "Task ... succeeded in"
        "celery.beat": {"level": _CELERY_PER_TASK_LEVEL},  # "Sending due task"
    },
}
