"""Remove a person or a deal and everything that hangs off it, in every table, in one place.

A contact deleted, archived or GDPR-deleted in the CRM, or named by ``closedloop forget``, must
leave nothing behind: not its identities, not the sessions only its devices made, not the
touchpoints, conversions and credits derived from them, not what closedloop last wrote to it,
not the quarantine rows about it.  Derived rows are deleted here too (not only left to the next
rebuild) so that a ``forget`` is complete the moment it returns.

Contacts the CRM merged into a purged contact are the same person: they go with it.  A web
session goes only when no surviving contact shares its client id (two people on one shared
device keep the other's sessions).  Every function counts what it removed, by table, so the
caller can say so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Table, delete, or_
from sqlmodel import Session, col, select

from closedloop.records import LiveIdSet
from closedloop.store import models as m
from closedloop.store.models import table

CONTACT_OBJECT = "contacts"  # writeback_state.object_type of a contact
DEAL_OBJECT = "deals"
CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def purge_contacts(session: Session, contact_ids: Iterable[str]) -> Counter[str]:
    """Delete the contacts, the contacts merged into them, and every row about any of them."""
    ids = _with_merged(session, set(contact_ids))
    removed: Counter[str] = Counter()
    if not ids:
        return removed
    identities = _identities(session, ids)
    client_ids = {value for kind, value in identities if kind == "ga_client_id"}
    click_ids = {value for kind, value in identities if kind not in ("ga_client_id", "email_hash")}
    removed += _delete_sessions_of(session, client_ids, click_ids, ids)
    for chunk in _chunks(ids):
        touchpoints = select(col(m.Touchpoint.id)).where(col(m.Touchpoint.contact_id).in_(chunk))
        conversions = select(col(m.Conversion.id)).where(col(m.Conversion.contact_id).in_(chunk))
        removed["credits"] += _delete(
            session,
            m.Credit,
            or_(col(m.Credit.touchpoint_id).in_(touchpoints), col(m.Credit.conversion_id).in_(conversions)),
        )
        removed["conversions"] += _delete(session, m.Conversion, col(m.Conversion.contact_id).in_(chunk))
        removed["touchpoints"] += _delete(session, m.Touchpoint, col(m.Touchpoint.contact_id).in_(chunk))
        removed["contact_identities"] += _delete(
            session, m.ContactIdentity, col(m.ContactIdentity.contact_id).in_(chunk)
        )
        removed["deal_contacts"] += _delete(session, m.DealContact, col(m.DealContact.contact_id).in_(chunk))
        removed["offline_touches"] += _delete(session, m.OfflineTouch, col(m.OfflineTouch.contact_id).in_(chunk))
        removed["writeback_state"] += _delete(session, m.WritebackState, _written_to(CONTACT_OBJECT, chunk))
        removed["contacts"] += _delete(session, m.Contact, col(m.Contact.id).in_(chunk))
    removed["quarantine"] += _delete_quarantine(session, "contact", ids)
    return +removed


def purge_deals(session: Session, deal_ids: Iterable[str]) -> Counter[str]:
    """Delete the deals with their stage events, links, conversions, credits and write-back state."""
    ids = set(deal_ids)
    removed: Counter[str] = Counter()
    if not ids:
        return removed
    for chunk in _chunks(ids):
        conversions = select(col(m.Conversion.id)).where(col(m.Conversion.deal_id).in_(chunk))
        removed["credits"] += _delete(session, m.Credit, col(m.Credit.conversion_id).in_(conversions))
        removed["conversions"] += _delete(session, m.Conversion, col(m.Conversion.deal_id).in_(chunk))
        removed["deal_stage_events"] += _delete(session, m.DealStageEvent, col(m.DealStageEvent.deal_id).in_(chunk))
        removed["deal_contacts"] += _delete(session, m.DealContact, col(m.DealContact.deal_id).in_(chunk))
        removed["writeback_state"] += _delete(session, m.WritebackState, _written_to(DEAL_OBJECT, chunk))
        removed["deals"] += _delete(session, m.Deal, col(m.Deal.id).in_(chunk))
    removed["quarantine"] += _delete_quarantine(session, "deal", ids)
    return +removed


def purge_deal_contact_links(session: Session, pairs: Iterable[tuple[str, str]]) -> int:
    """(deal, contact) links deleted in the CRM (a Salesforce role removed): the link alone goes."""
    link = m.DealContact
    return sum(_delete(session, link, (col(link.deal_id) == d) & (col(link.contact_id) == c)) for d, c in pairs)


def purge_offline_touches(session: Session, keys: Iterable[str]) -> int:
    """Offline touches deleted in the CRM (a campaign member removed), by touch key."""
    return sum(_delete(session, m.OfflineTouch, col(m.OfflineTouch.key).in_(chunk)) for chunk in _chunks(set(keys)))


def purge_missing_contacts(session: Session, live: LiveIdSet) -> Counter[str]:
    """Contacts the CRM no longer lists (a GDPR delete leaves no other trace): purged.

    Only surviving contacts (not merged away: those are gone from the listing by design) created
    before the listing began are compared, and only contacts pulled from the same CRM: a
    Salesforce id never looks like a HubSpot one.  An empty listing purges nothing, since a portal
    that lost every contact is likelier a broken answer than a fact.
    """
    if not live.ids:
        return Counter()
    stored = session.exec(
        select(col(m.Contact.id)).where(
            col(m.Contact.merged_into).is_(None), col(m.Contact.created_at) < live.listed_at
        )
    ).all()
    gone = [i for i in stored if i not in live.ids and i.isdigit()]
    return purge_contacts(session, gone)


def contacts_by_email_hash(session: Session, email_hash: str) -> list[str]:
    """The contacts holding this email hash, on the contact row or as an identity."""
    on_rows = session.exec(select(col(m.Contact.id)).where(col(m.Contact.email_hash) == email_hash)).all()
    as_identity = session.exec(
        select(col(m.ContactIdentity.contact_id)).where(
            col(m.ContactIdentity.kind) == "email_hash", col(m.ContactIdentity.value) == email_hash
        )
    ).all()
    return sorted({*on_rows, *as_identity})


def purge_old_sessions(session: Session, *, before: datetime) -> int:
    """Raw web sessions that started before ``before`` (the retention limit): deleted.

    Touchpoints already built from them stay until the next rebuild, which no longer sees them.
    """
    return _delete(session, m.WebSession, col(m.WebSession.started_at) < before)


def _with_merged(session: Session, ids: set[str]) -> set[str]:
    """The ids and, transitively, every contact merged into one of them."""
    found = set(ids)
    frontier = set(ids)
    while frontier:
        merged: set[str] = set()
        for chunk in _chunks(frontier):
            merged.update(session.exec(select(col(m.Contact.id)).where(col(m.Contact.merged_into).in_(chunk))).all())
        frontier = merged - found
        found |= frontier
    return found


def _identities(session: Session, ids: set[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for chunk in _chunks(ids):
        rows = session.exec(
            select(col(m.ContactIdentity.kind), col(m.ContactIdentity.value)).where(
                col(m.ContactIdentity.contact_id).in_(chunk)
            )
        ).all()
        out.update((kind, value) for kind, value in rows)
    return out


def _delete_sessions_of(
    session: Session, client_ids: set[str], click_ids: set[str], purged: set[str]
) -> Counter[str]:
    """Sessions of the person's devices (or carrying their click ids) that nobody else shares."""
    shared: set[str] = set()
    for chunk in _chunks(client_ids):
        shared.update(
            session.exec(
                select(col(m.ContactIdentity.value)).where(
                    col(m.ContactIdentity.kind) == "ga_client_id",
                    col(m.ContactIdentity.value).in_(chunk),
                    col(m.ContactIdentity.contact_id).not_in(purged),
                )
            ).all()
        )
    own = client_ids - shared
    removed: Counter[str] = Counter()
    for chunk in _chunks(own):
        removed["web_sessions"] += _delete(session, m.WebSession, col(m.WebSession.client_id).in_(chunk))
    if click_ids:
        # Sessions tied by a click id only: click ids sit in a JSON column, so each session's are
        # read and checked here, and the matching ones deleted by key, a chunk at a time.
        tied = {
            key
            for key, client_id, clicks in session.exec(
                select(col(m.WebSession.key), col(m.WebSession.client_id), col(m.WebSession.click_ids))
            ).all()
            if client_id not in shared and set((clicks or {}).values()) & click_ids
        }
        for chunk in _chunks(tied):
            removed["web_sessions"] += _delete(session, m.WebSession, col(m.WebSession.key).in_(chunk))
    return removed


def _written_to(object_type: str, ids: list[str]) -> ColumnElement[bool]:
    """The write-back state rows of these objects of one type."""
    return (col(m.WritebackState.object_type) == object_type) & col(m.WritebackState.object_id).in_(ids)


def _delete_quarantine(session: Session, kind: str, ids: set[str]) -> int:
    """Quarantine rows about the records: keyed by their id, on a stream of their kind."""
    removed = 0
    for chunk in _chunks(ids):
        removed += _delete(
            session,
            m.QuarantinedRow,
            col(m.QuarantinedRow.record_key).in_(chunk) & _stream_of(kind),
        )
    return removed


def _stream_of(kind: str) -> ColumnElement[bool]:
    """Streams that carry contacts (HubSpot contacts, Salesforce leads and contacts) or deals."""
    words = ("contact", "lead", "campaign") if kind == "contact" else ("deal", "opportunit")
    return or_(*(col(m.QuarantinedRow.stream).ilike(f"%{word}%") for word in words))


def _delete(session: Session, model: type, where: ColumnElement[bool]) -> int:
    """Rows deleted: a CursorResult's count (SQLModel types the result as a plain Result)."""
    target: Table = table(model)
    result = session.execute(delete(target).where(where))
    return int(getattr(result, "rowcount", 0) or 0)


def _chunks(ids: Collection[str]) -> Iterable[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def forget_person(engine: Engine, *, email_hash: str | None = None, contact_ids: Iterable[str] = ()) -> ForgetResult:
    """``closedloop forget``: the contacts matching the email hash or ids, purged in one transaction."""
    with Session(engine) as session, session.begin():
        ids = set(contact_ids)
        if email_hash:
            ids.update(contacts_by_email_hash(session, email_hash))
        known = set(session.exec(select(col(m.Contact.id)).where(col(m.Contact.id).in_(sorted(ids)))).all())
        removed = purge_contacts(session, ids)
        if email_hash:  # an identity row whose contact is already gone still names the person
            same = col(m.ContactIdentity.value) == email_hash
            removed["contact_identities"] += _delete(session, m.ContactIdentity, same)
    return ForgetResult(contact_ids=sorted(known), removed=dict(sorted((+removed).items())))


@dataclass(frozen=True, slots=True)
class ForgetResult:
    contact_ids: list[str]  # the contacts found (the merged-in ones are counted in ``removed``)
    removed: dict[str, int]  # rows deleted per table
