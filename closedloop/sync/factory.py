"""Build the configured sources and CRM writer; the only place that knows which service is which."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from closedloop.config.hashkey import resolve_hash_key
from closedloop.config.loader import read_secret
from closedloop.config.models import Config, HubSpotConfig
from closedloop.connectors.base import CRMWriter, Source
from closedloop.connectors.calls import ApiCallLog, Limiter
from closedloop.connectors.hashing import use_hash_key
from closedloop.connectors.ratelimit.ga4 import GA4Limiter
from closedloop.connectors.ratelimit.hubspot import HUBSPOT_TIERS, HubSpotLimiter


@dataclass(slots=True)
class Connectors:
    sources: list[Source] = field(default_factory=list)
    writer: CRMWriter | None = None
    log: ApiCallLog = field(default_factory=ApiCallLog)


def build_connectors(
    config: Config,
    *,
    limiters: dict[str, Limiter] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Connectors:
    """``limiters`` replaces the configured limiter of each service it names; ``sleep`` is for retries."""
    limiters = {**default_limiters(config), **(limiters or {})}  # real clock, so real sleeps
    use_hash_key(resolve_hash_key(config.privacy.hash_key_file))  # before any parser hashes an email
    out = Connectors()
    if config.ga4 is not None:
        from closedloop.connectors.ga4 import GA4Source

        out.sources.append(GA4Source(config.ga4, out.log, limiter=limiters.get("ga4"), sleep=sleep))
    if config.crm == "hubspot" and config.hubspot is not None:
        from closedloop.connectors.hubspot import HubSpotClient, HubSpotSource, HubSpotWriter

        hs = config.hubspot
        client = HubSpotClient(
            base_url=hs.base_url,
            token_provider=lambda: read_secret(hs.access_token, hs.access_token_file, what="hubspot.access_token"),
            log=out.log,
            timeout_s=hs.timeout_s,
            max_retries=hs.max_retries,
            limiter=limiters.get("hubspot"),
            sleep=sleep,
        )
        stages = list(config.mapping.milestones.lifecycle_stages)
        hours = config.privacy.reconcile_hours
        reconcile = None if hours is None else timedelta(hours=hours)
        from closedloop.sync.properties import owned_names

        owned = owned_names(config.writeback.property_prefix, config.attribution.primary_model)
        out.sources.append(
            HubSpotSource(client, hs, lifecycle_stages=stages, reconcile_every=reconcile, writeback_properties=owned)
        )
        out.writer = HubSpotWriter(client, batch_size=config.writeback.batch_size)
    if config.crm == "salesforce" and config.salesforce is not None:
        from closedloop.connectors.salesforce.build import build_salesforce
        from closedloop.sync.properties import owned_names

        parts = build_salesforce(
            config.salesforce,
            log=out.log,
            property_prefix=config.writeback.property_prefix,
            sleep=sleep,
            batch_size=config.writeback.batch_size,
            writeback_properties=owned_names(config.writeback.property_prefix, config.attribution.primary_model),
        )
        out.sources.append(parts.source)
        out.writer = parts.writer
    return out


def hubspot_limiter(
    config: HubSpotConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> HubSpotLimiter:
    burst, daily = HUBSPOT_TIERS[config.tier]
    return HubSpotLimiter(
        burst_limit=config.burst_limit or burst,
        daily_limit=daily,
        search_per_second=config.search_per_second,
        margin=config.rate_limit_margin,
        burst_margin=config.burst_margin,
        search_counts_toward_burst=config.search_counts_toward_burst,
        clock=clock,
        sleep=sleep or time.sleep,
    )


def default_limiters(
    config: Config,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Limiter]:
    """One limiter per configured service; the connectors of one run share them."""
    out: dict[str, Limiter] = {}
    if config.hubspot is not None:
        out["hubspot"] = hubspot_limiter(config.hubspot, clock=clock, sleep=sleep)
    if config.ga4 is not None:
        out["ga4"] = GA4Limiter(clock=clock, sleep=sleep or time.sleep)
    return out
