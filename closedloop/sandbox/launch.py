"""Start the whole sandbox (HubSpot + GA4) around one synthetic company, and a config for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from closedloop.config.attribution import AttributionConfig
from closedloop.config.models import Config, GA4Config, HubSpotConfig, PrivacyConfig, StoreConfig
from closedloop.sandbox.company import Company
from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState

DEMO_MODELS = ["first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay", "markov"]
SANDBOX_TOKEN = "sandbox-token"


@dataclass(slots=True)
class RunningSandbox:
    hubspot: HubSpotSandbox
    ga4: GA4Sandbox
    company: Company

    def stop(self) -> None:
        self.hubspot.stop()
        self.ga4.stop()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self, *, store_url: str, **overrides: Any) -> Config:
        """A config pointing every service at this sandbox, comparing the common models."""
        overrides.setdefault("attribution", AttributionConfig(models=DEMO_MODELS))
        if store_url.startswith("sqlite:///"):  # the email hash key beside the sandbox's store, not in the cwd
            key_file = store_url.removeprefix("sqlite:///") + ".hash_key"
            overrides.setdefault("privacy", PrivacyConfig(hash_key_file=key_file))
        return Config(
            store=StoreConfig(url=store_url),
            hubspot=HubSpotConfig(base_url=self.hubspot.url, access_token=SecretStr(SANDBOX_TOKEN)),
            ga4=GA4Config(property_id=self.company.ga4_property_id, base_url=self.ga4.url, initial_days=400),
            **overrides,
        )

    def config_yaml(self, *, store_url: str) -> str:
        return (
            "# closedloop config for the local sandbox (closedloop sandbox serve).\n"
            "# export CLOSEDLOOP_SANDBOX_TOKEN=" + SANDBOX_TOKEN + " before using it.\n"
            "version: 1\n"
            f"store:\n  url: {store_url}\n"
            "crm: hubspot\n"
            f"hubspot:\n  base_url: {self.hubspot.url}\n  access_token: ${{CLOSEDLOOP_SANDBOX_TOKEN}}\n"
            f'ga4:\n  property_id: "{self.company.ga4_property_id}"\n  base_url: {self.ga4.url}\n'
            "  initial_days: 400\n"
        )


def start_sandbox(
    company: Company,
    *,
    now: datetime,
    hubspot_port: int = 0,
    ga4_port: int = 0,
    latency: float = 0.0,
    burst_limit: int = 100,
) -> RunningSandbox:
    hubspot = start_hubspot(company, port=hubspot_port, latency=latency, burst_limit=burst_limit)
    ga4 = start_ga4(company, now=now, port=ga4_port, latency=latency)
    return RunningSandbox(hubspot, ga4, company)


def start_hubspot(company: Company, *, port: int = 0, latency: float = 0.0, burst_limit: int = 100) -> HubSpotSandbox:
    """HubSpot alone (the benchmark runs each service in a process of its own, as they are)."""
    state = HubSpotState()
    state.load_company(company)
    sandbox = HubSpotSandbox(state, port=port, latency=latency, access_token=SANDBOX_TOKEN, burst_limit=burst_limit)
    return sandbox.start()


def start_ga4(company: Company, *, now: datetime, port: int = 0, latency: float = 0.0) -> GA4Sandbox:
    state = GA4State(property_id=company.ga4_property_id, time_zone=company.ga4_time_zone)
    state.load_company(company)
    return GA4Sandbox(state, port=port, latency=latency, now=lambda: now).start()
