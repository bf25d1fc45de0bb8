"""Build the configured sources and CRM writer; the only place that knows which service is which."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from closedloop.config.loader import read_secret
from closedloop.config.models import Config
from closedloop.connectors.base import CRMWriter, Source
from closedloop.connectors.calls import ApiCallLog, Limiter


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
    limiters = limiters or {}
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
        out.sources.append(HubSpotSource(client, hs))
        out.writer = HubSpotWriter(client, batch_size=config.writeback.batch_size)
    return out
