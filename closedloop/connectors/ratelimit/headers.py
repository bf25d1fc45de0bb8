"""HTTP header lookup for limiters: names are case-insensitive and SDKs hand them over in any case."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """HTTP header names are case-insensitive; SDKs hand them over in any case."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def int_header(headers: Mapping[str, str] | None, name: str) -> int | None:
    value = header(headers, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
