"""Store one pulled batch and its cursor in the same transaction.

A crash between batches replays at most one batch, and every write here is an upsert (or a
replace of one object's child rows), so the replay changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, select

from closedloop.records import (
    AdCostRecord,
    Batch,
    ContactRecord,
    DealContactLink,
    DealContactRole,
    DealRecord,
    DealStageEvent,
    DeletedRecord,
    LiveIdSet,
    OfflineTouchRecord,
    PipelineStage,
    QuarantinedRecord,
    WebSessionRecord,
)
from closedloop.store import models as m
from closedloop.store.models import table
from closedloop.store.purge import (
    purge_contacts,
    purge_deal_contact_links,
    purge_deals,
    purge_missing_contacts,
    purge_offline_touches,
)
from closedloop.store.redact import redact_payload, redact_reason
from closedloop.store.upsert import shallow_dict, upsert

GA4_SPEND_ORIGIN = "ga4"


def store_batch(session: Session, batch: Batch, *, now: datetime, quarantine_raw: bool = False) -> Counter[str]:
    """Upsert the batch's records, quarantine its bad ones, and move the stream's cursor."""
    counts = store_records(session, batch.records)
    counts.update(batch.counts)
    if batch.quarantined:
        counts["quarantined"] = store_quarantine(session, batch.quarantined, now=now, raw=quarantine_raw)
    upsert(
        session,
        table(m.SyncCursor),
        [{"stream": batch.stream, "state": batch.cursor, "updated_at": now}],
        key=("stream",),
    )
    return counts


def store_records(session: Session, records: Sequence[Any]) -> Counter[str]:
    """Upsert records of any kind; counted by table."""
    groups: dict[type, list[Any]] = {}
    for record in records:
        groups.setdefault(type(record), []).append(record)
    counts: Counter[str] = Counter()
    if contacts := groups.get(ContactRecord):
        counts["contacts"] = store_contacts(session, contacts)
    if deals := groups.get(DealRecord):
        counts["deals"] = store_deals(session, deals, groups.get(DealContactLink, []))
    if roles := groups.get(DealContactRole):
        counts["deal_contacts"] = store_contact_roles(session, roles)
    if touches := groups.get(OfflineTouchRecord):
        counts["offline_touches"] = store_offline_touches(session, touches)
    if events := groups.get(DealStageEvent):
        counts["deal_stage_events"] = upsert(
            session, table(m.DealStageEvent), [shallow_dict(e) for e in events], key=("deal_id", "stage", "entered_at")
        )
    if sessions := groups.get(WebSessionRecord):
        counts["web_sessions"] = store_web_sessions(session, sessions)
    if costs := groups.get(AdCostRecord):
        counts["spend"] = store_ad_costs(session, costs)
    if stages := groups.get(PipelineStage):
        counts["pipeline_stages"] = upsert(
            session, table(m.PipelineStage), [shallow_dict(s) for s in stages], key=("pipeline_id", "stage_id")
        )
    if deleted := groups.get(DeletedRecord):
        counts.update({f"purged.{t}": n for t, n in store_deletions(session, deleted).items()})
    for live in groups.get(LiveIdSet, []):
        counts.update({f"purged.{t}": n for t, n in purge_missing_contacts(session, live).items()})
    return counts


def store_deletions(session: Session, deleted: list[DeletedRecord]) -> Counter[str]:
    """Records deleted (or archived, or GDPR-deleted) in the CRM: purged with all that hangs off them.

    Applied after the batch's upserts, so a record listed as deleted in the same batch that
    carried an older copy of it does not come back.
    """
    removed = purge_contacts(session, [d.crm_id for d in deleted if d.kind == "contact"])
    removed += purge_deals(session, [d.crm_id for d in deleted if d.kind == "deal"])
    roles = [(d.deal_id, d.contact_id) for d in deleted if d.kind == "deal_contact_role" and d.deal_id and d.contact_id]
    if roles:
        removed["deal_contacts"] += purge_deal_contact_links(session, roles)
    touches = [d.crm_id for d in deleted if d.kind == "offline_touch"]
    if touches:
        removed["offline_touches"] += purge_offline_touches(session, touches)
    return removed


def store_contacts(session: Session, contacts: list[ContactRecord]) -> int:
    rows = [
        {
            "id": c.crm_id,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "email_hash": c.email_hash,
            "lifecycle_stage": c.lifecycle_stage,
            "original_source": c.original_source,
            "original_source_detail_1": c.original_source_detail_1,
            "original_source_detail_2": c.original_source_detail_2,
            "utm_source": c.utm.get("source"),
            "utm_medium": c.utm.get("medium"),
            "utm_campaign": c.utm.get("campaign"),
            # A converted Salesforce Lead names its Contact; a HubSpot merge is set below from the survivor.
            "merged_into": c.merged_into,
            "properties": {
                **c.properties,
                "lifecycle_dates": {stage: at.isoformat() for stage, at in sorted(c.lifecycle_dates.items())},
            },
        }
        for c in contacts
    ]
    upsert(session, table(m.Contact), rows, key=("id",))
    ids = [c.crm_id for c in contacts]
    # A contact's identities are replaced whole: a removed client id must stop matching.
    session.execute(delete(m.ContactIdentity).where(m.ContactIdentity.contact_id.in_(ids)))  # type: ignore[attr-defined]
    identity_rows = [
        {"kind": kind, "value": value, "contact_id": c.crm_id} for c in contacts for kind, value in _identity_keys(c)
    ]
    upsert(session, table(m.ContactIdentity), identity_rows, key=("kind", "value", "contact_id"))
    for contact in contacts:
        if contact.merged_ids:
            session.execute(
                update(m.Contact)
                .where(m.Contact.id.in_(contact.merged_ids))  # type: ignore[attr-defined]
                .values(merged_into=contact.crm_id)
            )
    return len(rows)


def _identity_keys(contact: ContactRecord) -> Iterable[tuple[str, str]]:
    for client_id in contact.ga_client_ids:
        yield "ga_client_id", client_id
    if contact.email_hash:
        yield "email_hash", contact.email_hash
    yield from contact.click_ids.items()


def store_deals(session: Session, deals: list[DealRecord], links: list[DealContactLink]) -> int:
    rows = [
        {
            "id": d.crm_id,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
            "name": d.name,
            "pipeline": d.pipeline,
            "stage": d.stage,
            "amount": d.amount,
            "closed_at": d.closed_at,
            "is_won": d.is_won,
            "is_closed": d.is_closed,
            "properties": d.properties,
            "currency": d.currency,
            "amount_home": d.amount_home,
        }
        for d in deals
    ]
    upsert(session, table(m.Deal), rows, key=("id",))
    # A deal that brings its links (HubSpot associations) has them replaced whole; one whose
    # people arrive as records of their own (Salesforce roles) keeps the links it has.
    ids = [d.crm_id for d in deals if d.replaces_links]
    if ids:
        session.execute(delete(m.DealContact).where(m.DealContact.deal_id.in_(ids)))  # type: ignore[attr-defined]
    upsert(session, table(m.DealContact), [shallow_dict(link) for link in links], key=("deal_id", "contact_id"))
    return len(rows)


def store_contact_roles(session: Session, roles: list[DealContactRole]) -> int:
    """One (deal, contact) link per role, added beside the deal's other links, with ``is_primary``.

    A person may hold two roles on one deal (Decision Maker and Influencer): the link is primary
    if any of them is.
    """
    primary: dict[tuple[str, str], bool] = {}
    for role in roles:
        pair = (role.deal_id, role.contact_id)
        primary[pair] = primary.get(pair, False) or role.is_primary
    rows = [{"deal_id": d, "contact_id": c, "is_primary": p} for (d, c), p in primary.items()]
    return upsert(session, table(m.DealContact), rows, key=("deal_id", "contact_id"))


def store_offline_touches(session: Session, touches: list[OfflineTouchRecord]) -> int:
    # The record's fields are the table's columns (records.OfflineTouchRecord, models.OfflineTouch).
    return upsert(session, table(m.OfflineTouch), [shallow_dict(t) for t in touches], key=("key",))


def store_web_sessions(session: Session, sessions: list[WebSessionRecord]) -> int:
    rows = [
        {
            "key": s.key,
            "client_id": s.client_id,
            "started_at": s.started_at,
            "source": s.source,
            "medium": s.medium,
            "campaign": s.campaign,
            "landing_page": s.landing_page,
            "sessions": s.sessions,
            "engaged_sessions": s.engaged_sessions,
            "key_events": s.key_events,
            "ad_cost": s.ad_cost,
            "click_ids": s.click_ids,
        }
        for s in sessions
    ]
    return upsert(session, table(m.WebSession), rows, key=("key",))


def store_ad_costs(session: Session, costs: list[AdCostRecord]) -> int:
    """GA4 cost rows keep source/medium raw with channel "": the mapping channels them on read."""
    rows = [
        {
            "origin": GA4_SPEND_ORIGIN,
            "day": c.day,
            "channel": "",
            "source": c.source,
            "medium": c.medium,
            "campaign": c.campaign,
            "cost": c.cost,
            "currency": c.currency,
        }
        for c in costs
    ]
    return upsert(
        session, table(m.Spend), rows, key=("origin", "day", "channel", "source", "medium", "campaign")
    )


def store_quarantine(
    session: Session, items: list[QuarantinedRecord], *, now: datetime, raw: bool = False
) -> int:
    """Upsert the refused records; unless ``raw`` (``privacy.quarantine_raw``), ids, field types
    and lengths only: no email or other personal value reaches the table (store.redact)."""
    for item in items:
        payload = item.payload if isinstance(item.payload, dict) else {"value": item.payload}
        reason = item.reason if raw else redact_reason(item.reason)
        if not raw:
            payload = redact_payload(payload)
        existing = session.exec(
            select(m.QuarantinedRow).where(
                m.QuarantinedRow.stream == item.stream, m.QuarantinedRow.record_key == item.record_key
            )
        ).first()
        if existing is None:
            session.add(
                m.QuarantinedRow(
                    stream=item.stream,
                    record_key=item.record_key,
                    reason=reason,
                    payload=payload,
                    first_seen=now,
                    last_seen=now,
                )
            )
        else:
            existing.reason, existing.payload, existing.last_seen = reason, payload, now
            existing.times_seen += 1
    session.flush()
    return len(items)
