"""What ``closedloop doctor`` asks HubSpot: the token's scopes and which properties exist.

One call each, through the official SDK, without retries or rate limiting: a doctor wants a
quick answer, and these calls cost a handful against a daily limit of 250,000.  The scopes come
from HubSpot's private-app token introspection (``POST /oauth/v2/private-apps/get/access-token-info``
with ``{"tokenKey": TOKEN}``, answering ``{"userId", "hubId", "appId", "scopes": [...]}``); the SDK
has no generated method for it, so it goes through the generated ``ApiClient`` of the properties
API, the same urllib3 pool as every other call.  Errors leave as closedloop's, naming the host.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import urllib3.exceptions
from hubspot import HubSpot

from closedloop.connectors.hubspot.errors import translate_hubspot_error
from closedloop.errors import MalformedResponseError, RetriableAPIError

TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
# What a run needs: read contacts and deals, write closedloop's properties, create them.
REQUIRED_SCOPES: tuple[str, ...] = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
)


class HubSpotCheck:
    """The doctor's questions to one HubSpot account."""

    def __init__(self, *, base_url: str, token: str, timeout_s: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._token = token
        self._timeout = timeout_s
        properties = HubSpot(access_token=token, host=self.base_url).crm.properties
        self._core = properties.core_api
        self._groups = properties.groups_api

    def scopes(self) -> set[str]:
        """The scopes HubSpot granted this private-app token."""
        raw = self._call(
            TOKEN_INFO_PATH,
            lambda: self._core.api_client.call_api(
                TOKEN_INFO_PATH,
                "POST",
                # HubSpot reads the token from the body; the bearer header is what every call sends.
                header_params={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "Authorization": f"Bearer {self._token}",
                },
                body={"tokenKey": self._token},
                auth_settings=[],
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )
        try:
            data = json.loads(raw.data)
            return {str(scope) for scope in data["scopes"]}
        except (ValueError, TypeError, KeyError):
            raise MalformedResponseError(
                f"HubSpot at {self.host}: {TOKEN_INFO_PATH} answered without a scopes list", endpoint=TOKEN_INFO_PATH
            ) from None

    def property_names(self, object_type: str) -> set[str]:
        endpoint = f"GET /crm/v3/properties/{object_type}"
        answer = self._call(endpoint, lambda: self._core.get_all(object_type, _request_timeout=self._timeout))
        return {str(p.name) for p in answer.results or []}

    def group_names(self, object_type: str) -> set[str]:
        endpoint = f"GET /crm/v3/properties/{object_type}/groups"
        answer = self._call(endpoint, lambda: self._groups.get_all(object_type, _request_timeout=self._timeout))
        return {str(g.name) for g in answer.results or []}

    def _call(self, endpoint: str, fn: Any) -> Any:
        try:
            return fn()
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RetriableAPIError(
                f"cannot reach HubSpot at {self.host} ({type(reason).__name__}); "
                "check hubspot.base_url and the network",
                endpoint=endpoint,
            ) from None
        except Exception as exc:
            error = translate_hubspot_error(exc, endpoint)
            if error is None:
                raise
            raise error from None


def missing_scopes(granted: set[str], required: tuple[str, ...] = REQUIRED_SCOPES) -> list[str]:
    return [scope for scope in required if scope not in granted]

