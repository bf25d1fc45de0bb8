"""The keyed email hash every connector stores, so one person has one hash whatever the CRM.

HMAC-SHA-256 of the trimmed, lower-cased address under the process's key (see
``closedloop.config.hashkey``).  The key is a process secret like the CRM token: the run's
factory sets it once with ``use_hash_key`` before any pull; parsers call ``hash_email(address)``
without carrying it.  A parser called before any key is set raises ``ConfigError`` rather than
fall back to an unkeyed hash that a list of addresses would reverse.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

from closedloop.config.hashkey import ENV_VAR, resolve_hash_key
from closedloop.errors import ConfigError, Problem

_lock = threading.Lock()
_key: bytes | None = None


def use_hash_key(key: bytes) -> None:
    """Set the process's key (the factory does, from the config and environment)."""
    global _key
    with _lock:
        _key = key


def current_hash_key() -> bytes:
    """The key set by ``use_hash_key``; else ``CLOSEDLOOP_HASH_KEY`` from the environment."""
    global _key
    with _lock:
        if _key is None:
            if not os.environ.get(ENV_VAR, "").strip():
                message = f"no email hash key: set {ENV_VAR} or use a config"
                raise ConfigError([Problem("<config>", None, "privacy.hash_key_file", message)])
            _key = resolve_hash_key("")
        return _key


def hash_email(email: str, key: bytes | None = None) -> str:
    """Hex HMAC-SHA-256 of the trimmed, lower-cased address: joins on email without revealing it."""
    secret = current_hash_key() if key is None else key
    return hmac.new(secret, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()

