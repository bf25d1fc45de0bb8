"""Composable faults for the sandbox: rules that decide, per request, whether a service misbehaves.

A ``FaultPlan`` is one ``SandboxServer.fault_hooks`` entry holding ordered ``Rule``s.  A rule
matches requests by a glob over ``"METHOD /template"`` or ``"METHOD /concrete/path"`` (so
``"POST /crm/v3/objects/contacts/search"`` and ``"POST */batch/update"`` both work), lets the
first ``skip`` matches through, then acts on the next ``times`` (``None``: for ever), optionally
only inside a time window.  Rules are tried in order and the first that fires answers; a rule
after it does not count that request.  The counting happens under one lock, so concurrent clients see a
storm of exactly ``times`` faults; the action itself (a sleep, say) runs outside the lock.

Actions answer the way each service really fails: HubSpot's JSON error bodies and rate-limit
headers, Google's ``{"error": {...}}`` with RESOURCE_EXHAUSTED/INTERNAL/UNAVAILABLE for GA4.
Some actions pass the request on to the emulator (slow answers, token rotation, partial batch
failures, a kill after the write was applied); the plan forwards through the server's own
router, so the emulator's gates (token, rate limit) still apply.  A plan can also record the
exchanges that match ``record`` patterns, which is how tests count what was written to the CRM.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from closedloop.sandbox.server import DropConnection, Request, Response, SandboxServer

Forward = Callable[[Request], Response]
# An action sees a request the rule selected, and may pass it on to the emulator with ``forward``.
Action = Callable[[Request, Forward], Response]

_GA4_PREFIXES = ("/v1beta/", "/v1alpha/", "/v1/")
_HUBSPOT_SERVER_ERRORS = {
    500: ("INTERNAL_ERROR", "Internal error"),
    502: ("BAD_GATEWAY", "Bad gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable, please try again"),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout"),
}
_GOOGLE_STATUS = {500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def is_ga4(request: Request) -> bool:
    return request.path.startswith(_GA4_PREFIXES)


def matches(pattern: str, request: Request) -> bool:
    concrete = f"{request.method} {request.path}"
    return fnmatch.fnmatchcase(request.endpoint, pattern) or fnmatch.fnmatchcase(concrete, pattern)


@dataclass(slots=True)
class Rule:
    action: Action
    endpoint: str = "*"
    skip: int = 0
    times: int | None = 1
    during: tuple[float, float] | None = None  # seconds since the plan was installed
    name: str = "fault"
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.skip < 0 or (self.times is not None and self.times < 0):
            raise ValueError("skip and times must not be negative")

    def select(self, request: Request, elapsed: float) -> bool:
        """Count a matching request; True when this one is to be faulted.  Call under the lock."""
        if not matches(self.endpoint, request):
            return False
        if self.during is not None and not (self.during[0] <= elapsed < self.during[1]):
            return False
        index = self.seen
        self.seen += 1
        if index < self.skip or (self.times is not None and index >= self.skip + self.times):
            return False
        self.fired += 1
        return True


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded request and the answer it got (status 0: the connection was dropped)."""

    endpoint: str
    path: str
    status: int
    request_body: Any
    response_body: Any


@dataclass(slots=True)
class FaultPlan:
    rules: list[Rule] = field(default_factory=list)
    record: tuple[str, ...] = ()
    clock: Callable[[], float] = time.monotonic
    exchanges: list[Exchange] = field(default_factory=list)
    _servers: list[SandboxServer] = field(default_factory=list)
    _started: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def add(self, *rules: Rule) -> FaultPlan:
        with self._lock:
            self.rules.extend(rules)
        return self

    def install(self, server: SandboxServer) -> FaultPlan:
        """Become the server's first fault hook.  One plan may serve several emulators (their
        routes do not overlap), so one set of counters sees a whole run; time windows count
        from the first install."""
        with self._lock:
            if not self._servers:
                self._started = self.clock()
            self._servers.append(server)
        server.fault_hooks.insert(0, self)
        return self

    def fired(self, name: str | None = None) -> int:
        with self._lock:
            return sum(r.fired for r in self.rules if name is None or r.name == name)

    def recorded(self, pattern: str = "*") -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if fnmatch.fnmatchcase(e.endpoint, pattern)
                    or fnmatch.fnmatchcase(e.path, pattern)]

    def __call__(self, request: Request) -> Response | None:
        with self._lock:
            elapsed = self.clock() - self._started
            chosen = next((rule for rule in self.rules if rule.select(request, elapsed)), None)
        recording = any(matches(p, request) for p in self.record)
        if chosen is None and not recording:
            return None
        try:
            response = chosen.action(request, self._forward) if chosen else self._forward(request)
        except DropConnection:
            if recording:
                self._keep(request, Response(0))
            raise
        if recording:
            self._keep(request, response)
        return response

    def _forward(self, request: Request) -> Response:
        if not self._servers:
            raise RuntimeError("install the plan on a server before it forwards requests")
        for server in self._servers:
            routed = server.router.route(request.method, request.path)
            if routed is not None:
                return routed[1](request, routed[2])
        return Response(404, {"status": "error", "message": f"No route for {request.method} {request.path}",
                              "category": "OBJECT_NOT_FOUND"})

    def _keep(self, request: Request, response: Response) -> None:
        body = response.body
        if isinstance(body, bytes):
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        exchange = Exchange(request.endpoint, f"{request.method} {request.path}", response.status,
                            _json_or_none(request.body), copy.deepcopy(body))
        with self._lock:
            self.exchanges.append(exchange)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


# ---- answers as each service gives them ------------------------------------------------------


def _hubspot_error(status: int, category: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return Response(status, body, dict(headers or {}))


def _google_error(code: int, status: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": status}}, dict(headers or {}))


def rate_limited_answer(request: Request, retry_after: float | None) -> Response:
    headers = {} if retry_after is None else {"Retry-After": _seconds_text(retry_after)}
    if is_ga4(request):
        return _google_error(429, "RESOURCE_EXHAUSTED",
                             "Exhausted property tokens per hour for this property.", headers)
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    if "/search" not in request.path:  # HubSpot's search answers carry no rate-limit headers
        headers.update({
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
        })
    return Response(429, body, headers)


def server_error_answer(request: Request, status: int) -> Response:
    if is_ga4(request):
        return _google_error(status, _GOOGLE_STATUS.get(status, "INTERNAL"), "Internal error encountered.")
    category, message = _HUBSPOT_SERVER_ERRORS.get(status, ("INTERNAL_ERROR", "Internal error"))
    return _hubspot_error(status, category, message)


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# ---- the fault kinds -------------------------------------------------------------------------


def rate_limit_storm(n: int, *, retry_after: float | None = None, endpoint: str = "*", skip: int = 0) -> Rule:
    """``n`` consecutive 429s; ``Retry-After`` only when given (HubSpot often leaves it out)."""
    return Rule(lambda request, _fwd: rate_limited_answer(request, retry_after),
                endpoint=endpoint, skip=skip, times=n, name="rate_limit")


def server_error(status: int, n: int, *, endpoint: str = "*", skip: int = 0) -> Rule:
    if status not in _HUBSPOT_SERVER_ERRORS:
        raise ValueError(f"server_error takes one of {sorted(_HUBSPOT_SERVER_ERRORS)}, not {status}")
    return Rule(lambda request, _fwd: server_error_answer(request, status),
                endpoint=endpoint, skip=skip, times=n, name=f"server_error_{status}")


def slow(seconds: float, n: int, *, endpoint: str = "*", skip: int = 0) -> Rule:
    """Answer after ``seconds``; the emulator still does the work, as a real slow server would."""

    def act(request: Request, forward: Forward) -> Response:
        time.sleep(seconds)
        return forward(request)

    return Rule(act, endpoint=endpoint, skip=skip, times=n, name="slow")


def drop_connection(n: int, *, endpoint: str = "*", skip: int = 0) -> Rule:
    def act(_request: Request, _forward: Forward) -> Response:
        raise DropConnection

    return Rule(act, endpoint=endpoint, skip=skip, times=n, name="drop_connection")


class TokenRevocation:
    """After the first ``k`` requests the old token is refused with 401.

    ``new_token`` (if any) is accepted from then on: the request is passed to the emulator as if
    it carried ``accepted_token``, the one the emulator checks.  ``on_revoke`` runs once, before the
    first request is refused, which is where a test rotates the token file the client reads.
    """

    def __init__(self, new_token: str | None, accepted_token: str, on_revoke: Callable[[], object] | None) -> None:
        self.new_token = new_token
        self.accepted_token = accepted_token
        self.on_revoke = on_revoke
        self.refused = 0
        self._lock = threading.Lock()
        self._revoked = False

    def __call__(self, request: Request, forward: Forward) -> Response:
        with self._lock:
            # The new token is in place before any request is refused, as in a real rotation: a
            # client refreshing on another thread's 401 must never read a half-written token file.
            if not self._revoked and self.on_revoke is not None:
                self.on_revoke()
            self._revoked = True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if self.new_token is not None and scheme.lower() == "bearer" and token.strip() == self.new_token:
            headers = {**request.headers, "authorization": f"Bearer {self.accepted_token}"}
            return forward(replace(request, headers=headers))
        with self._lock:
            self.refused += 1
        return _hubspot_error(401, "INVALID_AUTHENTICATION",
                              "Authentication credentials are not valid. Check the access token of your app.",
                              {"X-HubSpot-Auth-Failure": "401 Unauthorized"})


def revoke_token_after(
    k: int,
    *,
    new_token: str | None = None,
    accepted_token: str = "sandbox-token",
    on_revoke: Callable[[], object] | None = None,
    endpoint: str = "*",
) -> Rule:
    """401 from the ``k+1``-th request on; without ``new_token`` the revocation never heals."""
    return Rule(TokenRevocation(new_token, accepted_token, on_revoke),
                endpoint=endpoint, skip=k, times=None, name="revoked_token")


class PartialBatchFailure:
    """Fail the named ids of a batch update for their first ``times`` attempts, with a 207.

    The other inputs go to the emulator and are really written; the answer merges their
    results with one error entry naming the failed ids in ``context.ids``, as HubSpot does.
    """

    def __init__(self, ids: Iterable[str], times: int, category: str, message: str) -> None:
        self.ids = frozenset(str(i) for i in ids)
        self.times = times
        self.category = category
        self.message = message
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Request, forward: Forward) -> Response:
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            return forward(request)
        failing: list[str] = []
        with self._lock:
            for item in inputs:
                oid = str(item.get("id", "")) if isinstance(item, dict) else ""
                if oid in self.ids:
                    self.attempts[oid] += 1
                    if self.attempts[oid] <= self.times:
                        failing.append(oid)
        if not failing:
            return forward(request)
        kept = [i for i in inputs if str(i.get("id", "")) not in failing]
        if kept:
            answer = forward(replace(request, body=json.dumps({**body, "inputs": kept}).encode()))
            if answer.status not in (200, 207):
                return answer
            merged = dict(answer.body) if isinstance(answer.body, dict) else {}
        else:
            answer = Response(200, {})
            merged = {"status": "COMPLETE", "results": []}
        errors = list(merged.get("errors", []))
        errors.append({"status": "error", "category": self.category, "message": self.message,
                       "context": {"ids": failing}, "errors": [], "links": {}})
        merged.update(numErrors=len(errors), errors=errors)
        merged.setdefault("results", [])
        return Response(207, merged, dict(answer.headers))


def partial_failure(
    ids: Collection[str],
    times: int,
    *,
    endpoint: str = "POST */batch/update",
    category: str = "VALIDATION_ERROR",
    message: str = "Injected failure: this record could not be updated.",
) -> Rule:
    """A 207 naming ``ids`` on their first ``times`` batch-update attempts; the rest is written."""
    return Rule(PartialBatchFailure(ids, times, category, message),
                endpoint=endpoint, times=None, name="partial_failure")


def kill_process(
    pid_getter: Callable[[], int | None],
    *,
    on_nth_request_of: str,
    n: int = 1,
    after_apply: bool = False,
    sig: int = signal.SIGKILL,
) -> Rule:
    """Kill the client process at its ``n``-th request to ``on_nth_request_of``.

    ``after_apply=False``: the request is never served (killed while waiting).  ``True``: the
    emulator applies it first, then the client dies before it reads the answer, the window in
    which a write has happened but the writer cannot know.
    """

    def act(request: Request, forward: Forward) -> Response:
        answer = forward(request) if after_apply else None
        pid = pid_getter()
        if pid is not None:
            os.kill(pid, sig)
        if answer is None:
            raise DropConnection
        return answer

    if n < 1:
        raise ValueError("n counts from 1")
    return Rule(act, endpoint=on_nth_request_of, skip=n - 1, times=1, name="kill_process")
