"""SalesforceSandbox: the emulated org on https://127.0.0.1:PORT, wired from the endpoint modules.

One URL is both the login host (``/services/oauth2/token``) and the instance.  Every API route
runs behind the gate a real org applies: the session (401 INVALID_SESSION_ID, REST and Bulk 2.0
alike), then the daily allocation (403 REQUEST_LIMIT_EXCEEDED once spent), then the handler;
each answer but the versions list carries ``Sforce-Limit-Info: api-usage=N/M``.  Errors are
always the JSON array, including a handler's own failure (500 UNKNOWN_EXCEPTION).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from closedloop.sandbox.salesforce.bulk2 import Bulk2
from closedloop.sandbox.salesforce.collections import Collections
from closedloop.sandbox.salesforce.errors import LIMIT_EXCEEDED, SESSION_EXPIRED, SalesforceError, error_response
from closedloop.sandbox.salesforce.limits import Limits, versions
from closedloop.sandbox.salesforce.oauth import LOGIN_AUDIENCES, OAuth
from closedloop.sandbox.salesforce.query import Queries
from closedloop.sandbox.salesforce.sobjects import SObjects
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.tls import TlsMaterial
from closedloop.sandbox.salesforce.tooling import Tooling
from closedloop.sandbox.server import Handler, Request, Response, Router, SandboxServer


class SalesforceSandbox:
    def __init__(self, state: SalesforceState | None = None, *, port: int = 0, latency: float = 0.0,
                 bulk_polls_in_progress: int = 1) -> None:
        self.state = state if state is not None else SalesforceState()
        self.tls = TlsMaterial()
        self.router = Router()
        self.templates: list[tuple[str, str]] = []  # (method, path template) of every route served
        self.oauth = OAuth(self.state, self.tls, lambda: self.url)
        self.bulk2 = Bulk2(self.state, polls_in_progress=bulk_polls_in_progress)
        for method, template, handler in self.oauth.routes():
            self._add(method, template, handler)
        for path in ("/services/data", "/services/data/"):
            self._add("GET", path, lambda r, p: versions(self.url))
        endpoints = [Queries(self.state).routes(), SObjects(self.state).routes(), Collections(self.state).routes(),
                     self.bulk2.routes(), Tooling(self.state).routes(), Limits(self.state).routes()]
        for routes in endpoints:
            for method, template, handler in routes:
                self._add(method, template, self._gate(handler))
        self.server = SandboxServer(self.router, name="salesforce", port=port, latency=latency,
                                    tls=self.tls.server_context())
        self.server.fault_hooks.append(self._unrouted)
        self.url = self.server.url

    def _add(self, method: str, template: str, handler: Handler) -> None:
        self.router.add(method, template, handler)
        self.templates.append((method, template))

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> SalesforceSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.tls.close()

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what clients need ---------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def jwt_private_key_file(self) -> Path:
        return self.tls.jwt_private_key_file

    def requests_session(self, *, redirect_login: bool = True) -> requests.Session:
        """A session trusting the sandbox's CA (and nothing from the environment: no proxies).

        With ``redirect_login``, requests to login.salesforce.com / test.salesforce.com reach the
        sandbox instead, so simple-salesforce's own login flows (hard-coded to those hosts) work.
        """
        session = requests.Session()
        session.verify = str(self.tls.ca_file)
        session.trust_env = False
        if redirect_login:
            for host in LOGIN_AUDIENCES:
                session.mount(host, _Redirect(host, self.url))
        return session

    def issue_session(self) -> str:
        """A valid session id for the "session id + instance URL" flow."""
        return self.state.issue_session()

    def calls_by_endpoint(self) -> dict[str, int]:
        return self.server.calls_by_endpoint()

    # ---- the gate ------------------------------------------------------------------------

    def _gate(self, handler: Handler) -> Handler:
        def gated(request: Request, params: dict[str, str]) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() not in ("bearer", "oauth") or not self.state.session_valid(token.strip()):
                response = error_response(401, "INVALID_SESSION_ID", SESSION_EXPIRED)
            elif not self.state.count_call():
                response = error_response(403, "REQUEST_LIMIT_EXCEEDED", LIMIT_EXCEEDED)
            else:
                try:
                    response = handler(request, params)
                except SalesforceError as exc:
                    response = exc.response()
                except Exception as exc:  # an emulator bug answers as Salesforce's own failures do
                    response = error_response(500, "UNKNOWN_EXCEPTION", f"sandbox error: {exc!r}")
            response.headers["Sforce-Limit-Info"] = self.state.limit_info()
            return response

        return gated

    def _unrouted(self, request: Request) -> Response | None:
        if self.router.route(request.method, request.path) is not None:
            return None
        return error_response(404, "NOT_FOUND", "The requested resource does not exist")


class _Redirect(HTTPAdapter):
    """Sends a request for ``host`` to the sandbox's URL instead (the path and body unchanged)."""

    def __init__(self, host: str, target: str) -> None:
        super().__init__()
        self.host = host
        self.target = target

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url and request.url.startswith(self.host):
            request.url = self.target + request.url[len(self.host):]
        return super().send(request, *args, **kwargs)
