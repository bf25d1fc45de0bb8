"""Coverage figures read from a hand-built store, on SQLite and PostgreSQL alike.

A conversion "has a web journey" when any touch credited for it, under any model, is a GA4
session: here one won deal's only web touch is credited by the linear model alone, so a query
that looked at the report's model only, or at offline touches, would count it wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from closedloop.report.coverage import coverage_figures
from closedloop.report.period import Period
from closedloop.store import models as m

AT = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _touch(tid: int, contact: str, offline: bool) -> m.Touchpoint:
    return m.Touchpoint(id=tid, contact_id=contact, key=f"k{tid}", occurred_at=AT, channel="Offline" if offline
                        else "Paid Search", is_offline=offline)


def _credit(conversion: str, touch: int, model: str, revenue: float) -> m.Credit:
    return m.Credit(conversion_id=conversion, touchpoint_id=touch, model=model, channel="x", weight=1.0,
                    revenue=revenue)


def test_web_journey_shares_count_any_credited_web_touch(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all([
            _touch(1, "c1", offline=False), _touch(2, "c1", offline=True),  # c1: web and offline
            _touch(3, "c2", offline=True),  # c2: offline only
            m.Conversion(id="contact_created:c1", kind="contact_created", contact_id="c1", occurred_at=AT),
            m.Conversion(id="contact_created:c2", kind="contact_created", contact_id="c2", occurred_at=AT),
            m.Conversion(id="deal_won:d1", kind="deal_won", contact_id="c1", deal_id="d1", occurred_at=AT, value=900),
            m.Conversion(id="deal_won:d2", kind="deal_won", contact_id="c2", deal_id="d2", occurred_at=AT, value=100),
            _credit("contact_created:c1", 1, "linear", 0), _credit("contact_created:c1", 2, "linear", 0),
            _credit("contact_created:c2", 3, "linear", 0),
            # d1: first touch credits only the offline touch; linear credits both
            _credit("deal_won:d1", 2, "first_touch", 900),
            _credit("deal_won:d1", 1, "linear", 450), _credit("deal_won:d1", 2, "linear", 450),
            _credit("deal_won:d2", 3, "first_touch", 100), _credit("deal_won:d2", 3, "linear", 100),
        ])
        session.commit()
        figures = {f.key: f for f in coverage_figures(session, "first_touch", Period())}
    assert (figures["won_deals_web"].part, figures["won_deals_web"].whole) == (1, 2)
    assert (figures["won_revenue_web"].part, figures["won_revenue_web"].whole) == (900, 1000)
    assert (figures["contacts_web"].part, figures["contacts_web"].whole) == (1, 2)
    # Under first touch every won dollar went to an offline touch.
    assert (figures["revenue_offline"].part, figures["revenue_offline"].whole) == (1000, 1000)
