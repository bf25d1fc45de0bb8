"""One table from simple-salesforce / requests failures to closedloop's error tree.

Salesforce says what went wrong in ``errorCode`` (REST) or ``statusCode`` (per-record results)
inside a JSON array body; the HTTP status only picks the family.  ``translate`` reads the code
first, then the status, then the transport failure, so the most specific row wins:

    errorCode / status                       closedloop class        what the caller does
    INVALID_SESSION_ID (401)                 SessionExpired          renew once, retry; then AuthError
    other 401, invalid_grant (token call)    AuthError               stop: credentials refused
    REQUEST_LIMIT_EXCEEDED (403)             RateLimitedError        back off (concurrent-call burst);
                                                                     the daily cap is caught by usage.py
    MALFORMED_QUERY, INVALID_FIELD,          FatalAPIError           stop the stream, field named
    INVALID_TYPE (400)
    other 4xx                                FatalAPIError           stop the stream
    5xx, 408, 429                            RetriableAPIError       back off and retry
    ConnectionError, Timeout                 RetriableAPIError       back off and retry
    a body that is not JSON where JSON is due MalformedResponseError retry, then fail the stream

Messages name the status, the endpoint and Salesforce's own message (which never echoes a
session id); request bodies, URLs with query strings and credentials never appear.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError, SalesforceOperationError

from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    MalformedResponseError,
    RateLimitedError,
    RetriableAPIError,
)

FATAL_QUERY_CODES = frozenset({"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"})


class SessionExpired(AuthError):
    """401 INVALID_SESSION_ID: the session can be renewed once; if it is not, it is an AuthError."""


def error_items(content: Any) -> list[dict[str, Any]]:
    """Salesforce's error array (``[{"message", "errorCode", "fields"}]``) from any body form."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except ValueError:
            return []
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return []
    return [item for item in content if isinstance(item, dict)]


def describe(items: list[dict[str, Any]]) -> tuple[str, str]:
    """(errorCode, message with the fields named) of the first error item."""
    if not items:
        return "", ""
    first = items[0]
    code = str(first.get("errorCode") or first.get("statusCode") or first.get("error") or "")
    message = str(first.get("message") or first.get("error_description") or "")[:300]
    fields = first.get("fields")
    if fields:
        message = f"{message} (fields: {', '.join(map(str, fields))})"
    return code, message


def translate(exc: BaseException, endpoint: str) -> ClosedloopAPIError | None:
    """Our error for an SDK or transport exception; None for one that is not an API failure."""
    if isinstance(exc, ClosedloopAPIError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        detail = f"{exc.code or ''} {exc.auth_message}".strip()[:300]
        return AuthError(f"Salesforce sign-in refused at {endpoint}: {detail}", status=401, endpoint=endpoint)
    if isinstance(exc, SalesforceError):
        return from_status(int(exc.status), error_items(exc.content), endpoint)
    if isinstance(exc, SalesforceOperationError):
        # A Bulk 2.0 job that Failed/Aborted or timed out: the job, not the call, went wrong.
        return FatalAPIError(f"Salesforce {endpoint}: {str(exc)[:300]}", endpoint=endpoint)
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return MalformedResponseError(f"Salesforce {endpoint}: answer is not JSON", endpoint=endpoint)
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        url = getattr(getattr(exc, "request", None), "url", None)
        host = urlsplit(url).netloc if isinstance(url, str) else ""
        where = f"Salesforce at {host}" if host else "Salesforce"
        return RetriableAPIError(
            f"{endpoint}: cannot reach {where} ({type(exc).__name__}); "
            "check salesforce.login_url (or instance_url) and the network",
            endpoint=endpoint,
        )
    return None


def from_status(status: int, items: list[dict[str, Any]], endpoint: str) -> ClosedloopAPIError:
    """The row of the table for an HTTP status and Salesforce's error array."""
    code, detail = describe(items)
    message = f"Salesforce {endpoint} answered {status} {code}: {detail}".rstrip(": ")
    if code == "INVALID_SESSION_ID":
        return SessionExpired(message, status=status, endpoint=endpoint)
    if status == 401 or code in ("invalid_grant", "invalid_client", "invalid_client_id"):
        return AuthError(message, status=status, endpoint=endpoint)
    if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
        return RateLimitedError(message, status=status, endpoint=endpoint, policy=code or None)
    if code in FATAL_QUERY_CODES:
        return FatalAPIError(message, status=status, endpoint=endpoint)
    if status >= 500 or status == 408:
        return RetriableAPIError(message, status=status, endpoint=endpoint)
    return FatalAPIError(message, status=status, endpoint=endpoint)
