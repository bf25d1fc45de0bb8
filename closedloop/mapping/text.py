"""Value-level text hygiene shared by UTMs, alias tables and rule operands.

Rules and data go through the same function, so a rule written as 'Paid Search' matches a
session whose medium arrived as 'paid%20search' or 'PAID+search'.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

_WHITESPACE = re.compile(r"\s+")
# '+' is a space only between two letters or digits: 'spring+sale' is 'spring sale', but the
# source 'google+' (on GA4's social list) and 'c++' keep their plus signs.
_PLUS_AS_SPACE = re.compile(r"(?<=[^\W_])\+(?=[^\W_])")


def decode(value: str) -> str:
    """URL-decode until nothing changes, so double-encoded values ('%2520') decode fully.

    Each decoding step that changes the text shortens it, so the loop ends.
    """
    while True:
        decoded = unquote(value, errors="replace")
        if decoded == value:
            return value
        value = decoded


def normalise_value(value: str) -> str:
    """Decoded, '+' as space, whitespace collapsed, trimmed, lower-cased; idempotent.

    Repeated to a fixed point because one step can expose work for the next (a decoded '%2B'
    is a '+' between letters).  Every step but lower-casing only shortens the text or keeps it,
    and lower-casing is stable after once, so a handful of rounds always suffices.
    """
    for _ in range(16):
        step = _WHITESPACE.sub(" ", _PLUS_AS_SPACE.sub(" ", decode(value))).strip().lower()
        if step == value:
            break
        value = step
    return value


@lru_cache(maxsize=4096)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """'*' any run of characters, '?' one character, everything else literal; whole value."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
