"""Translate hubspot-api-client and urllib3 exceptions into closedloop's error tree.

Each generated module of the SDK has its own unrelated ``ApiException``; they share the
attributes ``status``, ``headers`` and ``body``, so classification goes by the status the
exception carries, through one table; exceptions without a status are transport failures.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3.exceptions

from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    MalformedResponseError,
    RateLimitedError,
    RetriableAPIError,
)

# Status -> our class; a status not listed is retriable from 500 up, fatal below.
_BY_STATUS: dict[int, type[ClosedloopAPIError]] = {
    401: AuthError,
    408: RetriableAPIError,
    429: RateLimitedError,
}
# Exceptions without a status: the connection, not the service, failed.
_TRANSPORT: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


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


def _class_of(status: int) -> type[ClosedloopAPIError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return RetriableAPIError if status >= 500 else FatalAPIError


def translate_hubspot_error(
    exc: BaseException, endpoint: str, *, host: str | None = None
) -> ClosedloopAPIError | None:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        body = _body(exc)
        category = body.get("category") or body.get("errorType") or ""
        # The service's own message is safe to show: it never echoes the bearer token.
        detail = str(body.get("message") or getattr(exc, "reason", "") or "")[:300]
        message = f"HubSpot {endpoint} answered {status} {category}: {detail}".rstrip(": ")
        cls = _class_of(status)
        if cls is RateLimitedError:
            return RateLimitedError(
                message,
                endpoint=endpoint,
                retry_after=_retry_after(getattr(exc, "headers", None)),
                policy=body.get("policyName"),
            )
        return cls(message, status=status, endpoint=endpoint)
    if isinstance(exc, (UnicodeDecodeError, json.JSONDecodeError)):
        # The SDK's own decoding of an answer (``call_data``) met bytes that are not UTF-8 JSON.
        return MalformedResponseError(f"HubSpot {endpoint}: the answer is not JSON ({type(exc).__name__})",
                                      endpoint=endpoint)
    if isinstance(exc, _TRANSPORT):
        where = f"HubSpot at {host}" if host else "HubSpot"
        return RetriableAPIError(
            f"{endpoint}: cannot reach {where} ({type(exc).__name__}); check hubspot.base_url and the network",
            endpoint=endpoint,
        )
    return None
