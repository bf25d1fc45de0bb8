"""Everything one report shows, gathered from the store in one place: period and currency,
funnel, revenue per model, ROI by channel and campaign, monthly trend, landing pages, coverage.

The terminal, ``--json`` and the HTML report all render this one value, so they cannot drift.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from closedloop.attribution.roi import RoiReport, roi_report
from closedloop.config.models import Config
from closedloop.files.spend import load_spend_files
from closedloop.report.coverage import CoverageFigure, coverage_figures
from closedloop.report.funnel import FunnelRow, funnel_rows, funnel_total, qualified_leads, sessions_by_channel
from closedloop.report.landing_pages import LandingPageRow, top_landing_pages
from closedloop.report.model_notes import model_note
from closedloop.report.period import Period, report_currency
from closedloop.report.roi_paid import paid_total, totals_dict
from closedloop.report.roi_query import read_roi_inputs
from closedloop.report.trend import MonthRow, monthly_trend
from closedloop.store import models as m
from closedloop.store.engine import session_scope
from closedloop.store.rebuilt import CreditsBasis, credits_basis


@dataclass(slots=True)
class ReportData:
    generated_at: datetime
    period: Period
    period_label: str
    currency: str
    model: str
    models: list[str]
    model_notes: dict[str, str]
    funnel: list[FunnelRow]
    funnel_total: FunnelRow
    revenue_by_model: dict[str, dict[str, float]]  # channel -> model -> credited won revenue
    won_revenue: float
    roi_channel: RoiReport
    roi_campaign: RoiReport
    trend: list[MonthRow]
    landing_pages: list[LandingPageRow]
    coverage: list[CoverageFigure]
    basis: CreditsBasis  # which config the credits were rebuilt with (its warning is the first note)
    notes: list[str] = field(default_factory=list)  # what the reader must know (spend not loaded...)

    @property
    def has_lifecycle(self) -> bool:
        return self.funnel_total.mql is not None

    @property
    def has_spend(self) -> bool:
        return any(r.cost is not None for r in self.roi_channel.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "period": {
                "since": self.period.since.isoformat() if self.period.since else None,
                "until": self.period.until.isoformat() if self.period.until else None,
                "label": self.period_label,
                "timezone": self.period.timezone,
            },
            "currency": self.currency,
            "model": self.model,
            "models": {name: self.model_notes[name] for name in self.models},
            "counts_are": f"credited under {self.model}: a conversion split over channels adds fractions",
            "funnel": [r.as_dict() for r in self.funnel],
            "funnel_total": self.funnel_total.as_dict(),
            # The totals earlier versions printed, kept so scripts reading them go on working.
            "totals": {
                "sessions": self.funnel_total.sessions,
                "contacts": round(self.funnel_total.leads, 2),
                "deals": round(self.funnel_total.opportunities, 2),
                "won": round(self.funnel_total.won, 2),
            },
            "revenue_by_model": {
                ch: {k: round(v, 2) for k, v in per.items()} for ch, per in self.revenue_by_model.items()
            },
            "won_revenue": round(self.won_revenue, 2),
            "roi_by_channel": {"rows": [r.as_dict() for r in self.roi_channel.rows], **totals_dict(self.roi_channel)},
            "roi_by_campaign": {
                "rows": [r.as_dict() for r in self.roi_campaign.rows if r.cost is not None],
                **totals_dict(self.roi_campaign),
            },
            "trend": [r.as_dict() for r in self.trend],
            "landing_pages": [r.as_dict() for r in self.landing_pages],
            "coverage": [f.as_dict() for f in self.coverage],
            "notes": self.notes,
        }


def revenue_by_model(session: Session, period: Period) -> dict[str, dict[str, float]]:
    stmt = (
        select(col(m.Credit.channel), col(m.Credit.model), func.sum(col(m.Credit.revenue)))
        .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
        .where(col(m.Conversion.kind) == "deal_won")
        .group_by(col(m.Credit.channel), col(m.Credit.model))
    )
    stmt = period.where(stmt, col(m.Conversion.occurred_at))
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for channel, model, revenue in session.execute(stmt):
        out[channel][model] = float(revenue or 0.0)
    return dict(out)


def _data_span(session: Session) -> tuple[datetime | None, datetime | None]:
    low, high = session.execute(
        select(func.min(col(m.Conversion.occurred_at)), func.max(col(m.Conversion.occurred_at)))
    ).one()
    return low, high


def build_report(engine: Any, config: Config, *, model: str, period: Period, now: datetime) -> ReportData:
    """Read the store (and load the configured spend files, as ``roi`` does) into one ``ReportData``."""
    basis = credits_basis(engine, config)
    notes: list[str] = [w for w in [basis.warning()] if w]  # first: it qualifies all
    files = load_spend_files(config.attribution.spend_files)
    with session_scope(engine) as session:
        found = read_roi_inputs(session, config, files, model, period)
        sessions = sessions_by_channel(session, config, period)
        qualified = qualified_leads(session, config, model, period)
        by_model = revenue_by_model(session, period)
        trend = monthly_trend(session, period)
        pages = top_landing_pages(session, model, period)
        coverage = coverage_figures(session, model, period)
        first, last = _data_span(session)
    currency = report_currency(config)
    spend, credits, days = found.spend, found.credits, found.days
    by_channel = roi_report(spend, credits, days, group_by="channel")
    by_campaign = roi_report(spend, credits, days, group_by="campaign")
    rows = funnel_rows(by_channel, sessions, qualified)
    if not credits and any(r.leads or r.won for r in trend):
        notes.append(f"No credits under model {model} in the store: add it to attribution.models and run "
                     "`closedloop run --no-pull`; its columns are empty until then.")
    if not spend:
        notes.append("No spend is known (no GA4 ad cost, no spend_files): cost, CAC, ROAS and ROI are blank.")
    paid = paid_total(by_channel)
    if by_channel.total.revenue > paid.revenue + 0.005:
        notes.append(
            f"ROAS and ROI totals compare paid revenue ({paid.revenue:,.0f} {currency}) with paid cost; "
            f"{by_channel.total.revenue - paid.revenue:,.0f} {currency} of credited revenue is on channels "
            "without spend and is left out of them."
        )
    models = [name for name in config.attribution.models if name in config.attribution.model_names()]
    return ReportData(
        generated_at=now,
        period=period,
        period_label=period.label(first, last),
        currency=currency,
        model=model,
        models=models,
        model_notes={name: model_note(name, config.attribution) for name in models},
        funnel=rows,
        funnel_total=funnel_total(rows, by_channel.total.median_days_lead_to_won),
        revenue_by_model=by_model,
        won_revenue=sum(r.revenue for r in trend),
        roi_channel=by_channel,
        roi_campaign=by_campaign,
        trend=trend,
        landing_pages=pages,
        coverage=coverage,
        basis=basis,
        notes=notes,
    )
