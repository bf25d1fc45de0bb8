"""The Caller: retries transient failures with backoff, honours Retry-After, refreshes auth once."""

from __future__ import annotations

import pytest

from closedloop.connectors.calls import ApiCallLog, Caller
from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)


class Boom(Exception):
    def __init__(self, status: int, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after


def translate(exc: BaseException, endpoint: str) -> ClosedloopAPIError | None:
    if not isinstance(exc, Boom):
        return None
    if exc.status == 429:
        return RateLimitedError("slow down", endpoint=endpoint, retry_after=exc.retry_after)
    if exc.status == 401:
        return AuthError("who are you", status=401, endpoint=endpoint)
    if exc.status >= 500:
        return RetriableAPIError("try later", status=exc.status, endpoint=endpoint)
    return FatalAPIError("no", status=exc.status, endpoint=endpoint)


class Flaky:
    def __init__(self, *failures: Boom):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def make(max_retries: int = 3, refresh: object = None) -> tuple[Caller, list[float], ApiCallLog]:
    sleeps: list[float] = []
    log = ApiCallLog()
    caller = Caller("svc", log, translate, max_retries=max_retries, sleep=sleeps.append, refresh_credentials=refresh)  # type: ignore[arg-type]
    return caller, sleeps, log


def test_retries_5xx_then_succeeds_and_counts_each_status() -> None:
    caller, sleeps, log = make()
    fn = Flaky(Boom(503), Boom(502))
    assert caller.call("GET /x", fn) == "ok"
    assert fn.calls == 3 and len(sleeps) == 2
    assert all(0 <= s <= 30 for s in sleeps)
    assert log.by_endpoint() == {"svc GET /x": {"200": 1, "502": 1, "503": 1}}


def test_retry_after_is_honoured_exactly() -> None:
    caller, sleeps, _ = make()
    assert caller.call("GET /x", Flaky(Boom(429, retry_after=7.5))) == "ok"
    assert sleeps == [7.5]


def test_gives_up_after_max_retries() -> None:
    caller, sleeps, _ = make(max_retries=2)
    fn = Flaky(*(Boom(500) for _ in range(5)))
    with pytest.raises(RetriableAPIError):
        caller.call("GET /x", fn)
    assert fn.calls == 3 and len(sleeps) == 2


def test_fatal_is_not_retried() -> None:
    caller, sleeps, _ = make()
    fn = Flaky(Boom(400))
    with pytest.raises(FatalAPIError):
        caller.call("GET /x", fn)
    assert fn.calls == 1 and sleeps == []


def test_401_refreshes_credentials_once_then_fails() -> None:
    refreshed: list[int] = []
    caller, _, _ = make(refresh=lambda: refreshed.append(1))
    assert caller.call("GET /x", Flaky(Boom(401))) == "ok"
    assert refreshed == [1]
    refreshed.clear()
    with pytest.raises(AuthError):
        caller.call("GET /x", Flaky(Boom(401), Boom(401)))
    assert refreshed == [1]


def test_unknown_exceptions_pass_through_untranslated() -> None:
    caller, _, _ = make()

    def bug() -> None:
        raise KeyError("a bug, not an API error")

    with pytest.raises(KeyError):
        caller.call("GET /x", bug)
