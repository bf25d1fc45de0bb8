"""The sandbox's OAuth token endpoint, driven by simple-salesforce's own JWT and password logins.

simple-salesforce posts to https://login.salesforce.com; the sandbox's requests session sends
that host to the sandbox, so the unmodified client does the whole flow over TLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from closedloop.sandbox.salesforce import (
    SF_CONSUMER_KEY,
    SF_CONSUMER_SECRET,
    SF_PASSWORD,
    SF_SECURITY_TOKEN,
    SF_USERNAME,
    SalesforceSandbox,
)
from closedloop.sandbox.salesforce.tls import make_key_pair


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as running:
        yield running


def _jwt_login(sandbox: SalesforceSandbox, **overrides: object) -> Salesforce:
    arguments: dict[str, object] = {"username": SF_USERNAME, "consumer_key": SF_CONSUMER_KEY,
                                    "privatekey_file": str(sandbox.jwt_private_key_file),
                                    "session": sandbox.requests_session()}
    arguments.update(overrides)
    return Salesforce(**arguments)  # type: ignore[arg-type]


def _token(sandbox: SalesforceSandbox, claims: dict[str, object], key: bytes | None = None) -> tuple[int, dict]:
    key = key if key is not None else sandbox.jwt_private_key_file.read_bytes()
    assertion = jwt.encode(claims, key, algorithm="RS256")
    answer = sandbox.requests_session().post(f"{sandbox.url}/services/oauth2/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    return answer.status_code, answer.json()


def _claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {"iss": SF_CONSUMER_KEY, "sub": SF_USERNAME, "aud": "https://login.salesforce.com",
                                 "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp())}
    claims.update(overrides)
    return claims


def test_jwt_bearer_login_reaches_the_instance_and_renews_an_expired_session(sandbox: SalesforceSandbox) -> None:
    sf = _jwt_login(sandbox)
    assert f"https://{sf.sf_instance}" == sandbox.url
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1
    first = sf.session_id
    sandbox.state.expire_sessions()
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1  # the 401 body told it to log in again
    assert sf.session_id != first and sandbox.oauth.logins == 2


def test_token_answer_has_salesforce_shape_and_a_verifiable_signature(sandbox: SalesforceSandbox) -> None:
    status, body = _token(sandbox, _claims())
    assert status == 200
    assert body["instance_url"] == sandbox.url and body["token_type"] == "Bearer"
    assert body["id"] == f"{sandbox.url}/id/{sandbox.state.org_id}/{sandbox.state.user_id}"
    digest = hmac.new(SF_CONSUMER_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert base64.b64decode(body["signature"]) == digest
    assert sandbox.state.session_valid(body["access_token"])


def test_jwt_signed_by_another_key_is_refused(sandbox: SalesforceSandbox) -> None:
    other_key, _ = make_key_pair("someone else")
    path = sandbox.jwt_private_key_file.with_name("other.key")
    path.write_bytes(other_key)
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        _jwt_login(sandbox, privatekey_file=str(path))
    assert (caught.value.code, caught.value.auth_message) == ("invalid_grant", "invalid assertion")
    assert sandbox.oauth.logins == 0


def _five_minutes_ago() -> int:
    return int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())


# Claims are built when the test runs, not when it is collected: an "exp" fixed at collection
# expires during a long suite, and every case would then be refused as expired.
@pytest.mark.parametrize(("overrides", "error"), [
    (lambda: {"exp": _five_minutes_ago()}, "invalid_grant"),
    (lambda: {"aud": "https://evil.example.com"}, "invalid_grant"),
    (lambda: {"iss": "someone-else"}, "invalid_client_id"),
    (lambda: {"sub": "nobody@example.com"}, "invalid_grant"),
])
def test_jwt_claims_are_checked(
    sandbox: SalesforceSandbox, overrides: Callable[[], dict[str, object]], error: str
) -> None:
    status, body = _token(sandbox, _claims(**overrides()))
    assert status == 400 and body["error"] == error and body["error_description"]


def test_password_grant_needs_password_plus_security_token(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(username=SF_USERNAME, password=SF_PASSWORD + SF_SECURITY_TOKEN, consumer_key=SF_CONSUMER_KEY,
                    consumer_secret=SF_CONSUMER_SECRET, session=sandbox.requests_session())
    assert sf.query("SELECT Username FROM User")["records"][0]["Username"] == SF_USERNAME
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=SF_USERNAME, password=SF_PASSWORD, consumer_key=SF_CONSUMER_KEY,
                   consumer_secret=SF_CONSUMER_SECRET, session=sandbox.requests_session())
    assert (caught.value.code, caught.value.auth_message) == ("invalid_grant", "authentication failure")
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=SF_USERNAME, password=SF_PASSWORD + SF_SECURITY_TOKEN, consumer_key=SF_CONSUMER_KEY,
                   consumer_secret="wrong", session=sandbox.requests_session())
    assert caught.value.code == "invalid_client"


def test_unknown_grant_type_is_refused(sandbox: SalesforceSandbox) -> None:
    answer = sandbox.requests_session().post(f"{sandbox.url}/services/oauth2/token",
                                             data={"grant_type": "client_credentials"})
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"
