"""Test settings: the real settings, with a fixed secret and version checks on every request."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("LLMPROXY_POLICY_REFRESH_SECONDS", "0")
os.environ.setdefault("LLMPROXY_DEFAULT_TIMEOUT_SECONDS", "10")

from llmproxy_site.settings import *  # noqa: F403
