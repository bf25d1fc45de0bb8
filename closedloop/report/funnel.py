"""The funnel per channel: sessions, leads, MQL and SQL (where the CRM has lifecycle stages),
opportunities, won deals and revenue, with the rates between them and the days to close.

Counts after sessions are *credited* counts under one model (a lead split 40/20/40 adds 0.4,
0.2 and 0.4 leads), so a column adds up to the real total across channels.  MQL and SQL
credit a lead to the same channels as its creation: a channel earns 0.4 MQL when it earned
0.4 of a lead who later became marketing-qualified.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from closedloop.attribution.roi import RoiReport, channel_key, ratio
from closedloop.config.models import Config
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.utm import RawTouch
from closedloop.report.period import Period
from closedloop.store import models as m

# The order a lead climbs; a stage mapped to a later milestone has passed the earlier ones.
LADDER = ("lead", "mql", "sql", "opportunity", "closed_won")


@dataclass(slots=True)
class FunnelRow:
    channel: str
    sessions: int = 0
    leads: float = 0.0
    mql: float | None = None  # None: the CRM has no such lifecycle stage
    sql: float | None = None
    opportunities: float = 0.0
    won: float = 0.0
    revenue: float = 0.0
    days_to_close: float | None = None  # weighted median, lead created -> won

    @property
    def session_to_lead(self) -> float | None:
        return ratio(self.leads, float(self.sessions))

    @property
    def lead_to_opportunity(self) -> float | None:
        return ratio(self.opportunities, self.leads)

    @property
    def opportunity_to_won(self) -> float | None:
        return ratio(self.won, self.opportunities)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "sessions": self.sessions,
            "leads": round(self.leads, 3),
            "mql": None if self.mql is None else round(self.mql, 3),
            "sql": None if self.sql is None else round(self.sql, 3),
            "opportunities": round(self.opportunities, 3),
            "won": round(self.won, 3),
            "revenue": round(self.revenue, 2),
            "session_to_lead": self.session_to_lead,
            "lead_to_opportunity": self.lead_to_opportunity,
            "opportunity_to_won": self.opportunity_to_won,
            "days_to_close": self.days_to_close,
        }


def sessions_by_channel(session: Session, config: Config, period: Period) -> dict[str, int]:
    """Web sessions in the period per channel, channelled by today's mapping."""
    mapper = ChannelMapper.from_config(config.mapping)
    ws = m.WebSession
    grouping = (col(ws.source), col(ws.medium), col(ws.campaign), col(ws.landing_page))
    stmt = select(*grouping, func.sum(col(ws.sessions))).group_by(*grouping)
    if period.start is not None:
        stmt = stmt.where(col(ws.started_at) >= period.start)
    if period.end is not None:
        stmt = stmt.where(col(ws.started_at) < period.end)
    out: dict[str, int] = defaultdict(int)
    for source, medium, campaign, landing, n in session.execute(stmt):
        raw = RawTouch(source=source, medium=medium, campaign=campaign, landing_page=landing)
        out[mapper.assign(raw).channel] += int(n or 0)
    return dict(out)


def qualified_leads(session: Session, config: Config, model: str, period: Period) -> dict[str, dict[str, float]]:
    """milestone ('mql', 'sql') -> channel -> credited leads who reached it; empty when no
    contact's lifecycle stage maps to MQL or beyond (the CRM does not use those stages)."""
    milestone_of = {k.lower(): str(v) for k, v in config.mapping.milestones.lifecycle_stages.items()}
    rank_of = {name: LADDER.index(name) for name in LADDER}
    reached: dict[str, int] = {}
    for contact_id, stage in session.execute(select(col(m.Contact.id), col(m.Contact.lifecycle_stage))):
        milestone = milestone_of.get((stage or "").lower())
        if milestone in rank_of:
            reached[contact_id] = rank_of[milestone]
    if not any(rank >= rank_of["mql"] for rank in reached.values()):
        return {}
    stmt = (
        select(col(m.Conversion.contact_id), col(m.Credit.channel), func.sum(col(m.Credit.weight)))
        .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
        .where(col(m.Credit.model) == model, col(m.Conversion.kind) == "contact_created")
        .group_by(col(m.Conversion.contact_id), col(m.Credit.channel))
    )
    stmt = period.where(stmt, col(m.Conversion.occurred_at))
    out: dict[str, dict[str, float]] = {"mql": defaultdict(float), "sql": defaultdict(float)}
    for contact_id, channel, weight in session.execute(stmt):
        rank = reached.get(contact_id or "", -1)
        for milestone in ("mql", "sql"):
            if rank >= rank_of[milestone]:
                out[milestone][channel] += float(weight or 0.0)
    return {k: dict(v) for k, v in out.items()}



def funnel_rows(
    roi: RoiReport, sessions: dict[str, int], qualified: dict[str, dict[str, float]]
) -> list[FunnelRow]:
    """One row per channel seen in sessions or credits, ordered by revenue then sessions."""
    rows: dict[str, FunnelRow] = {}
    for r in roi.rows:
        row = rows.setdefault(channel_key(r.channel), FunnelRow(r.channel))
        row.leads += r.leads
        row.opportunities += r.opportunities
        row.won += r.customers
        row.revenue += r.revenue
        row.days_to_close = r.median_days_lead_to_won
    for channel, n in sessions.items():
        rows.setdefault(channel_key(channel), FunnelRow(channel)).sessions += n
    if qualified:
        for row in rows.values():
            row.mql = 0.0
            row.sql = 0.0
        for milestone, per_channel in qualified.items():
            for channel, value in per_channel.items():
                row = rows.setdefault(channel_key(channel), FunnelRow(channel, mql=0.0, sql=0.0))
                setattr(row, milestone, (getattr(row, milestone) or 0.0) + value)
    return sorted(rows.values(), key=lambda r: (-r.revenue, -r.sessions, r.channel.lower()))


def funnel_total(rows: list[FunnelRow], days_to_close: float | None) -> FunnelRow:
    total = FunnelRow("Total", days_to_close=days_to_close)
    for r in rows:
        total.sessions += r.sessions
        total.leads += r.leads
        total.opportunities += r.opportunities
        total.won += r.won
        total.revenue += r.revenue
        if r.mql is not None:
            total.mql = (total.mql or 0.0) + r.mql
            total.sql = (total.sql or 0.0) + (r.sql or 0.0)
    return total
