"""The channel table people read: sessions, contacts, deals, won and credited revenue per model."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from closedloop.config.models import Config
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.utm import RawTouch
from closedloop.store import models as m


@dataclass(slots=True)
class ChannelRow:
    channel: str
    sessions: int = 0
    contacts: float = 0.0  # contacts created, credited under the primary model
    deals: float = 0.0  # deals created, credited under the primary model
    won: float = 0.0  # deals won, credited under the primary model
    revenue: dict[str, float] = field(default_factory=dict)  # model -> credited won revenue


@dataclass(slots=True)
class ChannelSummary:
    primary_model: str
    models: list[str]
    rows: list[ChannelRow]
    won_revenue: float
    totals: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "primary_model": self.primary_model,
            "models": self.models,
            "won_revenue": round(self.won_revenue, 2),
            "totals": {k: round(v, 2) for k, v in self.totals.items()},
            "channels": {
                r.channel: {
                    "sessions": r.sessions,
                    "contacts": round(r.contacts, 3),
                    "deals": round(r.deals, 3),
                    "won": round(r.won, 3),
                    "revenue": {k: round(v, 2) for k, v in r.revenue.items()},
                }
                for r in self.rows
            },
        }


def channel_summary(engine: Engine, config: Config) -> ChannelSummary:
    mapper = ChannelMapper.from_config(config.mapping)
    primary = config.attribution.primary_model
    rows: dict[str, ChannelRow] = {}

    def row(channel: str) -> ChannelRow:
        return rows.setdefault(channel, ChannelRow(channel))

    with Session(engine) as session:
        for source, medium, campaign, landing, n in session.execute(
            select(
                col(m.WebSession.source),
                col(m.WebSession.medium),
                col(m.WebSession.campaign),
                col(m.WebSession.landing_page),
                func.sum(col(m.WebSession.sessions)),
            ).group_by(
                col(m.WebSession.source),
                col(m.WebSession.medium),
                col(m.WebSession.campaign),
                col(m.WebSession.landing_page),
            )
        ):
            raw = RawTouch(source=source, medium=medium, campaign=campaign, landing_page=landing)
            row(mapper.assign(raw).channel).sessions += int(n or 0)
        counts: dict[tuple[str, str], float] = defaultdict(float)
        for kind, channel, weight in session.execute(
            select(col(m.Conversion.kind), col(m.Credit.channel), func.sum(col(m.Credit.weight)))
            .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
            .where(col(m.Credit.model) == primary)
            .group_by(col(m.Conversion.kind), col(m.Credit.channel))
        ):
            counts[(kind, channel)] += float(weight or 0)
        for (kind, channel), value in counts.items():
            target = row(channel)
            if kind == "contact_created":
                target.contacts += value
            elif kind == "deal_created":
                target.deals += value
            elif kind == "deal_won":
                target.won += value
        for model, channel, revenue in session.execute(
            select(col(m.Credit.model), col(m.Credit.channel), func.sum(col(m.Credit.revenue)))
            .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
            .where(col(m.Conversion.kind) == "deal_won")
            .group_by(col(m.Credit.model), col(m.Credit.channel))
        ):
            row(channel).revenue[model] = float(revenue or 0)
        won_revenue = float(
            session.execute(
                select(func.coalesce(func.sum(col(m.Conversion.value)), 0.0)).where(
                    col(m.Conversion.kind) == "deal_won"
                )
            ).scalar_one()
        )
        totals = {
            "contacts": float(
                session.execute(
                    select(func.count()).select_from(m.Contact).where(col(m.Contact.merged_into).is_(None))
                ).scalar_one()
            ),
            "deals": float(session.execute(select(func.count()).select_from(m.Deal)).scalar_one()),
            "won": float(
                session.execute(select(func.count()).select_from(m.Deal).where(col(m.Deal.is_won))).scalar_one()
            ),
            "sessions": float(sum(r.sessions for r in rows.values())),
        }
    ordered = sorted(rows.values(), key=lambda r: (-r.revenue.get(primary, 0.0), -r.sessions, r.channel))
    models = list(config.attribution.models)
    return ChannelSummary(primary, models, ordered, won_revenue, totals)
