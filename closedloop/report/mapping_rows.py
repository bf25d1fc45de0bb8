"""The store's sessions as `closedloop mapping test` reads them: grouped by client and UTMs, each
tied to its contact through the client id.  The query lives here, not in mapping (which is pure)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Table, func, select
from sqlmodel import Session

from closedloop.mapping.identity import IdentityGraph, IdentityKey
from closedloop.mapping.utm import RawTouch
from closedloop.store import models as m
from closedloop.store.engine import make_engine


def session_touches(url: str) -> Iterator[tuple[RawTouch, int, str | None]]:
    """(touch, sessions, contact id or None) per client id and UTM combination in the store at ``url``."""
    identities: Table = m.ContactIdentity.__table__  # type: ignore[attr-defined]
    contacts: Table = m.Contact.__table__  # type: ignore[attr-defined]
    sessions: Table = m.WebSession.__table__  # type: ignore[attr-defined]
    engine = make_engine(url)
    with Session(engine) as session:
        keys = [
            (cid, IdentityKey(kind, value))
            for kind, value, cid in session.execute(
                select(identities.c.kind, identities.c.value, identities.c.contact_id)
            )
        ]
        merges = [
            (cid, into)
            for cid, into in session.execute(
                select(contacts.c.id, contacts.c.merged_into).where(contacts.c.merged_into.is_not(None))
            )
        ]
        graph = IdentityGraph.build(keys, merges)
        grouping = (
            sessions.c.client_id,
            sessions.c.source,
            sessions.c.medium,
            sessions.c.campaign,
            sessions.c.landing_page,
        )
        stmt = select(*grouping, func.sum(sessions.c.sessions)).group_by(*grouping)
        for client_id, source, medium, campaign, landing_page, count in session.execute(
            stmt.execution_options(yield_per=10_000)
        ):
            raw = RawTouch(
                source=source or "", medium=medium or "", campaign=campaign or "", landing_page=landing_page or ""
            )
            yield raw, int(count or 0), graph.resolve(IdentityKey("ga_client_id", client_id))
