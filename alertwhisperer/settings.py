"""Settings for Alert Whisperer, read from environment variables with embedded defaults.

Unset, the project runs embedded on one machine: SQLite, an in-memory channel layer, a
local-memory cache and Celery tasks run in-process. With ``DATABASE_URL`` and ``REDIS_URL``
set, it runs in its production shape: PostgreSQL, channels-redis, a Redis cache and a Celery
broker served by separate worker and beat processes. See docs/decisions.md.
"""

import os
import re
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from apps.common.crypto import development_key, parse_keys

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEV_SECRET_KEY = "django-insecure-embedded-development-key-never-use-in-production"  # noqa: S105

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = DEV_SECRET_KEY
elif SECRET_KEY == DEV_SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY is the embedded development key; set a real one.")
elif not DEBUG and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 10 or SECRET_KEY.startswith("django-insecure")
):
    # Django's deploy check asks for 50 characters and 5 different ones; 10 keeps out
    # keyboard runs. Make one with: python -c "import secrets; print(secrets.token_urlsafe(50))"
    raise ImproperlyConfigured(
        "SECRET_KEY is weak: use at least 50 random characters (at least 10 different ones)."
    )

_hosts = os.environ.get("ALLOWED_HOSTS", "")
if _hosts:
    ALLOWED_HOSTS = [h.strip() for h in _hosts.split(",") if h.strip()]
elif DEBUG:
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "apps.accounts.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "django_filters",
    "channels",
    "apps.common",
    "apps.tenants",
    "apps.accounts",
    "apps.audit",
    "apps.alerts",
    "apps.heartbeats",
    "apps.incidents",
    "apps.silences",
    "apps.saved_views",
    "apps.notifications",
    "apps.dashboard",
    "apps.runbooks",
    "apps.approvals",
    "apps.kpis",
    "apps.compliance",
    "apps.chat",
    "apps.ops",
    "apps.oncall",
]

MIDDLEWARE = [
    "apps.ops.middleware.RequestIdMiddleware",
    "apps.ops.middleware.WebhookMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.audit.context.AuditContextMiddleware",
    "apps.common.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "alertwhisperer.urls"

# The webhook server (alertwhisperer/webhooks_wsgi.py) serves the webhook routes only, so
# it runs only the middleware an API-key endpoint needs: security headers, and
# CommonMiddleware, which also enforces ALLOWED_HOSTS. The main server serves the same
# routes through the full stack.
WEBHOOK_SERVER_MIDDLEWARE = [
    "apps.ops.middleware.RequestIdMiddleware",
    "apps.ops.middleware.WebhookMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
WEBHOOK_SERVER_URLCONF = "alertwhisperer.urls_webhooks"
if os.environ.get("AW_SERVER") == "webhooks":
    MIDDLEWARE = WEBHOOK_SERVER_MIDDLEWARE
    ROOT_URLCONF = WEBHOOK_SERVER_URLCONF
ASGI_APPLICATION = "alertwhisperer.asgi.application"
WSGI_APPLICATION = "alertwhisperer.wsgi.application"

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
                "apps.accounts.context_processors.frame",
                "apps.tenants.demo.frame",
            ],
        },
    },
]

# --- Services: database, cache, channel layer, Celery -------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not REDIS_URL
# How long one statement of a web request may run: the web servers' modules say which
# process serves requests (AW_SERVER); Celery, beat and commands read the same environment
# file but get no limit (retention, archiving and seeding run long statements on purpose).
WEB_STATEMENT_TIMEOUT = os.environ.get("WEB_STATEMENT_TIMEOUT", "30s")
if not re.fullmatch(r"[0-9]+(ms|s|min)?", WEB_STATEMENT_TIMEOUT):
    raise ImproperlyConfigured(
        "WEB_STATEMENT_TIMEOUT must be a whole number of ms, s or min, such as 30s; it is "
        f"{WEB_STATEMENT_TIMEOUT!r}."
    )
DATABASE_STATEMENT_TIMEOUT = (
    WEB_STATEMENT_TIMEOUT if os.environ.get("AW_SERVER") in {"web", "webhooks"} else ""
)

if DATABASE_URL:
    # Persistent connections (60 s) for the WSGI servers and Celery, whose threads live on.
    # Under ASGI (alertwhisperer.asgi sets 0) each request runs in a thread of its own, so
    # a kept connection is never reused and piles up until it expires: closed per request.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60"))
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # JIT compiles the plan of any query estimated costly (a dashboard aggregate over
        # thousands of open incidents, say) and takes longer doing so (~250 ms) than the
        # query runs: off for the application's short queries (docs/decisions.md, issue 16).
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
        # A web request's statements stop after WEB_STATEMENT_TIMEOUT: a query that runs
        # away answers 503 and frees its connection, instead of running on for minutes
        # after the browser or the monitoring tool gave up (docs/decisions.md).
        if DATABASE_STATEMENT_TIMEOUT:
            DATABASES["default"]["OPTIONS"]["options"] += (
                f" -c statement_timeout={DATABASE_STATEMENT_TIMEOUT}"
            )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "aw",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times reads out after 5 s, the length of channels-redis's blocking
            # read: idle sockets would drop every 5 s (django/channels_redis#422).
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10}],
                "prefix": "aw:channels",
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # kombu's Redis transport, fixed so that a worker survives a Redis restart (see
    # alertwhisperer/celery.py).
    CELERY_BROKER_TRANSPORT = "alertwhisperer.celery:RedisTransport"
    CELERY_TASK_ALWAYS_EAGER = False
    # A dead or hung connection is noticed within seconds, not left to block the worker;
    # redis-py pings a connection idle for 10 s before using it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_TASK_ALWAYS_EAGER = True

CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
# Correlation drains that may run side by side (companies are split between them): as many
# as worker processes (the Procfile runs --concurrency=2).
CORRELATION_DRAINS = int(os.environ.get("CORRELATION_DRAINS", "2"))
# Dependencies derived from alert labels (a pod on its deployment) expire once their asset
# has had no alert for this long (one day); hand-made ones never do.
DERIVED_DEPENDENCY_IDLE_SECONDS = float(os.environ.get("DERIVED_DEPENDENCY_IDLE_SECONDS", "86400"))
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage (Redis restarting) is waited out: the worker reconnects for as long as it
# takes (the default gives up after 100 attempts and exits). Acks-late tasks running when
# the connection dropped are cancelled: their acknowledgement would go to the dead channel.
# What they leave undone is taken up from the database (the periodic correlation sweep, the
# resumption of runbook executions). The processes also run supervised (deploy/systemd/,
# alertwhisperer/supervise.py).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TIMEZONE = "UTC"
# Queues by kind (docs/deploy.md), so that a slow SSM poll or a compliance export never
# delays an incident: correlation (the drains), selfheal (runbook executions and their SSM
# polls), notifications (live signals, outbound messages, escalation) and periodic (beat's
# upkeep, and any task not routed). A worker started without -Q consumes all four (one
# machine, the tests); the Procfile gives each kind its own worker.
CELERY_TASK_QUEUES = {name: {} for name in ("correlation", "selfheal", "notifications", "periodic")}
CELERY_TASK_DEFAULT_QUEUE = "periodic"
CELERY_TASK_ROUTES = {
    "apps.incidents.tasks.correlate_company_task": {"queue": "correlation"},
    "apps.incidents.tasks.correlate_pending": {"queue": "correlation"},
    "apps.runbooks.tasks.runbook_*": {"queue": "selfheal"},
    "apps.notifications.tasks.*": {"queue": "notifications"},
    "apps.oncall.tasks.*": {"queue": "notifications"},
}
# Where the retention task writes each dropped month of alerts (CSV, gzip) before dropping
# it; empty: dropped without an archive.
ALERTS_ARCHIVE_DIR = os.environ.get("ALERTS_ARCHIVE_DIR", "")
CELERY_BEAT_SCHEDULE = {
    "correlation-sweep": {"task": "apps.incidents.tasks.correlation_sweep", "schedule": 15.0},
    "rescore-incidents": {"task": "apps.incidents.tasks.rescore_incidents", "schedule": 300.0},
    "expire-derived-dependencies": {
        "task": "apps.incidents.tasks.expire_derived_dependencies",
        "schedule": 3600.0,
    },
    "purge-deliveries": {"task": "apps.alerts.tasks.purge_deliveries", "schedule": 3600.0},
    "prune-occurrences": {"task": "apps.alerts.tasks.prune_occurrences", "schedule": 3600.0},
    # The alerts' monthly partitions (docs/decisions.md, "Alerts partitioned by month").
    "alert-partitions": {"task": "apps.alerts.tasks.partitions_ensure", "schedule": 21600.0},
    "alert-statistics": {"task": "apps.alerts.tasks.refresh_statistics", "schedule": 3600.0},
    "alert-retention": {"task": "apps.alerts.tasks.retention_apply", "schedule": 86400.0},
    "check-heartbeats": {"task": "apps.heartbeats.tasks.check_heartbeats", "schedule": 30.0},
    "resume-executions": {"task": "apps.runbooks.tasks.executions_resume", "schedule": 30.0},
    "expire-approvals": {"task": "apps.runbooks.tasks.expire_approvals", "schedule": 60.0},
    "compliance-sync": {"task": "apps.compliance.tasks.sync_all_companies", "schedule": 3600.0},
    "worker-heartbeat": {"task": "apps.ops.tasks.heartbeat", "schedule": 15.0},
    "escalation-sweep": {"task": "apps.oncall.tasks.escalation_sweep", "schedule": 15.0},
    "assign-woken": {"task": "apps.silences.tasks.assign_woken_incidents", "schedule": 60.0},
    "compliance-export": {
        "task": "apps.compliance.tasks.export_all_companies",
        "schedule": 86400.0,
    },
}

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation, static files ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves static files under any server (daphne, granian); without a
# collectstatic run it reads them through the finders, so the warning about a missing
# STATIC_ROOT says nothing useful.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security -----------------------------------------------------------------------------
CSRF_FAILURE_VIEW = "apps.common.views.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
# Messages live in the server-side session, not in a cookie: a token issued in Django admin is
# shown once in a message and must never travel back and forth in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    # HTTPS only: redirect plain HTTP, HSTS for a year, cookies sent over HTTPS only. Each
    # can be switched off from the environment (a plain-HTTP bench on 127.0.0.1, say).
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    # Behind a proxy that terminates TLS, the request reaching Django is plain HTTP: the
    # proxy's X-Forwarded-Proto says whether the client used HTTPS. The proxy must set it
    # (overwriting the client's); without such a proxy, set BEHIND_TLS_PROXY=false.
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): scripts and styles from our own origin only; no
# inline script, inline style or eval (htmx runs with allowEval off; console behaviour is
# in static/js/console.js). 'self' covers the same-origin WebSocket (/ws/).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Secrets stored encrypted (HMAC secrets; apps/common/crypto.py): Fernet keys, the first
# encrypts and all decrypt. Rotate: put a new key first, run `manage.py reencrypt_secrets`,
# then drop the old key.
_field_keys = os.environ.get("FIELD_ENCRYPTION_KEYS", "")
try:
    FIELD_ENCRYPTION_KEYS = parse_keys(_field_keys)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off (comma-separated Fernet "
            "keys; make one with cryptography.fernet.Fernet.generate_key())."
        )
    FIELD_ENCRYPTION_KEYS = [development_key(SECRET_KEY)]

# --- REST framework -----------------------------------------------------------------------
# Proxies in front of the app that append to X-Forwarded-For. 0: the client address is
# REMOTE_ADDR and the header is ignored (anyone can write it). n: the n-th address from the
# right, the one the outermost trusted proxy saw. Throttles (DRF's and the log-in limits in
# apps/accounts/throttle.py) read the address this way.
TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.common.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"token": "10/min"},
    "NUM_PROXIES": TRUSTED_PROXIES,
}
# API tokens (django-rest-knox): stored as SHA-512 digests, shown once, expiring; revoked
# by their holder (POST /api/v1/token/revoke/) or an MSP admin (Django admin).
REST_KNOX = {"TOKEN_TTL": timedelta(days=30), "AUTO_REFRESH": False}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alert Whisperer API",
    "DESCRIPTION": "Webhook ingestion and the incident/alert REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": "apps.alerts.choices.AlertStatus",
        "IncidentStatusEnum": "apps.incidents.choices.IncidentStatus",
    },
}

# --- AWS ----------------------------------------------------------------------------------
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL") or None

# The embedded demo (`make run`): AWS calls go to a local emulator and every page says so,
# and the MSP admin sees the demo webhook keys again. Never with DEBUG off.
DEMO_MODE = env_bool("DEMO_MODE", False)
if DEMO_MODE and not DEBUG:
    raise ImproperlyConfigured("DEMO_MODE is for the embedded demo only; it needs DEBUG on.")

# --- Observability (apps/ops; docs/decisions.md "Watching the platform") ------------------
# LOG_FORMAT=json: one JSON object per line (python-json-logger); plain text otherwise.
# Every record carries the request id of the request or task it belongs to.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.ops.requestid.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# Celery workers and beat log through the handler above instead of replacing it.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics: a bearer token when set, otherwise direct requests from loopback only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# The watchdog (in the beat process) and /readyz: a worker heartbeat older than this many
# seconds, or an uncorrelated alert older than that, is a failure (and a platform incident).
OPS_HEARTBEAT_MAX_AGE = float(os.environ.get("OPS_HEARTBEAT_MAX_AGE", "60"))
OPS_CORRELATION_LAG_MAX = float(os.environ.get("OPS_CORRELATION_LAG_MAX", "120"))
OPS_WATCHDOG_SECONDS = float(os.environ.get("OPS_WATCHDOG_SECONDS", "30"))

# --- Notifications outside the browser (apps/notifications/channels.py) -------------------
# Where people reach the console from outside: absolute links in emails, Slack, Teams and
# webhooks, acknowledge links included, are built on SITE_URL.
SITE_URL = os.environ.get("SITE_URL", f"http://localhost:{os.environ.get('PORT', '8000')}").rstrip(
    "/"
)
# Django's SMTP backend. Embedded (`make run`), mail goes to the local catcher on EMAIL_PORT
# (PORT + 2; apps/notifications/mailcatcher.py), listed at /notifications/mail/ for MSP admins.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "1025" if EMBEDDED else "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Alert Whisperer <alerts@localhost>")
# Where the demo mail catcher stores messages (one .eml file each).
MAIL_CATCHER_DIR = Path(os.environ.get("MAIL_CATCHER_DIR", str(BASE_DIR / ".run" / "mail")))
# Rate cap: at most NOTIFY_RATE_LIMIT messages per channel in NOTIFY_RATE_WINDOW seconds;
# the rest are held and go out as one digest when the window has passed.
NOTIFY_RATE_LIMIT = int(os.environ.get("NOTIFY_RATE_LIMIT", "5"))
NOTIFY_RATE_WINDOW = int(os.environ.get("NOTIFY_RATE_WINDOW", "300"))
# Sending attempts per message (retries back off 2, 4, 8… seconds x NOTIFY_RETRY_BASE).
NOTIFY_MAX_ATTEMPTS = int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "4"))
NOTIFY_RETRY_BASE = float(os.environ.get("NOTIFY_RETRY_BASE", "2"))
NOTIFY_HTTP_TIMEOUT = float(os.environ.get("NOTIFY_HTTP_TIMEOUT", "10"))
# Channel URLs must be https; plain http to 127.0.0.1/localhost only when this is on
# (DEBUG by default: the demo and the tests' local receivers).
NOTIFY_ALLOW_HTTP_LOOPBACK = env_bool("NOTIFY_ALLOW_HTTP_LOOPBACK", DEBUG)
CELERY_BEAT_SCHEDULE["notification-digests"] = {
    "task": "apps.notifications.tasks.flush_digests",
    "schedule": 30.0,
}
