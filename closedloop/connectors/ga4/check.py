"""What ``closedloop doctor`` asks GA4: can these credentials read the property, and does it
register the client-id custom dimension?

One ``getMetadata`` call (``GET /v1beta/properties/{id}/metadata``) through the official SDK
answers both: it is refused (403) without access to the property, and it lists the property's
custom dimensions (``customUser:...``, ``customEvent:...``) beside the universal ones.  No
retries: a doctor wants a quick answer.  Errors leave as closedloop's, naming the host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as gexc

from closedloop.config.models import GA4Config
from closedloop.connectors.ga4.errors import translate_ga4_error
from closedloop.connectors.ga4.source import build_ga4_client
from closedloop.errors import RetriableAPIError

METADATA_ENDPOINT = "GET /v1beta/properties/{id}/metadata"


def ga4_host(config: GA4Config) -> str:
    return urlsplit(config.base_url).netloc or config.base_url


def dimension_names(config: GA4Config, *, timeout_s: float = 15.0) -> set[str]:
    """Every dimension the property offers (custom ones included), by API name."""
    client = build_ga4_client(config)
    try:
        metadata = client.get_metadata(
            name=f"properties/{config.property_id}/metadata", retry=None, timeout=timeout_s
        )
    except (requests.ConnectionError, requests.Timeout, gexc.RetryError, ConnectionError) as exc:
        raise RetriableAPIError(
            f"cannot reach GA4 at {ga4_host(config)} ({type(exc).__name__}); check ga4.base_url and the network",
            endpoint=METADATA_ENDPOINT,
        ) from None
    except Exception as exc:
        error = translate_ga4_error(exc, METADATA_ENDPOINT)
        if error is None:
            raise
        raise error from None
    names = {d.api_name for d in metadata.dimensions}
    for dimension in metadata.dimensions:
        names.update(dimension.deprecated_api_names)
    return names
