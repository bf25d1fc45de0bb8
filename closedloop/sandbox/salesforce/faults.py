"""Salesforce-shaped faults for ``closedloop.sandbox.faults.FaultPlan`` rules.

The generic rules (``drop_connection``, ``slow``) work as they are; these answer with
Salesforce's JSON-array bodies instead of HubSpot's.  Per-record failures (a validation rule,
a locked row) are injected on the state with ``SalesforceState.fail_records``, so collections
and Bulk 2.0 both honour them; session expiry is ``SalesforceState.expire_sessions``.
"""

from __future__ import annotations

from collections.abc import Callable

from closedloop.sandbox.faults import Forward, Rule
from closedloop.sandbox.salesforce.errors import SESSION_EXPIRED, error_response
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.server import Request, Response

_SERVER_ERRORS = {500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
                        "contact support: 1234567890-12345 (-1234567890)"),
                  502: ("SERVER_UNAVAILABLE", "Bad gateway"),
                  503: ("SERVER_UNAVAILABLE", "Server is unavailable, please try again later"),
                  504: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long, and has been stopped.")}


def server_error(status: int, n: int, *, endpoint: str = "*", skip: int = 0) -> Rule:
    """``n`` answers of ``status`` (500/502/503/504) with Salesforce's error array."""
    code, message = _SERVER_ERRORS[status]
    return Rule(lambda _request, _fwd: error_response(status, code, message),
                endpoint=endpoint, skip=skip, times=n, name=f"sf_server_error_{status}")


def concurrent_limit(n: int, *, endpoint: str = "*", skip: int = 0) -> Rule:
    """``n`` refusals for too many concurrent long requests: 403 REQUEST_LIMIT_EXCEEDED, a transient one
    (unlike the daily allocation, which ``SalesforceState.set_daily_limit`` spends)."""
    return Rule(lambda _request, _fwd: error_response(403, "REQUEST_LIMIT_EXCEEDED",
                                                      "ConcurrentPerOrgLongTxn Limit exceeded."),
                endpoint=endpoint, skip=skip, times=n, name="sf_concurrent_limit")


def expire_sessions_after(state: SalesforceState, k: int, *, endpoint: str = "*",
                          on_expire: Callable[[], object] | None = None) -> Rule:
    """At the ``k+1``-th matching request every session expires; that request gets the 401."""

    def act(_request: Request, _forward: Forward) -> Response:
        state.expire_sessions()
        if on_expire is not None:
            on_expire()
        return error_response(401, "INVALID_SESSION_ID", SESSION_EXPIRED)

    return Rule(act, endpoint=endpoint, skip=k, times=1, name="sf_session_expired")
