"""Plain, vendor-neutral records every part shares: connectors yield them, the store upserts them.

They are vendor-neutral on purpose: HubSpot, Salesforce and GA4 all land in these shapes,
so mapping and attribution never learn where a row came from.  Datetimes are UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Auto-tagging parameters of ad platforms: the keys of every record's ``click_ids``.  Their
# presence on a landing URL says a click came from an ad, and their values are identity keys.
CLICK_ID_PARAMETERS: frozenset[str] = frozenset({
    "gclid", "gbraid", "wbraid", "dclid", "fbclid", "msclkid", "ttclid", "twclid", "li_fat_id",
})

@dataclass(frozen=True, slots=True)
class ContactRecord:
    crm_id: str
    created_at: datetime
    updated_at: datetime
    email_hash: str | None = None
    lifecycle_stage: str | None = None
    # Every GA client id the CRM holds for this contact (one per device the forms saw).
    ga_client_ids: tuple[str, ...] = ()
    # Click ids by kind: {"gclid": "...", "fbclid": "...", "msclkid": "..."}.
    click_ids: dict[str, str] = field(default_factory=dict)
    # The CRM's own first-source fields, used as an offline touch where no session matches.
    original_source: str | None = None
    original_source_detail_1: str | None = None
    original_source_detail_2: str | None = None
    # UTMs captured by the form that created the lead.
    utm: dict[str, str] = field(default_factory=dict)
    # Ids of contacts the CRM merged into this one.
    merged_ids: tuple[str, ...] = ()
    # The survivor this record itself is folded onto (a converted Salesforce Lead names its
    # Contact): the store keeps the row but marks it merged, as it does for ``merged_ids``.
    merged_into: str | None = None
    # When each lifecycle stage was entered (stage id -> UTC time), where the CRM records it.
    lifecycle_dates: dict[str, datetime] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DealRecord:
    crm_id: str
    created_at: datetime
    updated_at: datetime
    name: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    amount: float | None = None
    closed_at: datetime | None = None
    is_won: bool = False
    is_closed: bool = False
    properties: dict[str, Any] = field(default_factory=dict)
    # ISO 4217 code of ``amount`` (HubSpot deal_currency_code, Salesforce CurrencyIsoCode); None:
    # the CRM's home currency.  ``amount_home`` is the CRM's own conversion into its home
    # currency (HubSpot amount_in_home_currency), used before any rate of ours.
    currency: str | None = None
    amount_home: float | None = None
    # True: the batch carries every DealContactLink of this deal (HubSpot), so the store replaces
    # them; False: its people arrive as DealContactRole records of their own (Salesforce).
    replaces_links: bool = True


@dataclass(frozen=True, slots=True)
class DealStageEvent:
    deal_id: str
    stage: str
    entered_at: datetime
    pipeline: str | None = None


@dataclass(frozen=True, slots=True)
class DealContactLink:
    deal_id: str
    contact_id: str
    # The deal's primary person (HubSpot: the association carries the label named by
    # ``hubspot.primary_contact_label``); see ``closedloop.mapping.primary``.
    is_primary: bool = False


@dataclass(frozen=True, slots=True)
class DealContactRole:
    """A person on a deal as a record of its own (Salesforce OpportunityContactRole).

    Roles change without their deal changing, so they arrive on their own cursor, not with the
    deal: the store adds the (deal_id, contact_id) link without replacing the deal's others, and
    a role deleted in the CRM arrives as a ``DeletedRecord`` naming the same pair.
    ``is_primary`` marks the deal's primary person (one per deal).
    """

    crm_id: str
    deal_id: str
    contact_id: str
    is_primary: bool = False
    role: str | None = None


@dataclass(frozen=True, slots=True)
class OfflineTouchRecord:
    """A touch the CRM knows and the web analytics does not (a Salesforce campaign response).

    ``source``/``medium``/``campaign`` are the raw fields the YAML channel rules match, as a web
    session's are (a campaign response: source = the campaign's Type, medium = "campaign",
    campaign = its Name), so one rule set channels both.  ``key`` is unique per touch.
    """

    key: str
    contact_id: str
    occurred_at: datetime
    source: str
    medium: str
    campaign: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeletedRecord:
    """A record deleted in the CRM since the cursor: the store removes it and what hangs off it.

    ``kind`` says which table: "contact", "deal", "deal_contact_role" (then ``deal_id`` and
    ``contact_id`` name the link) or "offline_touch" (``crm_id`` is the touch's key).
    """

    kind: str
    crm_id: str
    deleted_at: datetime | None = None
    deal_id: str | None = None
    contact_id: str | None = None


@dataclass(frozen=True, slots=True)
class LiveIdSet:
    """Every id of one kind ("contact") the CRM still holds, listed whole before ``listed_at``.

    A GDPR delete (HubSpot) leaves no trace to pull: not in search, not among the archived.
    The store purges the records of that kind created before ``listed_at`` and missing here.
    """

    kind: str
    ids: frozenset[str]
    listed_at: datetime


@dataclass(frozen=True, slots=True)
class WebSessionRecord:
    """One web session of a client id, keyed by start minute and source: the one session type.

    The GA4 connector yields it from a report row, the store keeps it (``store.models.WebSession``
    is its table, with the same columns), mapping reads it back to build touchpoints, and the
    sandbox's ``SyntheticSession`` extends it with the ground truth GA4 never serves.
    """

    client_id: str
    started_at: datetime
    source: str
    medium: str
    campaign: str
    landing_page: str
    sessions: int = 1
    engaged_sessions: int = 0
    key_events: float = 0.0
    ad_cost: float | None = None
    # Click ids found on the landing URL ({"gclid": "..."}): identity keys beside the client id.
    click_ids: dict[str, str] = field(default_factory=dict)
    # ``key`` once computed (or as the store kept it); not a field of the session itself.
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        key = self._key
        if key is None:
            at = self.started_at.isoformat()  # YYYY-MM-DDTHH:MM...; sliced, far cheaper than strftime
            key = "|".join(
                (
                    self.client_id,
                    at[0:4] + at[5:7] + at[8:10] + at[11:13] + at[14:16],
                    self.source,
                    self.medium,
                    self.campaign,
                    self.landing_page,
                )
            )
            object.__setattr__(self, "_key", key)
        return key

    @classmethod
    def stored(
        cls,
        key: str,
        client_id: str,
        started_at: datetime,
        source: str,
        medium: str,
        campaign: str,
        landing_page: str,
        click_ids: dict[str, str],
    ) -> WebSessionRecord:
        """A session read back from the store with the key the store holds, so the rebuild does
        not compute 400,000 keys again (the same ones: the store wrote ``key`` from these fields).

        Only what mapping reads is passed; the metrics keep their defaults.
        """
        record = cls(client_id, started_at, source, medium, campaign, landing_page, click_ids=click_ids)
        object.__setattr__(record, "_key", key)
        return record


@dataclass(frozen=True, slots=True)
class AdCostRecord:
    """One day's imported ad cost of a source/medium/campaign (GA4 ``advertiserAdCost``).

    ``day`` is a reporting day in the property's time zone, as the ad platforms bill it; the
    channel is left to the mapping, so a rule change re-channels cost like it does sessions.
    """

    day: date
    source: str
    medium: str
    campaign: str
    cost: float
    currency: str = ""


@dataclass(frozen=True, slots=True)
class PipelineStage:
    pipeline_id: str
    pipeline_label: str
    stage_id: str
    stage_label: str
    display_order: int
    is_closed: bool
    is_won: bool


Record = (
    ContactRecord
    | DealRecord
    | DealStageEvent
    | DealContactLink
    | DealContactRole
    | OfflineTouchRecord
    | DeletedRecord
    | WebSessionRecord
    | AdCostRecord
)


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record the connector could not parse: kept with its reason, never dropped."""

    stream: str
    record_key: str
    reason: str
    payload: Any = None


@dataclass(slots=True)
class Batch:
    """What a source yields: records plus the cursor that is safe to commit once they are stored."""

    stream: str
    records: list[Any]
    cursor: dict[str, Any]
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    # Figures the source reports about the batch beside its records (GA4: pages subject to
    # thresholding, rows lost to "(other)"...); added to the stream's totals in the run record.
    counts: dict[str, int] = field(default_factory=dict)
    # (objects read so far, objects the query returns in all) where the API's answer says so at
    # no extra call (HubSpot search's total, GA4's rowCount): the progress bar's total and ETA.
    position: tuple[int, int] | None = None
