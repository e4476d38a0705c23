"""Settings, all read from the environment (see README: Configuration)."""

import logging
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# LiteLLM reads these at import time: never let it reach the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for a development default).")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "llmproxy_site.apps.LlmproxyAdminConfig",  # django.contrib.admin, our site (admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "audit",
    "lockout",
    "teams",
    "sso",
    "keys",
    "routing",
    "usage",
    "telemetry",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "llmproxy_site.urls"
ASGI_APPLICATION = "llmproxy_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],  # the admin's home page (overrides django.contrib.admin's)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("LLMPROXY_DB_POOL", True):
    # Django's own psycopg pool, per process: CONN_MAX_AGE > 0 leaks connections under ASGI.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("LLMPROXY_DB_POOL_SIZE", "10")),
        # How long a query waits for a connection: short, so an outage answers 503 (or uses caches) quickly.
        "timeout": env_float("LLMPROXY_DB_POOL_TIMEOUT_SECONDS", 3.0),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("LLMPROXY_TEST_SQLITE", str(BASE_DIR / "test_db.sqlite3"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("LLMPROXY_PGBOUNCER"):
    # Behind PgBouncer's transaction pooling (README: PgBouncer) no session state may outlive a transaction:
    # QuerySet.iterator() would open a WITH HOLD cursor, so server-side cursors are off. Prepared statements are off
    # already (Django passes psycopg prepare_threshold=None unless OPTIONS sets it); kept explicit here.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Every line made while serving a request carries its id (telemetry.request_ids; "-" outside a request).
# LLMPROXY_LOG_FORMAT=json: one JSON object per line (telemetry.logs) instead of plain text.
LLMPROXY_LOG_FORMAT = os.environ.get("LLMPROXY_LOG_FORMAT", "plain").strip().lower() or "plain"
if LLMPROXY_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LLMPROXY_LOG_FORMAT must be 'plain' or 'json'.")
if LLMPROXY_LOG_FORMAT == "json":
    logging.captureWarnings(True)  # Python's warnings become records too (logger py.warnings): every line is JSON
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "telemetry.request_ids.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "telemetry.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LLMPROXY_LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LLMPROXY_LOG_LEVEL", "INFO")},
    "loggers": {
        "LiteLLM": {"level": "WARNING"},
        "LiteLLM Router": {"level": "WARNING"},
        "LiteLLM Proxy": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},  # every 4xx is an answer to a client, not a server problem
    },
}

# Security (README: Security). Headers and cookie flags below matter only over HTTPS; the API on plain http
# (make serve, make bench, localhost) is unaffected, and HSTS is only ever sent on a secure request.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# A Host not in ALLOWED_HOSTS is answered 400 (OpenAI-shaped outside the admin, see urls.py); scanners send them
# all day, and the header is attacker-written: no ERROR line with a traceback per probe.
LOGGING["loggers"]["django.security.DisallowedHost"] = {"level": "CRITICAL"}
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# A TLS-terminating proxy in front: e.g. "X-Forwarded-Proto" (value "https"), or "X-Forwarded-Proto=https".
# Set it only when that proxy always sets (and strips a client's) header, or a client could claim HTTPS.
_proxy_ssl_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    _header, _, _value = _proxy_ssl_header.partition("=")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.strip().upper().replace("-", "_"), _value.strip() or "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SILENCED_SYSTEM_CHECKS = []
if not SECURE_SSL_REDIRECT:
    # Off by default: TLS is terminated in front of the gateway (or the API is served on plain http to localhost,
    # as by make serve and make bench), and redirecting an API POST to https would drop its body.
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if not DEBUG and not SECURE_HSTS_PRELOAD:
    # Preloading is a one-way, domain-wide commitment (every subdomain, in every browser, for months): the
    # operator opts in with DJANGO_SECURE_HSTS_PRELOAD=1; HSTS itself is on.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# Admin login lockout (lockout app): failures per username + client address, and per username across addresses
# (so rotating addresses does not give unlimited guesses), counted in the database.
LLMPROXY_ADMIN_LOGIN_MAX_FAILURES = int(os.environ.get("LLMPROXY_ADMIN_LOGIN_MAX_FAILURES", "5"))
LLMPROXY_ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME = int(
    os.environ.get("LLMPROXY_ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME", str(4 * LLMPROXY_ADMIN_LOGIN_MAX_FAILURES))
)
LLMPROXY_ADMIN_LOGIN_LOCKOUT_MINUTES = env_float("LLMPROXY_ADMIN_LOGIN_LOCKOUT_MINUTES", 15.0)

# Single sign-on for the admin (sso app, README: Single sign-on): off unless LLMPROXY_OIDC_ISSUER is set; then also
# AUTHENTICATION_BACKENDS and mozilla-django-oidc's OIDC_* settings, all from LLMPROXY_OIDC_* variables.
from sso.config import sso_settings  # noqa: E402

globals().update(sso_settings(os.environ))

# Extra environment variables a model may name as its provider key (routing/provider_keys.py has the whole rule;
# the gateway's own settings and secrets are refused even when listed here).
LLMPROXY_PROVIDER_KEY_VARS = tuple(
    name.strip() for name in os.environ.get("LLMPROXY_PROVIDER_KEY_VARS", "").split(",") if name.strip()
)

# Keys are stored as HMAC-SHA256(pepper, key) when set, else SHA-256(key). Changing it invalidates every key.
LLMPROXY_KEY_PEPPER = os.environ.get("LLMPROXY_KEY_PEPPER", "")

# Gateway behaviour.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("LLMPROXY_MAX_BODY_BYTES", str(10 * 1024 * 1024)))  # larger: 413
LLMPROXY_POLICY_REFRESH_SECONDS = env_float("LLMPROXY_POLICY_REFRESH_SECONDS", 0.25)
LLMPROXY_DEFAULT_TIMEOUT_SECONDS = env_float("LLMPROXY_DEFAULT_TIMEOUT_SECONDS", 600.0)
LLMPROXY_DEFAULT_NUM_RETRIES = int(os.environ.get("LLMPROXY_DEFAULT_NUM_RETRIES", "0"))
# OpenAI-wire providers are relayed directly (one pooled client, bytes forwarded); off: everything via LiteLLM.
LLMPROXY_DIRECT_RELAY = env_bool("LLMPROXY_DIRECT_RELAY", True)
# Providers with a verified LiteLLM translation (Anthropic) are called through their LiteLLM configuration over the
# same pooled client (api/translated.py); off (or the relay off): through litellm.acompletion.
LLMPROXY_TRANSLATED_PATH = env_bool("LLMPROXY_TRANSLATED_PATH", True)
# Longest server-sent-event line the relay forwards (a base64 image or audio delta is one line); longer: the stream
# ends with an error event.
LLMPROXY_MAX_SSE_LINE_BYTES = int(os.environ.get("LLMPROXY_MAX_SSE_LINE_BYTES", str(32 * 1024 * 1024)))
LLMPROXY_LAST_USED_RESOLUTION_SECONDS = env_float("LLMPROXY_LAST_USED_RESOLUTION_SECONDS", 60.0)

REDIS_URL = os.environ.get("REDIS_URL") or None  # shared rate-limit counters across hosts
LLMPROXY_REDIS_PREFIX = os.environ.get("LLMPROXY_REDIS_PREFIX", "llmproxy:")
LLMPROXY_USAGE_FLUSH_SECONDS = env_float("LLMPROXY_USAGE_FLUSH_SECONDS", 1.0)
LLMPROXY_USAGE_BATCH_SIZE = int(os.environ.get("LLMPROXY_USAGE_BATCH_SIZE", "200"))
LLMPROXY_USAGE_MAX_BUFFERED = int(os.environ.get("LLMPROXY_USAGE_MAX_BUFFERED", "100000"))
LLMPROXY_LOG_RETENTION_DAYS = int(os.environ.get("LLMPROXY_LOG_RETENTION_DAYS", "90"))
# Deployment cooldowns (routing/health.py): shared through REDIS_URL when set, else each process keeps its own.
LLMPROXY_COOLDOWN_FAILURES = int(os.environ.get("LLMPROXY_COOLDOWN_FAILURES", "3"))  # failures within the window
LLMPROXY_COOLDOWN_WINDOW_SECONDS = env_float("LLMPROXY_COOLDOWN_WINDOW_SECONDS", 60.0)
LLMPROXY_COOLDOWN_SECONDS = env_float("LLMPROXY_COOLDOWN_SECONDS", 30.0)
LLMPROXY_COOLDOWN_MAX_SECONDS = env_float("LLMPROXY_COOLDOWN_MAX_SECONDS", 300.0)  # cap on a provider's Retry-After
LLMPROXY_HEALTH_REFRESH_SECONDS = env_float("LLMPROXY_HEALTH_REFRESH_SECONDS", 0.5)
# GET /healthz/ready: how long each check (database, Redis, policy) may take before it counts as failed.
LLMPROXY_READY_TIMEOUT_SECONDS = env_float("LLMPROXY_READY_TIMEOUT_SECONDS", 2.0)
# Tracing (telemetry/tracing.py) is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
# set: spans go over OTLP/HTTP as service OTEL_SERVICE_NAME (default "llmproxy"). The SDK reads the standard
# OTEL_* variables itself (OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY, OTEL_SDK_DISABLED, …).
# Prometheus metrics at GET /metrics (telemetry/metrics.py). Several workers need PROMETHEUS_MULTIPROC_DIR (make
# serve sets it). LLMPROXY_METRICS=0 records nothing; a token makes /metrics ask for `Authorization: Bearer <token>`;
# per-key labels and key budgets only with LLMPROXY_METRICS_PER_KEY=1 (keys are many: one series each).
LLMPROXY_METRICS = env_bool("LLMPROXY_METRICS", True)
LLMPROXY_METRICS_TOKEN = os.environ.get("LLMPROXY_METRICS_TOKEN", "")
LLMPROXY_METRICS_PER_KEY = env_bool("LLMPROXY_METRICS_PER_KEY", False)

# Request limits (bad input): each one answered with an OpenAI-shaped error, never a 500.
# The body limit is DATA_UPLOAD_MAX_MEMORY_SIZE above (LLMPROXY_MAX_BODY_BYTES): larger bodies get a 413.
LLMPROXY_MAX_MESSAGES = int(os.environ.get("LLMPROXY_MAX_MESSAGES", "2048"))  # more: 400, param "messages"
LLMPROXY_MAX_JSON_DEPTH = int(os.environ.get("LLMPROXY_MAX_JSON_DEPTH", "64"))  # deeper arrays/objects: 400
LLMPROXY_MAX_HEADER_BYTES = int(os.environ.get("LLMPROXY_MAX_HEADER_BYTES", str(16 * 1024)))  # more: 431

# Email (budget alerts to team admins): printed to the console unless an SMTP server is configured.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "llmproxy@localhost")
