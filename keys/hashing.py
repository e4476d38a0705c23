"""Key material: generation, hashing and comparison. The plaintext is never stored.

A key is stored as SHA-256(key), or as HMAC-SHA256(pepper, key) when `LLMPROXY_KEY_PEPPER` is set: then a copy of
the database alone does not let anyone test guesses. Either way the digest is deterministic, so the lookup stays one
indexed query by hash. Setting, changing or removing the pepper invalidates every existing key.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

KEY_PREFIX = "llmp_"
RANDOM_BYTES = 32  # 43 url-safe characters
DISPLAY_PREFIX_LENGTH = 12  # "llmp_" + 7 characters, enough to recognise a key in the admin


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def hash_key(plaintext: str) -> str:
    pepper = getattr(settings, "LLMPROXY_KEY_PEPPER", "")
    if pepper:
        return hmac.new(pepper.encode("utf-8"), plaintext.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_LENGTH]


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and len(token) > len(KEY_PREFIX) + 16 and token.isascii()


def hashes_match(stored_hash: str, plaintext: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_key(plaintext))
