"""``POST /oauth/v2/private-apps/get/access-token-info``: which scopes a private-app token holds.

HubSpot's introspection of a private-app token: the body ``{"tokenKey": TOKEN}``, the answer
``{"userId", "hubId", "appId", "scopes": [...]}``.  ``closedloop doctor`` reads it to name the
scopes a run needs and the token lacks.  Scopes are configurable per token (``grant``), so tests
can hand out a token without, say, ``crm.objects.contacts.write``; by default the sandbox's own
token holds every scope closedloop asks for, and a token it does not know is refused (401).
"""

from __future__ import annotations

import threading

from closedloop.sandbox.hubspot.errors import error_response
from closedloop.sandbox.server import Handler, Request, Response

PATH = "/oauth/v2/private-apps/get/access-token-info"
# Everything a closedloop run needs, plus HubSpot's own "oauth" scope every private app holds.
FULL_SCOPES: tuple[str, ...] = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
)
HUB_ID, APP_ID, USER_ID = 4_815_162, 342, 108


class TokenInfo:
    """The scopes of each token the sandbox knows."""

    def __init__(self, access_token: str, scopes: tuple[str, ...] = FULL_SCOPES) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, tuple[str, ...]] = {access_token: scopes}

    def grant(self, token: str, scopes: tuple[str, ...] | list[str]) -> None:
        """From now on ``token`` holds exactly ``scopes``."""
        with self._lock:
            self._scopes[token] = tuple(scopes)

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", PATH, self.access_token_info)]

    def access_token_info(self, request: Request, _params: dict[str, str]) -> Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        token = body.get("tokenKey") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return error_response(400, "tokenKey is required", "VALIDATION_ERROR")
        with self._lock:
            scopes = self._scopes.get(token)
        if scopes is None:  # never echo the token back
            return error_response(401, "The token is not a valid private app access token.", "INVALID_AUTHENTICATION")
        return Response(200, {"userId": USER_ID, "hubId": HUB_ID, "appId": APP_ID, "scopes": list(scopes)})

