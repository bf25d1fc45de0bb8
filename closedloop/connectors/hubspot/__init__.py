"""HubSpot CRM: contacts, deals, stage history, deal-contact links in; closedloop properties out."""

from closedloop.connectors.hubspot.client import HubSpotClient
from closedloop.connectors.hubspot.source import HubSpotSource
from closedloop.connectors.hubspot.writer import HubSpotWriter

__all__ = ["HubSpotClient", "HubSpotSource", "HubSpotWriter"]
