"""The HubSpot emulator: ``HubSpotState`` holds a portal, ``HubSpotSandbox`` serves it over HTTP."""

from closedloop.sandbox.hubspot.app import HubSpotSandbox
from closedloop.sandbox.hubspot.state import HubSpotState

__all__ = ["HubSpotSandbox", "HubSpotState"]
