"""The store side of ROI: replace a spend file's rows, and read spend, credits and deal timing.

Everything returned is plain data for ``closedloop.attribution.roi``; no row object escapes.
``compute_roi`` is the whole of `closedloop roi` between parsing and rendering.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from closedloop.attribution.roi import GA4_ORIGIN, CreditLine, GroupBy, RoiReport, SpendLine, roi_report
from closedloop.config.models import Config
from closedloop.config.rates import read_rates_file
from closedloop.errors import UsageError
from closedloop.files.spend import SpendFile
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.currency import Rates
from closedloop.mapping.utm import RawTouch
from closedloop.report.coverage import CoverageFigure, coverage_figures
from closedloop.report.period import Period, report_currency
from closedloop.store import models as m
from closedloop.store.engine import open_store, session_scope
from closedloop.store.models import table
from closedloop.store.rebuilt import CreditsBasis, credits_basis
from closedloop.store.upsert import upsert

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RoiInputs:
    """What ROI is computed from: cost per day and channel (in the reporting currency), credits
    and lead-to-won days in the period, and how many spend-file rows were loaded for it."""

    loaded: int
    spend: list[SpendLine]
    credits: list[CreditLine]
    days: dict[str, float]


@dataclass(frozen=True, slots=True)
class RoiResult:
    """One `closedloop roi`: the report, its currency, spend rows loaded from files, and the
    models that do have credits when the chosen one has none (empty otherwise)."""

    report: RoiReport
    currency: str
    loaded: int
    models_with_credits: list[str]
    has_credits: bool
    basis: CreditsBasis  # which config the credits were rebuilt with
    coverage: list[CoverageFigure] = field(default_factory=list)


def compute_roi(
    cfg: Config,
    files: Sequence[SpendFile],
    model: str,
    by: GroupBy,
    since: date | None,
    until: date | None = None,
) -> RoiResult:
    """Load the spend files into the store, then cost against credited results per channel or campaign.

    Spend in another currency is converted into the reporting currency with the dated rates
    revenue is converted with (``rates_file``); ``UsageError`` names a cost with no rate.
    """
    period = Period(since, until, cfg.timezone)
    engine = open_store(cfg.store.url)
    basis = credits_basis(engine, cfg)
    with session_scope(engine) as session:
        found = read_roi_inputs(session, cfg, files, model, period)
        models = credited_models(session) if not found.credits else []
        coverage = coverage_figures(session, model, period)
    report = roi_report(found.spend, found.credits, found.days, group_by=by)
    return RoiResult(report, report_currency(cfg), found.loaded, models, bool(found.credits), basis, coverage)


def read_roi_inputs(
    session: Session, cfg: Config, files: Sequence[SpendFile], model: str, period: Period
) -> RoiInputs:
    """The spend files loaded into the store, then spend, credits and lead-to-won days of the
    period read back: what `closedloop roi` and `closedloop report` both cost results with.

    Every cost is converted into the reporting currency (``spend_rates``), so there is one.
    """
    loaded = replace_file_spend(session, files, currency=cfg.attribution.currency or "")
    spend, _currencies = read_spend(
        session,
        ChannelMapper.from_config(cfg.mapping),
        file_origins=[f.origin for f in files],
        since=period.since,
        until=period.until,
        rates=spend_rates(cfg),
    )
    credits = read_credits(session, model, since=period.start, until=period.end)
    days = read_days_lead_to_won(session, since=period.start, until=period.end)
    return RoiInputs(loaded, spend, credits, days)


def replace_file_spend(session: Session, files: Sequence[SpendFile], *, currency: str) -> int:
    """A file's rows are replaced whole: a line deleted from the file disappears from the store.

    Re-running with the same file writes the same rows, so loading is idempotent.
    """
    written = 0
    for spend_file in files:
        session.execute(delete(m.Spend).where(col(m.Spend.origin) == spend_file.origin))
        rows = [
            {
                "origin": spend_file.origin,
                "day": entry.day,
                "channel": entry.channel,
                "source": "",
                "medium": "",
                "campaign": entry.campaign,
                "cost": entry.cost,
                "currency": currency,
            }
            for entry in spend_file.entries
        ]
        written += upsert(
            session, table(m.Spend), rows, key=("origin", "day", "channel", "source", "medium", "campaign")
        )
    return written


def spend_rates(cfg: Config) -> Rates:
    """The dated rates revenue is converted with (``rates_file``), into the reporting currency."""
    return Rates.from_rows(read_rates_file(cfg.rates_file), report_currency(cfg))


def read_spend(
    session: Session,
    mapper: ChannelMapper,
    *,
    file_origins: Collection[str],
    since: date | None = None,
    until: date | None = None,
    rates: Rates | None = None,
) -> tuple[list[SpendLine], set[str]]:
    """GA4 cost (channelled by the mapping now) and the configured files' cost, plus currencies.

    Rows of spend files no longer in the config stay in the store but are not counted.  With
    ``rates``, a cost in another currency is converted on its own day (the latest rate on or
    before it, as a won deal's amount is), and the one currency returned is the reporting one;
    a cost with no rate raises ``UsageError`` naming the currencies and first days: never
    guessed, never summed raw.  A row with no currency is taken as the reporting currency.
    """
    origins = [GA4_ORIGIN, *file_origins]
    stmt = select(
        col(m.Spend.origin),
        col(m.Spend.day),
        col(m.Spend.channel),
        col(m.Spend.source),
        col(m.Spend.medium),
        col(m.Spend.campaign),
        col(m.Spend.cost),
        col(m.Spend.currency),
    ).where(col(m.Spend.origin).in_(origins))
    if since is not None:
        stmt = stmt.where(col(m.Spend.day) >= since)
    if until is not None:
        stmt = stmt.where(col(m.Spend.day) <= until)
    lines: list[SpendLine] = []
    currencies: set[str] = set()
    missing: dict[str, date] = {}  # currency -> first day without a rate
    for origin, day, channel, source, medium, campaign, cost, currency in session.execute(stmt):
        if origin == GA4_ORIGIN:
            channel = mapper.assign(RawTouch(source=source, medium=medium, campaign=campaign)).channel
        amount: float | None = float(cost or 0.0)
        if rates is not None and currency:
            amount = rates.convert(amount or 0.0, currency, day)
            if amount is None:
                missing[currency] = min(day, missing.get(currency, day))
                continue
            currency = rates.reporting
        lines.append(SpendLine(day, channel, campaign, amount or 0.0, origin))
        if currency:
            currencies.add(currency)
    if missing:
        named = ", ".join(f"{c} (first on {d})" for c, d in sorted(missing.items()))
        raise UsageError(
            f"Spend is in several currencies and {named} has no rate into {rates.reporting if rates else ''} "
            "on or before its day; add rows to the rates file (rates_file: date,currency,rate)."
        )
    return lines, currencies


def credited_models(session: Session) -> list[str]:
    rows = session.execute(select(col(m.Credit.model)).distinct().order_by(col(m.Credit.model)))
    return [str(r[0]) for r in rows]


def read_credits(
    session: Session, model: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[CreditLine]:
    """One line per conversion, channel and campaign: touches of one channel are summed."""
    stmt = (
        select(
            col(m.Credit.conversion_id),
            col(m.Conversion.kind),
            col(m.Credit.channel),
            col(m.Credit.campaign),
            func.sum(col(m.Credit.weight)),
            func.sum(col(m.Credit.revenue)),
        )
        .join(m.Conversion, col(m.Conversion.id) == col(m.Credit.conversion_id))
        .where(col(m.Credit.model) == model)
        .group_by(col(m.Credit.conversion_id), col(m.Conversion.kind), col(m.Credit.channel), col(m.Credit.campaign))
    )
    if since is not None:
        stmt = stmt.where(col(m.Conversion.occurred_at) >= since)
    if until is not None:  # exclusive: the first instant after the period
        stmt = stmt.where(col(m.Conversion.occurred_at) < until)
    return [
        CreditLine(conversion_id, kind, channel, campaign or "", float(weight or 0.0), float(revenue or 0.0))
        for conversion_id, kind, channel, campaign, weight, revenue in session.execute(stmt)
    ]


def read_days_lead_to_won(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, float]:
    """``deal_won`` conversion id -> days from the lead's creation to the win.

    The lead is the deal's primary contact as the rebuild stored it on the conversion
    (``closedloop.mapping.primary``: the CRM's primary, else the earliest-created), the same
    person write-back counts days to won from.  Deals whose contact was created after the win
    (a contact attached later) have no lead time and are left out.
    """
    stmt = (
        select(col(m.Conversion.id), col(m.Conversion.occurred_at), col(m.Contact.created_at))
        .join(m.Contact, col(m.Contact.id) == col(m.Conversion.contact_id))
        .where(col(m.Conversion.kind) == "deal_won")
    )
    if since is not None:
        stmt = stmt.where(col(m.Conversion.occurred_at) >= since)
    if until is not None:
        stmt = stmt.where(col(m.Conversion.occurred_at) < until)
    out: dict[str, float] = {}
    for conversion_id, won_at, lead_created in session.execute(stmt):
        days = (won_at - lead_created).total_seconds() / _SECONDS_PER_DAY
        if days >= 0:
            out[conversion_id] = days
    return out
