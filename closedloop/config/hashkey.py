"""The secret key of the email hash: from the environment or a file, created once, never in the store.

An unkeyed hash of an address is no protection: hashing the CRM's own address list reverses it.
With a key (HMAC-SHA-256), the store's hashes join records to each other and nothing else; a
copy of the database without the key reveals no address.  The key must be the same on every run
and every replica sharing a store (otherwise identities stop matching), so it is read from
``CLOSEDLOOP_HASH_KEY`` or the config's ``privacy.hash_key_file``; the file is created with a
fresh random key on first use (``ensure_hash_key``, also what ``closedloop init`` calls).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from closedloop.errors import ConfigError, Problem

ENV_VAR = "CLOSEDLOOP_HASH_KEY"
KEY_BYTES = 32
MIN_KEY_CHARS = 16  # a key shorter than this is a placeholder, not a secret


def ensure_hash_key(path: str | Path) -> bytes:
    """The key in ``path``; if there is no such file, a new random key written there (mode 0600).

    Created with O_EXCL, so two processes starting at once agree on one key: the loser reads
    the winner's file.
    """
    file = Path(path)
    try:
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_hash_key(file)
    except OSError as exc:
        raise ConfigError(
            [Problem(str(file), None, "privacy.hash_key_file", f"cannot create the hash key: {exc.strerror}")]
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(KEY_BYTES) + "\n")
    return read_hash_key(file)


def read_hash_key(path: str | Path) -> bytes:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([Problem(str(file), None, "privacy.hash_key_file", f"cannot read: {reason}")]) from None
    return _checked(text, str(file))


def resolve_hash_key(hash_key_file: str | Path, *, environ: Mapping[str, str] | None = None) -> bytes:
    """``CLOSEDLOOP_HASH_KEY`` if set, else the key file (created on first use)."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    if value:
        return _checked(value, f"${ENV_VAR}")
    return ensure_hash_key(hash_key_file)


def _checked(text: str, where: str) -> bytes:
    if len(text) < MIN_KEY_CHARS:
        raise ConfigError(
            [Problem(where, None, "privacy.hash_key_file", f"the hash key is shorter than {MIN_KEY_CHARS} characters")]
        )
    return text.encode("utf-8")
