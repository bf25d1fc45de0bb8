"""The synthetic company the sandbox serves: plain records, shared by every emulator.

The generator fills a ``Company``; each emulator loads the part it serves.  Times are UTC,
except ``SyntheticSpend.day``, which is a reporting day in the GA4 property's time zone because
that is the grain at which ad platforms and GA4 report cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from closedloop.records import WebSessionRecord


@dataclass(frozen=True, slots=True)
class SyntheticSession(WebSessionRecord):
    """A visit as it happened: the ``WebSessionRecord`` the GA4 connector should read back for
    it (``click_ids`` as the connector parses them off the landing URL), plus what only the
    generator knows.  It extends the one session type rather than repeating its fields."""

    # The query string of the landing URL ("utm_source=...&gclid=..."), without the "?": GA4
    # serves it in ``landingPagePlusQueryString``, and the connector reads click ids from it.
    landing_query: str = ""
    # Ground truth the emulators never serve: whose session this was ("" for anonymous
    # visitors) and the generator's channel key.  Tests and benchmarks score against them.
    contact_id: str = ""
    channel: str = ""


@dataclass(slots=True)
class SyntheticContact:
    id: str
    email: str
    created_at: datetime
    updated_at: datetime
    lifecycle_stage: str
    ga_client_ids: list[str]
    # HubSpot-style analytics source fields ("PAID_SEARCH", "ORGANIC_SEARCH", "OFFLINE", ...).
    original_source: str = "DIRECT_TRAFFIC"
    original_source_detail_1: str = ""
    original_source_detail_2: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    gclid: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SyntheticStageChange:
    stage: str
    at: datetime


@dataclass(slots=True)
class SyntheticDeal:
    id: str
    name: str
    pipeline: str
    amount: float
    created_at: datetime
    updated_at: datetime
    stage_history: list[SyntheticStageChange]  # oldest first; the last is the current stage
    contact_ids: list[str]
    closed_at: datetime | None = None
    # Multi-currency portals: the deal's ISO code (None: the portal's home currency, no code
    # served) and HubSpot's amount_in_home_currency (None: not served).  The generator leaves
    # both unset; tests set them to make the cases.
    currency: str | None = None
    amount_home: float | None = None


@dataclass(slots=True)
class SyntheticStage:
    id: str
    label: str
    display_order: int
    probability: float
    is_closed: bool


@dataclass(slots=True)
class SyntheticPipeline:
    id: str
    label: str
    stages: list[SyntheticStage]


@dataclass(slots=True)
class SyntheticSpend:
    """One paid campaign's cost on one reporting day, as an ad platform's cost import has it."""

    day: date
    channel: str
    source: str
    medium: str
    campaign: str
    cost: float


@dataclass(slots=True)
class Company:
    contacts: list[SyntheticContact] = field(default_factory=list)
    deals: list[SyntheticDeal] = field(default_factory=list)
    sessions: list[SyntheticSession] = field(default_factory=list)
    pipelines: list[SyntheticPipeline] = field(default_factory=list)
    ga4_property_id: str = "123456789"
    ga4_time_zone: str = "America/New_York"
    spend: list[SyntheticSpend] = field(default_factory=list)
    currency_code: str = "USD"
