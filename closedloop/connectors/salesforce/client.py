"""One signed-in simple-salesforce client: every call counted, usage checked, retried, renewed.

Every answer passes the ``requests.Session`` response hook, whatever part of the SDK made the
call (REST, Bulk 2.0, Tooling, the token endpoint): it is counted in the ApiCallLog by endpoint
template and its ``Sforce-Limit-Info`` recorded.  ``call(endpoint, fn)`` runs ``fn(sf)``:
before it, the usage share is checked; after a failure, the error table decides: a session that
expired is renewed once (simple-salesforce renews neither Bulk 2.0 calls nor a session it was
handed) and the call made again; a retriable failure backs off with jitter and tries again.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce

from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.auth import SessionInfo
from closedloop.connectors.salesforce.errors import SessionExpired, translate
from closedloop.connectors.salesforce.usage import UsageMeter
from closedloop.errors import AuthError, BudgetExhaustedError, ClosedloopAPIError, RateLimitedError, RetriableAPIError

T = TypeVar("T")
SERVICE = "salesforce"
_VERSION_PREFIX = re.compile(r"^/services/data/v\d+\.\d+/?")
_ID_LIKE = re.compile(r"^(?=.*\d)[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?(?:-\d+)?$")


class SignIn(Protocol):
    """Gets a session (``auth.Authenticator`` does, for each flow)."""

    def sign_in(self) -> SessionInfo: ...


def endpoint_template(method: str, url: str) -> str:
    """``GET query/{id}`` from a full URL: ids and query locators become ``{id}``, no query string."""
    path = _VERSION_PREFIX.sub("", urlsplit(url).path)
    parts = [("{id}" if _ID_LIKE.match(p) else p) for p in path.strip("/").split("/") if p]
    return f"{method.upper()} {'/'.join(parts)}"


class RetryBudget:
    """What one logical call may still do: one renewal, ``max_retries`` backed-off attempts."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self.renewed = False
        self.attempts = 0

    def absorb(self, exc: BaseException, endpoint: str, stale: Salesforce) -> None:
        """Return to retry (after renewing or sleeping); raise our error when retrying cannot help."""
        ours = translate(exc, endpoint)
        if ours is None:
            raise exc
        if isinstance(ours, SessionExpired):
            if self.renewed:
                raise AuthError(f"{ours} (after renewing the session once)", status=401, endpoint=endpoint) from exc
            self.renewed = True
            self.client.renew(stale)
            return
        if isinstance(ours, RateLimitedError) and self.client.daily_cap_reached(ours):
            raise BudgetExhaustedError(
                f"Salesforce refused {endpoint}: the org's daily API allocation is spent ({ours})", endpoint=endpoint
            ) from exc
        if not isinstance(ours, RetriableAPIError) or self.attempts >= self.client.max_retries:
            if ours is exc:
                raise ours
            raise ours from exc
        self.attempts += 1
        self.client.sleep(self.client.backoff(self.attempts))


class SalesforceClient:
    def __init__(
        self,
        authenticator: SignIn,
        http: requests.Session,
        *,
        log: ApiCallLog,
        usage: UsageMeter,
        version: str = "59.0",
        max_retries: int = 6,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.http = http
        self.log = log
        self.usage = usage
        self.version = version
        self.max_retries = max_retries
        self.sleep = sleep or time.sleep
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        self._described: dict[str, Any] = {}
        self._describe_locks: dict[str, threading.Lock] = {}
        # The token call goes through the same session, so it is counted too.
        http.hooks.setdefault("response", []).append(self._on_response)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        method = response.request.method or "GET"
        self.log.record(SERVICE, endpoint_template(method, response.request.url or ""), response.status_code)
        self.usage.observe(response.headers.get("Sforce-Limit-Info"))

    @property
    def sf(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._build(self._sign_in())
            return self._sf

    def renew(self, stale: Salesforce) -> None:
        """Sign in again, unless another thread already replaced the stale client."""
        with self._lock:
            if self._sf is stale or self._sf is None:
                self._sf = self._build(self._sign_in())

    def _sign_in(self) -> SessionInfo:
        budget = RetryBudget(self)
        budget.renewed = True  # a refused sign-in is not an expired session
        while True:
            try:
                return self.authenticator.sign_in()
            except ClosedloopAPIError as exc:
                if not isinstance(exc, RetriableAPIError) or budget.attempts >= self.max_retries:
                    raise
                budget.attempts += 1
                self.sleep(self.backoff(budget.attempts))

    def _build(self, info: SessionInfo) -> Salesforce:
        return Salesforce(
            instance_url=info.instance_url, session_id=info.session_id, session=self.http, version=self.version
        )

    def call(self, endpoint: str, fn: Callable[[Salesforce], T]) -> T:
        budget = RetryBudget(self)
        while True:
            self.usage.check(endpoint)
            sf = self.sf
            try:
                return fn(sf)
            except Exception as exc:
                budget.absorb(exc, endpoint, sf)

    def describe(self, sobject: str) -> Any:
        """``sobjects/{sobject}/describe``, once per client (a run builds one client).

        The pull's streams start together and each asked for Opportunity's fields, and the
        field check asked again: eight describes where one answers all.  Concurrent callers of
        one object wait for the first call instead of making their own.
        """
        with self._lock:
            lock = self._describe_locks.setdefault(sobject, threading.Lock())
        with lock:
            if sobject not in self._described:
                self._described[sobject] = self.call(
                    f"GET sobjects/{sobject}/describe", lambda sf: sf.restful(f"sobjects/{sobject}/describe")
                )
            return self._described[sobject]

    def forget_describe(self, sobject: str) -> None:
        """The object's fields changed (created, granted): the next ``describe`` asks again."""
        with self._lock:
            self._described.pop(sobject, None)

    def backoff(self, attempt: int) -> float:
        """Full jitter, doubling from 0.5 s, at most 30 s."""
        return self.rng.uniform(0, min(30.0, 0.5 * 2**attempt))

    def daily_cap_reached(self, exc: RateLimitedError) -> bool:
        """REQUEST_LIMIT_EXCEEDED is both the concurrent-call burst and the daily cap; tell them apart."""
        figures = self.usage.figures()
        spent = figures.allocation is not None and (figures.last_used or 0) >= figures.allocation
        return spent or "TotalRequests" in str(exc)
