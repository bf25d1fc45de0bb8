"""One place that builds the SDK client and the API objects closedloop keeps.

Each attribute access on the SDK (``client.crm.contacts.basic_api``) builds a new API client,
so the objects are built once here and reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from hubspot import HubSpot

from closedloop.connectors.calls import ApiCallLog, Caller, Limiter
from closedloop.connectors.hubspot.errors import translate_hubspot_error
from closedloop.errors import MalformedResponseError


class HubSpotClient:
    def __init__(
        self,
        *,
        base_url: str,
        token_provider: Callable[[], str],
        log: ApiCallLog,
        timeout_s: float = 30.0,
        max_retries: int = 6,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token_provider = token_provider
        self.timeout_s = timeout_s
        self.caller = Caller(
            "hubspot",
            log,
            partial(translate_hubspot_error, host=urlsplit(self._base_url).netloc or self._base_url),
            max_retries=max_retries,
            limiter=limiter,
            refresh_credentials=self._refresh_token,
            sleep=sleep,
        )
        self._build()

    def _build(self) -> None:
        sdk = HubSpot(access_token=self._token_provider(), host=self._base_url)
        crm = sdk.crm
        self.contacts_search = crm.contacts.search_api
        self.contacts_batch = crm.contacts.batch_api
        self.deals_search = crm.deals.search_api
        self.deals_basic = crm.deals.basic_api
        self.contacts_basic = crm.contacts.basic_api  # the archived listing (deletions)
        self.deals_batch = crm.deals.batch_api
        self.properties = crm.properties.core_api
        self.property_groups = crm.properties.groups_api
        self.pipelines = crm.pipelines.pipelines_api
        self.associations = crm.associations.v4.batch_api

    def _refresh_token(self) -> None:
        """Put the new token into the API objects already built: a retry after a 401 calls the
        bound method it was given, so rebuilding the objects would leave it on the old token."""
        token = self._token_provider()
        for api in (
            self.contacts_search,
            self.contacts_batch,
            self.deals_search,
            self.deals_basic,
            self.contacts_basic,
            self.deals_batch,
            self.properties,
            self.property_groups,
            self.pipelines,
            self.associations,
        ):
            api.api_client.configuration.access_token = token

    def search_api(self, object_type: str) -> Any:
        return self.contacts_search if object_type == "contacts" else self.deals_search

    def batch_api(self, object_type: str) -> Any:
        return self.contacts_batch if object_type == "contacts" else self.deals_batch

    def call(self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call an SDK ``*_with_http_info`` method; returns its data, counts its real status."""
        result = self.caller.call(
            endpoint,
            fn,
            *args,
            _request_timeout=self.timeout_s,
            status_of=lambda r: int(r[1]),
            headers_of=lambda r: dict(r[2] or {}),
            **kwargs,
        )
        return result

    def call_data(self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.call(endpoint, fn, *args, **kwargs)[0]

    def call_json(self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The same call, answered as plain JSON instead of SDK models.

        The SDK still builds and sends the request; only its model deserialization (dateutil on
        every timestamp of every record) is skipped, which is most of a bulk pull's CPU time.
        """

        return self.call_json_status(endpoint, fn, *args, **kwargs)[0]

    def call_json_status(
        self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[dict[str, Any], int]:
        """``call_json`` with the HTTP status (a batch write answers 200 or 207)."""

        def raw(*a: Any, **kw: Any) -> Any:
            response = fn(*a, _preload_content=False, **kw)
            try:
                headers = dict(response.headers)
                return decode_json_object(response.data, headers, endpoint), response.status, headers
            finally:
                response.release_conn()

        data, status, _headers = self.call(endpoint, raw, *args, **kwargs)
        return data, int(status)


def decode_json_object(raw: bytes | None, headers: dict[str, str], endpoint: str) -> dict[str, Any]:
    """A successful answer's body as a JSON object, or MalformedResponseError (retried by the
    caller, then the stream's failure): an HTML page, another content type, bytes that are not
    UTF-8, JSON cut short, or a body that is ``null`` or not an object are not answers."""
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if raw and kind and "json" not in kind.lower():
        raise MalformedResponseError(
            f"HubSpot {endpoint} answered with content type {kind.split(';')[0]!r}, not JSON", endpoint=endpoint
        )
    try:
        data = json.loads((raw or b"{}").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedResponseError(
            f"HubSpot {endpoint} answered with bytes that are not UTF-8 (at byte {exc.start})", endpoint=endpoint
        ) from None
    except ValueError as exc:
        message = f"HubSpot {endpoint} answered with broken JSON: {exc}"
        raise MalformedResponseError(message, endpoint=endpoint) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"HubSpot {endpoint} answered with a JSON {type(data).__name__}, not an object", endpoint=endpoint
        )
    return data
