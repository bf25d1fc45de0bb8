"""Sign in to a Salesforce org the three ways servers do, and sign in again when a session expires.

simple-salesforce hard-codes ``https://{login|test}.salesforce.com`` as the token host, so a My
Domain login host (or the sandbox) is out of its reach; the OAuth token call is made here with
the injected ``requests.Session`` against ``{login_url}/services/oauth2/token``, and the SDK
is given the resulting session id and instance URL.

- ``jwt``: the OAuth 2.0 JWT bearer flow (connected app with a certificate; the usual choice
  for a server: no password, no refresh token to keep).  The assertion is RS256 with
  iss = consumer key, sub = username, aud = the login URL, exp three minutes ahead.
- ``password``: the OAuth username-password flow; the password sent is password + security
  token, with the connected app's consumer key and secret.
- ``session``: a session id (access token) obtained elsewhere, with its instance URL.  There
  is nothing to sign in with, so "renewal" reads the secret again: a sidecar that rotates the
  token file is picked up without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
import requests

from closedloop.connectors.salesforce.errors import error_items, from_status, translate
from closedloop.errors import AuthError, ClosedloopAPIError, MalformedResponseError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_ENDPOINT = "POST /services/oauth2/token"
AuthMode = Literal["jwt", "password", "session"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    instance_url: str

    def __repr__(self) -> str:  # the id is a bearer credential: never in a log or a traceback
        return f"SessionInfo(instance_url={self.instance_url!r}, session_id=<hidden>)"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a flow needs; ``secret(name)`` reads a secret when asked (from env or file), never before."""

    mode: AuthMode
    login_url: str
    secret: Callable[[str], str]
    username: str | None = None
    consumer_key: str | None = None
    private_key_file: str | None = None
    instance_url: str | None = None


class Authenticator:
    """Gets a session for the configured flow; ``sign_in`` is called at start and on each renewal."""

    def __init__(
        self,
        credentials: Credentials,
        http: requests.Session,
        *,
        now: Callable[[], datetime],
        timeout_s: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self.http = http
        self.now = now
        self.timeout_s = timeout_s
        self.sign_ins = 0

    def sign_in(self) -> SessionInfo:
        self.sign_ins += 1
        c = self.credentials
        if c.mode == "session":
            if not c.instance_url:
                raise AuthError("salesforce.instance_url is needed with auth: session")
            return SessionInfo(c.secret("access_token"), c.instance_url.rstrip("/"))
        if c.mode == "jwt":
            form = {"grant_type": JWT_GRANT, "assertion": self.assertion()}
        else:
            form = {
                "grant_type": "password",
                "client_id": _need(c.consumer_key, "consumer_key"),
                "client_secret": c.secret("consumer_secret"),
                "username": _need(c.username, "username"),
                "password": c.secret("password") + c.secret("security_token"),
            }
        return self._token(form)

    def assertion(self) -> str:
        c = self.credentials
        key_file = _need(c.private_key_file, "private_key_file")
        try:
            with open(key_file, encoding="utf-8") as handle:
                key = handle.read()
        except OSError as exc:
            raise AuthError(f"cannot read salesforce.private_key_file: {exc.strerror}") from None
        claims = {
            "iss": _need(c.consumer_key, "consumer_key"),
            "sub": _need(c.username, "username"),
            "aud": c.login_url.rstrip("/"),
            "exp": int((self.now() + timedelta(minutes=3)).timestamp()),
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"salesforce.private_key_file is not a usable RSA key ({type(exc).__name__})") from None

    def _token(self, form: dict[str, str]) -> SessionInfo:
        url = f"{self.credentials.login_url.rstrip('/')}/services/oauth2/token"
        try:
            response = self.http.post(url, data=form, timeout=self.timeout_s)
        except Exception as exc:
            ours = translate(exc, TOKEN_ENDPOINT)
            if ours is None:
                raise
            raise ours from exc
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 300:
            raise _token_error(response.status_code, body)
        if not isinstance(body, dict) or not body.get("access_token") or not body.get("instance_url"):
            raise MalformedResponseError(
                "Salesforce token answer lacks access_token/instance_url", endpoint=TOKEN_ENDPOINT
            )
        return SessionInfo(str(body["access_token"]), str(body["instance_url"]).rstrip("/"))


def _token_error(status: int, body: Any) -> ClosedloopAPIError:
    """The token endpoint answers ``{"error", "error_description"}``, not the REST array."""
    items = error_items(body)
    if status < 500 and items and "error" in items[0]:
        detail = f"{items[0].get('error')}: {items[0].get('error_description') or ''}".rstrip(": ")
        return AuthError(f"Salesforce sign-in refused: {detail}"[:400], status=status, endpoint=TOKEN_ENDPOINT)
    return from_status(status, items, TOKEN_ENDPOINT)


def _need(value: str | None, name: str) -> str:
    if not value:
        raise AuthError(f"salesforce.{name} is needed for this auth flow")
    return value
