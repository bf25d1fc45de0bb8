"""Sessions grouped by contact, without holding every session in memory.

Matching a session to its contact needs the whole identity graph; building a contact's
touchpoints needs all of that contact's sessions at once.  Holding every matched session in
between was most of the rebuild's memory (400,000 rows at 100,000 contacts).  Instead the
first pass writes (session key, contact position) into a temporary table, and the second
reads the sessions back joined to it, ordered by contact: one contact's sessions at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, MetaData, String, Table, select

from closedloop.connectors.ga4.rows import NOT_A_PERSON
from closedloop.records import WebSessionRecord
from closedloop.store import models as m
from closedloop.store.models import table
from closedloop.store.upsert import insert_rows

_FLUSH_AT = 20_000
_NO_CLICK_IDS: dict[str, str] = {}


def _links_table() -> Table:
    return Table(
        "closedloop_session_contact",
        MetaData(),
        Column("session_key", String(1024), nullable=False),
        Column("contact_position", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )


class SessionLinks:
    """A temporary table on one connection; ``with`` drops it (pooled connections live on)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._table = _links_table()
        self._buffer: list[dict[str, Any]] = []
        self.linked = 0

    def __enter__(self) -> SessionLinks:
        self._table.drop(self._conn, checkfirst=True)  # left by a run that died on this connection
        self._table.create(self._conn)
        self._conn.commit()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.rollback()
        self._table.drop(self._conn, checkfirst=True)
        self._conn.commit()

    def add(self, session_key: str, contact_position: int) -> None:
        self._buffer.append({"session_key": session_key, "contact_position": contact_position})
        self.linked += 1
        if len(self._buffer) >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            insert_rows(self._conn, self._table, self._buffer)
            self._buffer = []

    def grouped(self) -> Iterator[tuple[int, list[WebSessionRecord]]]:
        """(contact position, its sessions) in ascending position; contacts with none are skipped."""
        self._flush()
        Index("closedloop_session_contact_key", self._table.c.session_key).create(self._conn)
        self._conn.commit()
        links = self._table
        sessions = table(m.WebSession)
        stmt = (
            select(links.c.contact_position, *_session_columns())
            .join(sessions, sessions.c.key == links.c.session_key)
            .order_by(links.c.contact_position)
            .execution_options(yield_per=10_000)
        )
        shared: dict[str, str] = {}  # one copy of each repeated source, medium, campaign, page
        rows = self._conn.execute(stmt)
        for position, group in groupby(rows, key=lambda row: int(row[0])):
            yield position, [_session_row(row[1:], shared) for row in group]

    def unlinked(self) -> Iterator[WebSessionRecord]:
        """Sessions no contact claimed (anonymous visitors), by visitor and time, read after every
        link is written.  Rows of no one (``(not set)``, ``(other)``, empty) are left out: they
        are many visitors folded into one, not a path."""
        sessions = table(m.WebSession)
        stmt = (
            select(*_session_columns())
            .outerjoin(self._table, self._table.c.session_key == sessions.c.key)
            .where(self._table.c.session_key.is_(None), sessions.c.client_id.not_in(sorted(NOT_A_PERSON)))
            .order_by(sessions.c.client_id, sessions.c.started_at)
            .execution_options(yield_per=10_000)
        )
        shared: dict[str, str] = {}
        for row in self._conn.execute(stmt):
            yield _session_row(row, shared)


def _session_columns() -> list[Any]:
    sessions = table(m.WebSession)
    return [
        sessions.c.key,
        sessions.c.client_id,
        sessions.c.started_at,
        sessions.c.source,
        sessions.c.medium,
        sessions.c.campaign,
        sessions.c.landing_page,
        sessions.c.click_ids,
    ]


def _session_row(values: Sequence[Any], shared: dict[str, str]) -> WebSessionRecord:
    """A row of ``_session_columns``; repeated source, medium, campaign and page share one copy.

    Only the columns mapping reads are selected; the session's metrics keep their defaults.
    """
    key, client_id, started_at, source, medium, campaign, landing_page, click_ids = values
    return WebSessionRecord.stored(
        key,
        client_id,
        started_at,
        shared.setdefault(source, source),
        shared.setdefault(medium, medium),
        shared.setdefault(campaign, campaign),
        shared.setdefault(landing_page, landing_page),
        dict(click_ids) if click_ids else _NO_CLICK_IDS,
    )
