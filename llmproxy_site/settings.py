"""Settings, all read from the environment (see README: Configuration)."""

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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "keys",
    "routing",
    "usage",
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
        "DIRS": [],
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
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("LLMPROXY_TEST_SQLITE", str(BASE_DIR / "test_db.sqlite3"))}

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LLMPROXY_LOG_LEVEL", "INFO")},
    "loggers": {
        "LiteLLM": {"level": "WARNING"},
        "LiteLLM Router": {"level": "WARNING"},
        "LiteLLM Proxy": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},  # every 4xx is an answer to a client, not a server problem
    },
}

# Gateway behaviour.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("LLMPROXY_MAX_BODY_BYTES", str(10 * 1024 * 1024)))  # larger: 413
LLMPROXY_POLICY_REFRESH_SECONDS = env_float("LLMPROXY_POLICY_REFRESH_SECONDS", 0.25)
LLMPROXY_DEFAULT_TIMEOUT_SECONDS = env_float("LLMPROXY_DEFAULT_TIMEOUT_SECONDS", 600.0)
LLMPROXY_DEFAULT_NUM_RETRIES = int(os.environ.get("LLMPROXY_DEFAULT_NUM_RETRIES", "0"))
# OpenAI-wire providers are relayed directly (one pooled client, bytes forwarded); off: everything via LiteLLM.
LLMPROXY_DIRECT_RELAY = env_bool("LLMPROXY_DIRECT_RELAY", True)
LLMPROXY_LAST_USED_RESOLUTION_SECONDS = env_float("LLMPROXY_LAST_USED_RESOLUTION_SECONDS", 60.0)

REDIS_URL = os.environ.get("REDIS_URL") or None  # shared rate-limit counters across hosts
LLMPROXY_REDIS_PREFIX = os.environ.get("LLMPROXY_REDIS_PREFIX", "llmproxy:")
LLMPROXY_USAGE_FLUSH_SECONDS = env_float("LLMPROXY_USAGE_FLUSH_SECONDS", 1.0)
LLMPROXY_USAGE_BATCH_SIZE = int(os.environ.get("LLMPROXY_USAGE_BATCH_SIZE", "200"))
LLMPROXY_USAGE_MAX_BUFFERED = int(os.environ.get("LLMPROXY_USAGE_MAX_BUFFERED", "100000"))
LLMPROXY_LOG_RETENTION_DAYS = int(os.environ.get("LLMPROXY_LOG_RETENTION_DAYS", "90"))
