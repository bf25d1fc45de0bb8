"""The Salesforce emulator: ``SalesforceState`` holds an org, ``SalesforceSandbox`` serves it over TLS."""

from closedloop.sandbox.salesforce.app import SalesforceSandbox
from closedloop.sandbox.salesforce.launch import start_salesforce
from closedloop.sandbox.salesforce.oauth import SF_CONSUMER_KEY, SF_CONSUMER_SECRET, SF_PASSWORD, SF_SECURITY_TOKEN
from closedloop.sandbox.salesforce.state import PERMISSION_SET, SF_USERNAME, SalesforceState

__all__ = [
    "PERMISSION_SET",
    "SF_CONSUMER_KEY",
    "SF_CONSUMER_SECRET",
    "SF_PASSWORD",
    "SF_SECURITY_TOKEN",
    "SF_USERNAME",
    "SalesforceSandbox",
    "SalesforceState",
    "start_salesforce",
]
