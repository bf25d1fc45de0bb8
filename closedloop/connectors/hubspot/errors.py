"""Translate hubspot-api-client and urllib3 exceptions into closedloop's error tree.

Each generated module of the SDK has its own unrelated ``ApiException``; they share the
attributes ``status``, ``headers`` and ``body``, so classification goes by attributes.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3.exceptions

from closedloop.connectors.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)


def _body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is not None:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def translate_hubspot_error(exc: BaseException, endpoint: str) -> ClosedloopAPIError | None:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        body = _body(exc)
        category = body.get("category") or body.get("errorType") or ""
        # The service's own message is safe to show: it never echoes the bearer token.
        detail = str(body.get("message") or getattr(exc, "reason", "") or "")[:300]
        message = f"HubSpot {endpoint} answered {status} {category}: {detail}".rstrip(": ")
        if status == 401:
            return AuthError(message, status=status, endpoint=endpoint)
        if status == 429:
            return RateLimitedError(
                message,
                endpoint=endpoint,
                retry_after=_retry_after(getattr(exc, "headers", None)),
                policy=body.get("policyName"),
            )
        if status >= 500 or status == 408:
            return RetriableAPIError(message, status=status, endpoint=endpoint)
        return FatalAPIError(message, status=status, endpoint=endpoint)
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return RetriableAPIError(f"HubSpot {endpoint}: transport error {type(exc).__name__}", endpoint=endpoint)
    return None
