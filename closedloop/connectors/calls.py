"""Every remote call goes through a ``Caller``: counted by endpoint and status, retried, paced.

Retries follow the design: tenacity with jittered exponential backoff, honouring the wait a
429 names; 401 gets one credential refresh, then it is fatal.  The caller knows nothing about a
vendor: each connector hands it a ``translate`` function that turns SDK exceptions into ours.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    RateLimitedError,
    RetriableAPIError,
)

T = TypeVar("T")
WARNING_EXAMPLES = 3  # examples kept per kind of warning
Translate = Callable[[BaseException, str], ClosedloopAPIError | None]


class ApiCallLog:
    """Thread-safe tally of calls: ``{"hubspot POST /crm/v3/objects/contacts/search": {"200": 3}}``."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._warnings: Counter[str] = Counter()
        self._warning_examples: dict[str, list[str]] = {}
        self._usage: dict[str, Callable[[], dict[str, Any]]] = {}

    def report_usage(self, service: str, figures: Callable[[], dict[str, Any]]) -> None:
        """A service's own account of its quota (Salesforce's daily allocation), read at the
        end of the run into the run record beside the call counts."""
        with self._lock:
            self._usage[service] = figures

    def usage(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            suppliers = dict(self._usage)
        return {service: figures() for service, figures in sorted(suppliers.items())}

    def warn(self, kind: str, example: str) -> None:
        """Something a service sent that was used, but not as it should be (a naive timestamp,
        an empty pipelines answer): counted by kind in the run record, the first few kept."""
        with self._lock:
            self._warnings[kind] += 1
            examples = self._warning_examples.setdefault(kind, [])
            if len(examples) < WARNING_EXAMPLES:
                examples.append(example[:200])

    def warnings(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """(count by kind, a few examples by kind) of every ``warn`` so far."""
        with self._lock:
            return dict(sorted(self._warnings.items())), {k: list(v) for k, v in self._warning_examples.items()}

    def record(self, service: str, endpoint: str, status: int | str) -> None:
        with self._lock:
            self._counts[(service, endpoint, str(status))] += 1

    def by_endpoint(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (service, endpoint, status), n in sorted(self._counts.items()):
                out.setdefault(f"{service} {endpoint}", {})[status] = n
        return out

    def total(self, *, service: str | None = None, endpoint_contains: str = "") -> int:
        with self._lock:
            return sum(
                n
                for (svc, ep, _), n in self._counts.items()
                if (service is None or svc == service) and endpoint_contains in ep
            )


class Limiter(Protocol):
    """Client-side pacing; ``acquire`` blocks until a call to ``endpoint`` may go out."""

    def acquire(self, endpoint: str) -> None: ...

    def observe(self, endpoint: str, headers: dict[str, str] | None) -> None: ...


class NoLimit:
    def acquire(self, endpoint: str) -> None:
        return None

    def observe(self, endpoint: str, headers: dict[str, str] | None) -> None:
        return None


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    return float(wait_random_exponential(multiplier=0.5, max=30)(state))


class Caller:
    def __init__(
        self,
        service: str,
        log: ApiCallLog,
        translate: Translate,
        *,
        max_retries: int = 6,
        limiter: Limiter | None = None,
        refresh_credentials: Callable[[], None] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.service = service
        self.log = log
        self.translate = translate
        self.max_retries = max_retries
        self.limiter = limiter or NoLimit()
        self.refresh_credentials = refresh_credentials
        self.sleep = sleep or time.sleep

    def call(
        self,
        endpoint: str,
        fn: Callable[..., T],
        *args: Any,
        status_of: Callable[[T], int] | None = None,
        headers_of: Callable[[T], dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> T:
        refreshed = False
        while True:
            try:
                return self._with_retries(endpoint, fn, args, kwargs, status_of, headers_of)
            except AuthError:
                if refreshed or self.refresh_credentials is None:
                    raise
                refreshed = True
                self.refresh_credentials()

    def _with_retries(
        self,
        endpoint: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        status_of: Callable[[T], int] | None,
        headers_of: Callable[[T], dict[str, str]] | None,
    ) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_wait,
            retry=retry_if_exception_type(RetriableAPIError),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._once(endpoint, fn, args, kwargs, status_of, headers_of)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _once(
        self,
        endpoint: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        status_of: Callable[[T], int] | None,
        headers_of: Callable[[T], dict[str, str]] | None,
    ) -> T:
        self.limiter.acquire(endpoint)
        try:
            result = fn(*args, **kwargs)
        except ClosedloopAPIError as exc:
            # Raised inside the call (an answer that is not one): the limiter still hears of the
            # call's end, or a concurrency slot it holds would never be given back.
            self.log.record(self.service, endpoint, exc.status or "error")
            self.limiter.observe(endpoint, None)
            raise
        except Exception as exc:
            ours = self.translate(exc, endpoint)
            if ours is None:
                raise
            self.log.record(self.service, endpoint, ours.status or type(ours).__name__)
            headers = getattr(exc, "headers", None)
            self.limiter.observe(endpoint, dict(headers) if headers else None)
            raise ours from exc
        self.log.record(self.service, endpoint, status_of(result) if status_of else 200)
        self.limiter.observe(endpoint, headers_of(result) if headers_of else None)
        return result
