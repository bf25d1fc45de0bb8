"""Start the Salesforce variant of the sandbox (emulated org + GA4) around one synthetic company.

The org is filled from the same ``Company`` the HubSpot portal gets, so a run over either
computes the same totals; the config it writes needs no secret (JWT bearer with the sandbox's
connected-app key, trusting the sandbox's CA).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from closedloop.config.attribution import AttributionConfig
from closedloop.config.mapping import ChannelRule, MappingConfig
from closedloop.config.models import Config, GA4Config, SalesforceConfig, StoreConfig
from closedloop.sandbox.company import Company
from closedloop.sandbox.ga4 import GA4Sandbox
from closedloop.sandbox.launch import DEMO_MODELS, start_ga4
from closedloop.sandbox.salesforce import SF_CONSUMER_KEY, SF_USERNAME, SalesforceSandbox, start_salesforce

# Campaign responses come with source = the campaign's Type and medium "campaign"; the sandbox's
# responders are the portal's offline imports, so they land in the channel those land in.
CAMPAIGN_RULE = {
    "name": "CRM campaign responses",
    "channel": "Offline",
    "subchannel": "{campaign}",
    "when": {"field": "medium", "equals": "campaign"},
}


@dataclass(slots=True)
class RunningSalesforceSandbox:
    salesforce: SalesforceSandbox
    ga4: GA4Sandbox
    company: Company
    crm = "salesforce"

    def stop(self) -> None:
        self.salesforce.stop()
        self.ga4.stop()

    def __enter__(self) -> RunningSalesforceSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def salesforce_config(self, **overrides: Any) -> SalesforceConfig:
        values: dict[str, Any] = {
            "auth": "jwt",
            "login_url": self.salesforce.url,
            "username": SF_USERNAME,
            "consumer_key": SF_CONSUMER_KEY,
            "private_key_file": str(self.salesforce.jwt_private_key_file),
            "ca_file": str(self.salesforce.ca_file),
            "grant_field_permissions": True,
            "bulk_poll_s": 0.05,
        }
        return SalesforceConfig(**{**values, **overrides})

    def config(self, *, store_url: str, **overrides: Any) -> Config:
        """A config pointing every service at this sandbox, comparing the common models."""
        overrides.setdefault("attribution", AttributionConfig(models=DEMO_MODELS))
        overrides.setdefault("mapping", MappingConfig(channel_rules=[ChannelRule.model_validate(CAMPAIGN_RULE)]))
        return Config(
            store=StoreConfig(url=store_url),
            crm="salesforce",
            salesforce=overrides.pop("salesforce", None) or self.salesforce_config(),
            ga4=GA4Config(property_id=self.company.ga4_property_id, base_url=self.ga4.url, initial_days=400),
            **overrides,
        )

    def config_yaml(self, *, store_url: str) -> str:
        return (
            "# closedloop config for the local Salesforce sandbox (closedloop sandbox serve --crm salesforce).\n"
            "# No secret: the JWT bearer flow signs with the sandbox connected app's key.\n"
            "version: 1\n"
            f"store:\n  url: {store_url}\n"
            "crm: salesforce\n"
            "salesforce:\n"
            "  auth: jwt\n"
            f"  login_url: {self.salesforce.url}\n"
            f"  username: {SF_USERNAME}\n"
            f"  consumer_key: {SF_CONSUMER_KEY}\n"
            f"  private_key_file: {self.salesforce.jwt_private_key_file}\n"
            f"  ca_file: {self.salesforce.ca_file}\n"
            "  grant_field_permissions: true\n"
            f'ga4:\n  property_id: "{self.company.ga4_property_id}"\n  base_url: {self.ga4.url}\n'
            "  initial_days: 400\n"
            "mapping:\n"
            "  channel_rules:\n"
            f"    - name: {CAMPAIGN_RULE['name']}\n"
            f"      channel: {CAMPAIGN_RULE['channel']}\n"
            f'      subchannel: "{CAMPAIGN_RULE["subchannel"]}"\n'
            "      when: {field: medium, equals: campaign}\n"
        )


def start_salesforce_sandbox(
    company: Company,
    *,
    now: datetime,
    salesforce_port: int = 0,
    ga4_port: int = 0,
    latency: float = 0.0,
) -> RunningSalesforceSandbox:
    salesforce = start_salesforce(company, now=now, port=salesforce_port, latency=latency)
    ga4 = start_ga4(company, now=now, port=ga4_port, latency=latency)
    return RunningSalesforceSandbox(salesforce, ga4, company)
