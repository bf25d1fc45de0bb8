"""Translate google-api-core and transport exceptions into closedloop's error tree."""

from __future__ import annotations

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc

from closedloop.connectors.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)


def translate_ga4_error(exc: BaseException, endpoint: str) -> ClosedloopAPIError | None:
    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        # Credentials that cannot be refreshed (revoked key, anonymous after a 401).
        return AuthError(f"GA4 {endpoint}: credentials refused ({type(exc).__name__})", status=401, endpoint=endpoint)
    if isinstance(exc, gexc.GoogleAPICallError):
        status = exc.code if isinstance(exc.code, int) else None
        message = f"GA4 {endpoint} answered {status or ''} {type(exc).__name__}: {str(exc.message)[:300]}"
        if isinstance(exc, gexc.Unauthenticated):
            return AuthError(message, status=401, endpoint=endpoint)
        if isinstance(exc, gexc.TooManyRequests | gexc.ResourceExhausted):
            return RateLimitedError(message, status=429, endpoint=endpoint)
        if isinstance(exc, gexc.ServerError | gexc.DeadlineExceeded | gexc.ServiceUnavailable):
            return RetriableAPIError(message, status=status, endpoint=endpoint)
        return FatalAPIError(message, status=status, endpoint=endpoint)
    if isinstance(exc, gexc.RetryError | requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return RetriableAPIError(f"GA4 {endpoint}: transport error {type(exc).__name__}", endpoint=endpoint)
    return None
