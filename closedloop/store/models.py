"""The store's tables: raw pulled data, derived touchpoints and credits, and sync bookkeeping.

Raw data (contacts, deals, sessions, stage events, links) is kept exactly as pulled so that a
mapping change recomputes everything downstream without a new pull.  Derived tables have
natural keys so a rebuild can diff instead of churn.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Table, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from closedloop.store.types import UTCDateTime


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for bulk statements (SQLModel's stubs don't declare it)."""
    return model.__table__  # type: ignore[attr-defined]


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = _utc(index=True)
    updated_at: datetime = _utc()
    email_hash: str | None = Field(default=None, max_length=64)
    lifecycle_stage: str | None = Field(default=None, max_length=64)
    original_source: str | None = Field(default=None, max_length=64)
    original_source_detail_1: str | None = Field(default=None, max_length=512)
    original_source_detail_2: str | None = Field(default=None, max_length=512)
    utm_source: str | None = Field(default=None, max_length=512)
    utm_medium: str | None = Field(default=None, max_length=512)
    utm_campaign: str | None = Field(default=None, max_length=512)
    merged_into: str | None = Field(default=None, max_length=64, index=True)
    properties: dict[str, Any] = _json()


class ContactIdentity(SQLModel, table=True):
    """One identity key per row: a contact may have several client ids and click ids."""

    __tablename__ = "contact_identities"
    kind: str = Field(primary_key=True, max_length=32)
    value: str = Field(primary_key=True, max_length=256)
    contact_id: str = Field(primary_key=True, max_length=64, index=True)


class WebSession(SQLModel, table=True):
    """The table of ``records.WebSessionRecord``, column for column, with its ``key`` as primary key.

    A second class only because a table model must be one (SQLModel, with lengths and indexes);
    nothing outside the store builds or reads it as a record: ingest writes WebSessionRecords,
    ``sync.session_links`` reads them back as WebSessionRecords.
    """

    __tablename__ = "web_sessions"
    key: str = Field(primary_key=True, max_length=1024)
    client_id: str = Field(max_length=256, index=True)
    started_at: datetime = _utc(index=True)
    source: str = Field(default="", max_length=512)
    medium: str = Field(default="", max_length=512)
    campaign: str = Field(default="", max_length=512)
    landing_page: str = Field(default="", max_length=1024)
    sessions: int = 1
    engaged_sessions: int = 0
    key_events: float = 0.0
    ad_cost: float | None = None
    click_ids: dict[str, Any] = _json()


class Deal(SQLModel, table=True):
    __tablename__ = "deals"
    id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = _utc(index=True)
    updated_at: datetime = _utc()
    name: str | None = Field(default=None, max_length=512)
    pipeline: str | None = Field(default=None, max_length=64)
    stage: str | None = Field(default=None, max_length=64)
    amount: float | None = None
    closed_at: datetime | None = _utc(nullable=True)
    is_won: bool = False
    is_closed: bool = False
    properties: dict[str, Any] = _json()
    # ``records.DealRecord.currency`` / ``amount_home``: None is the CRM's home currency / no
    # conversion of the CRM's own.
    currency: str | None = Field(default=None, max_length=8)
    amount_home: float | None = None


class DealStageEvent(SQLModel, table=True):
    __tablename__ = "deal_stage_events"
    deal_id: str = Field(primary_key=True, max_length=64)
    stage: str = Field(primary_key=True, max_length=64)
    entered_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    pipeline: str | None = Field(default=None, max_length=64)


class DealContact(SQLModel, table=True):
    __tablename__ = "deal_contacts"
    deal_id: str = Field(primary_key=True, max_length=64)
    contact_id: str = Field(primary_key=True, max_length=64, index=True)
    # The deal's primary person where the CRM names one (Salesforce OpportunityContactRole.IsPrimary).
    is_primary: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})


class OfflineTouch(SQLModel, table=True):
    """A touch the CRM knows and GA4 does not (a campaign response), as ``records.OfflineTouchRecord``.

    Kept raw like sessions: the rebuild channels it through the same rules, so a rule change
    re-channels it without a new pull.
    """

    __tablename__ = "offline_touches"
    key: str = Field(primary_key=True, max_length=256)
    contact_id: str = Field(max_length=64, index=True)
    occurred_at: datetime = _utc()
    source: str = Field(default="", max_length=512)
    medium: str = Field(default="", max_length=512)
    campaign: str = Field(default="", max_length=512)
    properties: dict[str, Any] = _json()


class PipelineStage(SQLModel, table=True):
    __tablename__ = "pipeline_stages"
    pipeline_id: str = Field(primary_key=True, max_length=64)
    stage_id: str = Field(primary_key=True, max_length=64)
    pipeline_label: str = Field(default="", max_length=256)
    stage_label: str = Field(default="", max_length=256)
    display_order: int = 0
    is_closed: bool = False
    is_won: bool = False


class Touchpoint(SQLModel, table=True):
    """A contact's touch: a matched web session, or the CRM's own source when none matched."""

    __tablename__ = "touchpoints"
    __table_args__ = (UniqueConstraint("contact_id", "key", name="uq_touchpoints_contact_key"),)
    # A stable 63-bit hash of (contact_id, key): a rebuild yields the same ids, so credits diff.
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    contact_id: str = Field(max_length=64, index=True)
    key: str = Field(max_length=1024)
    occurred_at: datetime = _utc()
    channel: str = Field(max_length=128)
    subchannel: str | None = Field(default=None, max_length=128)
    source: str = Field(default="", max_length=512)
    medium: str = Field(default="", max_length=512)
    campaign: str = Field(default="", max_length=512)
    landing_page: str = Field(default="", max_length=1024)
    is_offline: bool = False
    rule: str = Field(default="", max_length=256)


class Conversion(SQLModel, table=True):
    __tablename__ = "conversions"
    id: str = Field(primary_key=True, max_length=96)
    kind: str = Field(max_length=32, index=True)
    contact_id: str | None = Field(default=None, max_length=64, index=True)
    deal_id: str | None = Field(default=None, max_length=64, index=True)
    occurred_at: datetime = _utc()
    value: float = 0.0


class Credit(SQLModel, table=True):
    __tablename__ = "credits"
    __table_args__ = (Index("ix_credits_model_channel", "model", "channel"),)
    conversion_id: str = Field(primary_key=True, max_length=96)
    touchpoint_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    model: str = Field(primary_key=True, max_length=64)
    channel: str = Field(max_length=128)
    campaign: str = Field(default="", max_length=512)
    weight: float
    revenue: float = 0.0


class Spend(SQLModel, table=True):
    """Cost per day: from a spend file (by channel) or GA4's advertiserAdCost (by source/medium).

    GA4 rows keep source and medium raw; their channel comes from the mapping when read, so a
    rule change re-channels spend exactly as it re-channels sessions.
    """

    __tablename__ = "spend"
    origin: str = Field(primary_key=True, max_length=32)  # "file:<name>" or "ga4"
    day: date = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=128, default="")
    source: str = Field(primary_key=True, max_length=512, default="")
    medium: str = Field(primary_key=True, max_length=512, default="")
    campaign: str = Field(primary_key=True, max_length=512, default="")
    cost: float = 0.0
    currency: str = Field(default="", max_length=8)


class WritebackState(SQLModel, table=True):
    """What closedloop last wrote per CRM property, and what failed and how often."""

    __tablename__ = "writeback_state"
    object_type: str = Field(primary_key=True, max_length=16)
    object_id: str = Field(primary_key=True, max_length=64)
    property: str = Field(primary_key=True, max_length=128)
    value: str | None = None
    written_at: datetime | None = _utc(nullable=True)
    # Sent but not yet confirmed: a crash leaves it set, and the next run reads the CRM back.
    in_flight_value: str | None = None
    pending_value: str | None = None
    attempts: int = 0
    last_error: str | None = None


class SyncCursor(SQLModel, table=True):
    __tablename__ = "sync_cursors"
    stream: str = Field(primary_key=True, max_length=64)
    state: dict[str, Any] = _json()
    updated_at: datetime = _utc()


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(default="run", max_length=64)
    started_at: datetime = _utc(index=True)
    finished_at: datetime | None = _utc(nullable=True)
    status: str = Field(default="running", max_length=16)
    stats: dict[str, Any] = _json()
    api_calls: dict[str, Any] = _json()
    errors: dict[str, Any] = _json()


class QuarantinedRow(SQLModel, table=True):
    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("stream", "record_key", name="uq_quarantine_stream_key"),)
    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=64)
    record_key: str = Field(max_length=256)
    reason: str
    payload: dict[str, Any] = _json()
    first_seen: datetime = _utc()
    last_seen: datetime = _utc()
    times_seen: int = 1


class JobLease(SQLModel, table=True):
    """A lease per scheduled job so replicas on one database never run it twice at once."""

    __tablename__ = "job_leases"
    job: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = _utc()
