"""``POST /services/oauth2/token``: the password grant and the JWT bearer grant.

The JWT must be RS256-signed by the key whose certificate the connected app holds, name the
consumer key as ``iss``, the username as ``sub``, a login host as ``aud``, and not be expired;
anything else is refused with 400 and ``{"error", "error_description"}`` as Salesforce answers.
The token answer's ``instance_url`` is the sandbox itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import jwt

from closedloop.sandbox.salesforce.state import SF_USERNAME, SalesforceState
from closedloop.sandbox.salesforce.tls import TlsMaterial
from closedloop.sandbox.salesforce.wire import Route
from closedloop.sandbox.server import Request, Response

SF_PASSWORD = "sandbox-password"
SF_SECURITY_TOKEN = "SANDBOXSECURITYTOKEN"
SF_CONSUMER_KEY = "3MVG9closedloop.sandbox.consumer.key"
SF_CONSUMER_SECRET = "closedloop-sandbox-consumer-secret"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


def _refused(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


class OAuth:
    def __init__(self, state: SalesforceState, tls: TlsMaterial, url: Callable[[], str]) -> None:
        self.state = state
        self.tls = tls
        self.url = url
        self.logins = 0

    def routes(self) -> list[Route]:
        return [("POST", "/services/oauth2/token", self.token)]

    def token(self, request: Request, params: dict[str, str]) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _refused("invalid_request", "must use Content-Type: application/x-www-form-urlencoded")
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant = form.get("grant_type")
        if grant == "password":
            refused = self._password(form)
        elif grant == JWT_BEARER:
            refused = self._jwt(form.get("assertion", ""))
        else:
            refused = _refused("unsupported_grant_type", "grant type not supported")
        return refused or self._issue()

    def _password(self, form: dict[str, str]) -> Response | None:
        if not hmac.compare_digest(form.get("client_id", ""), SF_CONSUMER_KEY):
            return _refused("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(form.get("client_secret", ""), SF_CONSUMER_SECRET):
            return _refused("invalid_client", "invalid client credentials")
        good = form.get("username") == SF_USERNAME and hmac.compare_digest(
            form.get("password", ""), SF_PASSWORD + SF_SECURITY_TOKEN)
        return None if good else _refused("invalid_grant", "authentication failure")

    def _jwt(self, assertion: str) -> Response | None:
        try:
            claims = jwt.decode(assertion, self.tls.app_public_key, algorithms=["RS256"],
                                audience=[*LOGIN_AUDIENCES, self.url()],
                                options={"require": ["iss", "sub", "aud", "exp"]})
        except jwt.ExpiredSignatureError:
            return _refused("invalid_grant", "expired authorization code")
        except jwt.InvalidAudienceError:
            return _refused("invalid_grant", "audience is invalid")
        except jwt.PyJWTError:
            return _refused("invalid_grant", "invalid assertion")
        if claims.get("iss") != SF_CONSUMER_KEY:
            return _refused("invalid_client_id", "client identifier invalid")
        if claims.get("sub") != SF_USERNAME:
            return _refused("invalid_grant", "user hasn't approved this consumer")
        return None

    def _issue(self) -> Response:
        self.logins += 1
        url = self.url()
        issued_at = str(int(time.time() * 1000))
        identity = f"{url}/id/{self.state.org_id}/{self.state.user_id}"
        digest = hmac.new(SF_CONSUMER_SECRET.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        return Response(200, {
            "access_token": self.state.issue_session(), "instance_url": url, "id": identity,
            "token_type": "Bearer", "issued_at": issued_at, "signature": base64.b64encode(digest).decode(),
            "scope": "api",
        })
