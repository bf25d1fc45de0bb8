"""An unreachable service is named with its host and the setting to check, for every connector."""

from __future__ import annotations

import requests
import urllib3

from closedloop.connectors.ga4.errors import translate_ga4_error
from closedloop.connectors.hubspot.errors import translate_hubspot_error
from closedloop.connectors.salesforce.errors import translate as translate_salesforce_error
from closedloop.errors import RetriableAPIError


def test_hubspot_transport_error_names_the_host_and_the_setting() -> None:
    exc = urllib3.exceptions.MaxRetryError(None, "/crm/v3/objects/contacts/search", reason=ConnectionRefusedError())
    error = translate_hubspot_error(exc, "POST /crm/v3/objects/contacts/search", host="hubspot.internal:8443")
    assert isinstance(error, RetriableAPIError)
    assert "cannot reach HubSpot at hubspot.internal:8443" in str(error) and "hubspot.base_url" in str(error)


def test_ga4_transport_error_names_the_host_and_the_setting() -> None:
    error = translate_ga4_error(ConnectionError("refused"), "POST runReport", host="ga4.internal:9000")
    assert isinstance(error, RetriableAPIError)
    assert "cannot reach GA4 at ga4.internal:9000" in str(error) and "ga4.base_url" in str(error)


def test_salesforce_transport_error_names_the_host_it_was_sent_to() -> None:
    request = requests.Request("GET", "https://acme.my.salesforce.com/services/data/v59.0/query").prepare()
    error = translate_salesforce_error(requests.ConnectionError("refused", request=request), "GET query")
    assert isinstance(error, RetriableAPIError)
    assert "cannot reach Salesforce at acme.my.salesforce.com" in str(error) and "salesforce.login_url" in str(error)
