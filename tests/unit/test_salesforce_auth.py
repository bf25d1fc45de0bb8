"""The three sign-in flows at the token endpoint: what is sent, what comes back, what is refused.

The token endpoint is a transport adapter mounted on the injected ``requests.Session``; the
sandbox's integration tests drive the same flows over TLS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import BaseAdapter

from closedloop.connectors.salesforce.auth import JWT_GRANT, Authenticator, Credentials
from closedloop.errors import AuthError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LOGIN = "https://login.example.test"


class TokenEndpoint(BaseAdapter):
    def __init__(self, status: int = 200, body: object | None = None) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.status = status
        self.body = (
            body if body is not None else {"access_token": "00Dsession", "instance_url": "https://org.example:8443/"}
        )

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.url == f"{LOGIN}/services/oauth2/token"
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        self.forms.append({k: v[0] for k, v in parse_qs(raw).items()})
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.request = request
        return response

    def close(self) -> None:
        return None


def session_with(endpoint: TokenEndpoint) -> requests.Session:
    http = requests.Session()
    http.mount(LOGIN, endpoint)
    return http


def secrets(values: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda name: values[name]


def test_jwt_bearer_sends_a_signed_assertion(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    endpoint = TokenEndpoint()
    creds = Credentials("jwt", LOGIN, secrets({}), username="api@org", consumer_key="3MVG9", private_key_file=str(pem))
    info = Authenticator(creds, session_with(endpoint), now=lambda: NOW).sign_in()
    assert (info.session_id, info.instance_url) == ("00Dsession", "https://org.example:8443")
    [form] = endpoint.forms
    assert form["grant_type"] == JWT_GRANT
    claims = jwt.decode(
        form["assertion"], key.public_key(), algorithms=["RS256"], audience=LOGIN, options={"verify_exp": False}
    )
    assert claims == {"iss": "3MVG9", "sub": "api@org", "aud": LOGIN, "exp": int(NOW.timestamp()) + 180}
    assert "00Dsession" not in repr(info)


def test_password_flow_appends_the_security_token() -> None:
    endpoint = TokenEndpoint()
    values = {"password": "pw", "security_token": "TOK", "consumer_secret": "cs"}
    creds = Credentials("password", LOGIN, secrets(values), username="api@org", consumer_key="3MVG9")
    Authenticator(creds, session_with(endpoint), now=lambda: NOW).sign_in()
    assert endpoint.forms == [
        {
            "grant_type": "password",
            "client_id": "3MVG9",
            "client_secret": "cs",
            "username": "api@org",
            "password": "pwTOK",
        }
    ]


def test_refused_sign_in_is_an_auth_error_without_the_secret() -> None:
    endpoint = TokenEndpoint(400, {"error": "invalid_grant", "error_description": "authentication failure"})
    values = {"password": "hunter2", "security_token": "TOK", "consumer_secret": "cs"}
    creds = Credentials("password", LOGIN, secrets(values), username="api@org", consumer_key="3MVG9")
    with pytest.raises(AuthError) as caught:
        Authenticator(creds, session_with(endpoint), now=lambda: NOW).sign_in()
    assert "invalid_grant: authentication failure" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "TOK" not in str(caught.value)


def test_session_flow_reads_the_secret_again_on_each_sign_in() -> None:
    current = {"access_token": "first"}
    creds = Credentials("session", LOGIN, secrets(current), instance_url="https://org.example/")
    auth = Authenticator(creds, requests.Session(), now=lambda: NOW)
    assert auth.sign_in().session_id == "first"
    current["access_token"] = "rotated"
    info = auth.sign_in()
    assert (info.session_id, info.instance_url) == ("rotated", "https://org.example")
