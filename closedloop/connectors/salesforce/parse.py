"""Salesforce query rows into closedloop records; a row that does not parse raises Skippable.

Rows are the JSON of a query answer: ``{"attributes": {...}, "Id": ..., "Field": ...}`` with
relationship fields nested (``{"Campaign": {"Type": ...}}``).  Salesforce sends datetimes as
``2024-05-01T09:30:00.000+0000`` and dates as ``2024-05-01``; both become UTC-aware datetimes.
A converted Lead is kept (its form fields and creation date are the person's first touch) but
folded onto the Contact it became; the write-back never targets it (converted leads are read-only).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from closedloop.config.models import SalesforceFields
from closedloop.connectors.hashing import hash_email  # keyed (HMAC), the same hash as HubSpot's
from closedloop.errors import SkippableRecordError
from closedloop.records import (
    ContactRecord,
    DealContactRole,
    DealRecord,
    DealStageEvent,
    DeletedRecord,
    OfflineTouchRecord,
)

Row = Mapping[str, Any]


def parse_time(value: Any) -> datetime | None:
    """A Salesforce datetime or date as UTC; None for null or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date or datetime: {value!r}")
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_values(value: str | None) -> tuple[str, ...]:
    """Several GA client ids in one field, separated by ';' (or ',')."""
    if not value:
        return ()
    parts = (p.strip() for p in value.replace(",", ";").split(";"))
    return tuple(dict.fromkeys(p for p in parts if p))


NO_ID = "(no Id)"
# A campaign member's touch key: the response and, later, its deletion must name the same touch.
CAMPAIGN_MEMBER_KEY = "sf-campaign-member:{}"


def record_id(row: Row) -> str:
    """The row's Id; every parser starts here, so a row that is not an object (a ``null`` in the
    answer's records, a list, a string) is quarantined like HubSpot's (shape.object_key), not a crash."""
    if not isinstance(row, Mapping):
        kind = "null" if row is None else type(row).__name__
        raise SkippableRecordError(f"the row is {kind}, not an object", record_key=NO_ID)
    value = row.get("Id")
    if not isinstance(value, str) or not value.strip():
        raise SkippableRecordError("Id is missing", record_key=_fallback_key(row), payload=dict(row))
    return value


def _fallback_key(row: Row) -> str:
    url = (row.get("attributes") or {}).get("url") if isinstance(row.get("attributes"), Mapping) else None
    return str(url or NO_ID)


def required_time(row: Row, name: str, key: str) -> datetime:
    try:
        value = parse_time(row.get(name))
    except ValueError:
        raise SkippableRecordError(f"{name} is not a datetime: {row.get(name)!r}", record_key=key) from None
    if value is None:
        raise SkippableRecordError(f"{name} is missing", record_key=key)
    return value


def optional_time(row: Row, name: str, key: str) -> datetime | None:
    try:
        return parse_time(row.get(name))
    except ValueError:
        raise SkippableRecordError(f"{name} is not a date: {row.get(name)!r}", record_key=key) from None


def text(row: Row, name: str | None, key: str) -> str | None:
    """A string field; numbers are accepted as text, objects are not."""
    if not name:
        return None
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SkippableRecordError(f"{name} is not text: {type(value).__name__}", record_key=key)
    return str(value).strip() or None


def boolean(row: Row, name: str, key: str) -> bool:
    value = row.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SkippableRecordError(f"{name} is not a boolean: {value!r}", record_key=key)
    return value


def person(row: Row, fields: SalesforceFields, sobject: str) -> ContactRecord:
    """A Lead or a Contact: the same person record, with its identity keys and form fields."""
    key = record_id(row)
    created = required_time(row, "CreatedDate", key)
    email = text(row, fields.email, key)
    click_ids = {
        kind: value
        for kind, name in (("gclid", fields.gclid), ("fbclid", fields.fbclid), ("msclkid", fields.msclkid))
        if (value := text(row, name, key))
    }
    utm = {
        part: value
        for part, name in (
            ("source", fields.utm_source),
            ("medium", fields.utm_medium),
            ("campaign", fields.utm_campaign),
        )
        if (value := text(row, name, key))
    }
    merged_into: str | None = None
    properties: dict[str, Any] = {"sobject": sobject}
    if sobject == "Lead" and boolean(row, "IsConverted", key):
        merged_into = text(row, "ConvertedContactId", key)
        converted = optional_time(row, "ConvertedDate", key)
        properties["converted_at"] = converted.isoformat() if converted else None
        properties["converted_contact_id"] = merged_into
    return ContactRecord(
        crm_id=key,
        created_at=created,
        updated_at=optional_time(row, "SystemModstamp", key) or created,
        email_hash=hash_email(email) if email else None,
        lifecycle_stage=text(row, "Status", key) if sobject == "Lead" else None,
        ga_client_ids=split_values(text(row, fields.ga_client_id, key)),
        click_ids=click_ids,
        original_source=text(row, fields.lead_source, key),
        utm=utm,
        merged_into=merged_into if merged_into != key else None,
        properties=properties,
    )


def opportunity(row: Row) -> DealRecord:
    key = record_id(row)
    created = required_time(row, "CreatedDate", key)
    amount = row.get("Amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        raise SkippableRecordError(f"Amount is not a number: {amount!r}", record_key=key)
    is_won = boolean(row, "IsWon", key)
    is_closed = boolean(row, "IsClosed", key) or is_won
    properties: dict[str, Any] = {}
    currency = text(row, "CurrencyIsoCode", key)  # only where the org has multiple currencies
    return DealRecord(
        crm_id=key,
        created_at=created,
        updated_at=optional_time(row, "SystemModstamp", key) or created,
        name=text(row, "Name", key),
        stage=text(row, "StageName", key),
        amount=float(amount) if amount is not None else None,
        closed_at=optional_time(row, "CloseDate", key) if is_closed else None,
        is_won=is_won,
        is_closed=is_closed,
        properties=properties,
        currency=currency.upper() if currency else None,
        replaces_links=False,  # roles come on their own stream
    )


def stage_history(row: Row) -> DealStageEvent:
    """OpportunityHistory: the stage the deal was in from this row's CreatedDate."""
    return _stage_event(row, "StageName")


def field_history(row: Row) -> DealStageEvent:
    """OpportunityFieldHistory of the StageName field: NewValue is the stage entered."""
    return _stage_event(row, "NewValue")


def _stage_event(row: Row, stage_field: str) -> DealStageEvent:
    """A history row naming its deal and, in ``stage_field``, the stage entered at CreatedDate."""
    key = record_id(row)
    deal = text(row, "OpportunityId", key)
    stage = text(row, stage_field, key)
    if deal is None or stage is None:
        raise SkippableRecordError(f"OpportunityId or {stage_field} is missing", record_key=key)
    return DealStageEvent(deal_id=deal, stage=stage, entered_at=required_time(row, "CreatedDate", key))


def contact_role(row: Row) -> DealContactRole:
    key = record_id(row)
    deal, contact = text(row, "OpportunityId", key), text(row, "ContactId", key)
    if deal is None or contact is None:
        raise SkippableRecordError("OpportunityId or ContactId is missing", record_key=key)
    return DealContactRole(
        crm_id=key,
        deal_id=deal,
        contact_id=contact,
        is_primary=boolean(row, "IsPrimary", key),
        role=text(row, "Role", key),
    )


def campaign_response(row: Row) -> OfflineTouchRecord | None:
    """A campaign member who responded is an offline touch at FirstRespondedDate; others are none."""
    key = record_id(row)
    if not boolean(row, "HasResponded", key):
        return None
    person_id = text(row, "LeadOrContactId", key) or text(row, "ContactId", key) or text(row, "LeadId", key)
    if person_id is None:
        raise SkippableRecordError("the member names no Lead or Contact", record_key=key)
    campaign = row.get("Campaign")
    if not isinstance(campaign, Mapping):
        raise SkippableRecordError("Campaign (Type, Name) is missing", record_key=key)
    # FirstRespondedDate is a date; a member created on that day (the usual form-fill or badge
    # scan) carries the moment itself, which orders the touch against the same day's sessions.
    created = required_time(row, "CreatedDate", key)
    responded = optional_time(row, "FirstRespondedDate", key)
    at = created if responded is None or responded.date() == created.date() else responded
    return OfflineTouchRecord(
        key=CAMPAIGN_MEMBER_KEY.format(key),
        contact_id=person_id,
        occurred_at=at,
        source=text(campaign, "Type", key) or "(campaign)",
        medium="campaign",
        campaign=text(campaign, "Name", key) or "",
        properties={"campaign_id": text(row, "CampaignId", key), "status": text(row, "Status", key)},
    )


def deletion(kind: str, row: Row) -> DeletedRecord:
    """A row from queryAll with IsDeleted = true."""
    key = record_id(row)
    at = optional_time(row, "SystemModstamp", key)
    if kind == "deal_contact_role":
        return DeletedRecord(
            kind, key, at, deal_id=text(row, "OpportunityId", key), contact_id=text(row, "ContactId", key)
        )
    if kind == "offline_touch":
        return DeletedRecord(kind, CAMPAIGN_MEMBER_KEY.format(key), at)
    return DeletedRecord(kind, key, at)
