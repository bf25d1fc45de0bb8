"""Translate google-api-core, google-auth and transport exceptions into closedloop's error tree.

One table, read top to bottom, most specific class first: ``Unauthenticated`` and
``TooManyRequests`` are ``GoogleAPICallError`` too, so they must be matched before it.
"""

from __future__ import annotations

import json

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc

from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    MalformedResponseError,
    RateLimitedError,
    RetriableAPIError,
)

# (their classes, ours, the status ours carries when theirs has none)
_TABLE: tuple[tuple[tuple[type[BaseException], ...], type[ClosedloopAPIError], int | None], ...] = (
    ((gexc.Unauthenticated,), AuthError, 401),
    ((gexc.TooManyRequests, gexc.ResourceExhausted), RateLimitedError, 429),
    ((gexc.ServerError, gexc.DeadlineExceeded, gexc.ServiceUnavailable), RetriableAPIError, None),
    ((gexc.GoogleAPICallError,), FatalAPIError, None),
)
_TRANSPORT: tuple[type[BaseException], ...] = (
    gexc.RetryError,
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)


def translate_ga4_error(exc: BaseException, endpoint: str, *, host: str | None = None) -> ClosedloopAPIError | None:
    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        # Credentials that cannot be refreshed (revoked key, anonymous after a 401).
        return AuthError(f"GA4 {endpoint}: credentials refused ({type(exc).__name__})", status=401, endpoint=endpoint)
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code if isinstance(exc.code, int) else None
        message = f"GA4 {endpoint} answered {code or ''} {type(exc).__name__}: {str(exc.message)[:300]}"
        for theirs, ours, status in _TABLE:
            if isinstance(exc, theirs):
                return ours(message, status=status or code, endpoint=endpoint)
    if isinstance(exc, MalformedResponseError):
        return exc
    if isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
        # The rows reader or the SDK met an answer that is not UTF-8 JSON (an HTML page, a cut body).
        return MalformedResponseError(f"GA4 {endpoint}: the answer is not JSON ({type(exc).__name__})",
                                      endpoint=endpoint)
    if isinstance(exc, _TRANSPORT):
        where = f"GA4 at {host}" if host else "GA4"
        return RetriableAPIError(
            f"{endpoint}: cannot reach {where} ({type(exc).__name__}); check ga4.base_url and the network",
            endpoint=endpoint,
        )
    return None
