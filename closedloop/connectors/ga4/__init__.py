"""Google Analytics 4 Data API: web sessions by GA client id, source, medium, campaign."""

from closedloop.connectors.ga4.source import GA4Source, build_ga4_client

__all__ = ["GA4Source", "build_ga4_client"]
