"""HubSpotSandbox: the HubSpot emulator on 127.0.0.1, wired from the endpoint modules.

Every route runs behind the same gate as the real API: bearer token (401, never echoing what
was sent), then the rate limiter (429 with HubSpot's body), then the handler; non-search
answers carry the X-HubSpot-RateLimit-* headers, search answers carry none, as on HubSpot.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

from closedloop.sandbox.hubspot.associations import Associations
from closedloop.sandbox.hubspot.batch import Batches
from closedloop.sandbox.hubspot.errors import correlation_id, error_response
from closedloop.sandbox.hubspot.oauth import TokenInfo
from closedloop.sandbox.hubspot.objects import ObjectReads
from closedloop.sandbox.hubspot.pipelines import Pipelines
from closedloop.sandbox.hubspot.properties import Properties
from closedloop.sandbox.hubspot.ratelimit import RateLimiter, Verdict
from closedloop.sandbox.hubspot.search import Search
from closedloop.sandbox.hubspot.state import HubSpotState
from closedloop.sandbox.hubspot.wire import BadRequest
from closedloop.sandbox.server import Handler, Request, Response, Router, SandboxServer

_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_BAD_CREDENTIALS = "Authentication credentials are not valid. Check the access token of your app."
_RATE_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HubSpotSandbox:
    def __init__(
        self,
        state: HubSpotState | None = None,
        *,
        port: int = 0,
        latency: float = 0.0,
        access_token: str = "sandbox-token",
        burst_limit: int = 100,
        burst_window_s: float = 10.0,
        daily_limit: int = 250_000,
        search_per_second: int = 5,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``clock`` drives the rate limits; ``now`` stamps writes (both injectable for tests)."""
        if not access_token:
            raise ValueError("the sandbox needs a non-empty access token")
        self.state = state if state is not None else HubSpotState()
        self._access_token = access_token
        self.limiter = RateLimiter(
            burst_limit=burst_limit,
            burst_window_s=burst_window_s,
            daily_limit=daily_limit,
            search_per_second=search_per_second,
            clock=clock,
        )
        router = Router()
        search = Search(self.state)
        self.token_info = TokenInfo(access_token)  # the doctor's scope check; ``grant`` per token
        endpoints = [
            self.token_info.routes(),
            ObjectReads(self.state, now).routes(),
            search.routes(),
            Batches(self.state, now).routes(),
            Properties(self.state, now).routes(),
            Pipelines(self.state).routes(),
            Associations(self.state, now).routes(),
        ]
        search_templates = {template for _, template, _ in search.routes()}
        for routes in endpoints:
            for method, template, handler in routes:
                is_search = template in search_templates
                router.add(method, template, self._gate(handler, is_search=is_search))
        self.server = SandboxServer(router, name="hubspot", port=port, latency=latency)
        self.url = self.server.url

    def start(self) -> HubSpotSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> HubSpotSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls_by_endpoint(self) -> dict[str, int]:
        return self.server.calls_by_endpoint()

    def _gate(self, handler: Handler, *, is_search: bool) -> Handler:
        def gated(request: Request, params: dict[str, str]) -> Response:
            refused = self._authentication_failure(request)
            if refused is not None:
                return refused
            verdict = self.limiter.admit(search=is_search)
            if not verdict.allowed:
                return self._rate_limited(verdict, is_search)
            try:
                response = handler(request, params)
            except BadRequest as exc:
                response = exc.response
            if not is_search:
                response.headers.update(verdict.headers)
            return response

        return gated

    def _authentication_failure(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            message = _NO_CREDENTIALS
        elif scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._access_token.encode()
        ):
            return None
        else:
            message = _BAD_CREDENTIALS
        return error_response(
            401,
            message,
            "INVALID_AUTHENTICATION",
            headers={"X-HubSpot-Auth-Failure": "401 Unauthorized"},
        )

    def _rate_limited(self, verdict: Verdict, is_search: bool) -> Response:
        body = {
            "status": "error",
            "message": _RATE_MESSAGES[verdict.policy],
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": verdict.policy,
        }
        return Response(429, body, {} if is_search else dict(verdict.headers))
