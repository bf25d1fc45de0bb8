"""Terminal rendering: the channel table, a revenue bar chart, API calls, write-back, and the
report's funnel, model and coverage tables, all as ``FitTable`` so they fit 80 columns.

Money columns name the currency in the table title; credited (fractional) counts say so in a
note under the table, so "Won 23.5" never stands unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from closedloop.report.fit import Col, FitTable
from closedloop.report.summary import ChannelSummary

if TYPE_CHECKING:
    from closedloop.report.build import ReportData

_BAR = "█"
DASH = "—"
CREDITED_NOTE = (
    "Counts are credited, not counted: a conversion split over channels gives each a share, "
    "so a channel can show 23.5 won."
)


def money(value: float) -> str:
    return f"{value:,.0f}"


def _num(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def channel_table(summary: ChannelSummary, *, currency: str = "") -> FitTable:
    models = summary.models
    unit = f" ({currency})" if currency else ""
    table = FitTable(
        f"Channels: counts credited under {summary.primary_model}; won revenue{unit} per model",
        [Col("Channel", "left", key=True, wrap=True), Col("Sessions"), Col("Contacts"), Col("Deals"), Col("Won"),
         *(Col(model) for model in models)],
        note=CREDITED_NOTE,
    )
    for row in summary.rows:
        table.add_row(escape(row.channel), f"{row.sessions:,}", f"{row.contacts:,.1f}", f"{row.deals:,.1f}",
                      f"{row.won:,.1f}", *(money(row.revenue.get(model, 0.0)) for model in models))
    totals = summary.totals
    table.footer.append([
        "Total", f"{int(totals.get('sessions', 0)):,}", f"{totals.get('contacts', 0):,.0f}",
        f"{totals.get('deals', 0):,.0f}", f"{totals.get('won', 0):,.0f}",
        *(money(sum(r.revenue.get(model, 0.0) for r in summary.rows)) for model in models),
    ])
    return table


def revenue_chart(summary: ChannelSummary, *, width: int = 30, currency: str = "") -> Table:
    model = summary.primary_model
    values = [(r.channel, r.revenue.get(model, 0.0)) for r in summary.rows if r.revenue.get(model, 0.0) > 0]
    return bar_chart(values, title=f"Won revenue{f' ({currency})' if currency else ''} credited by {model}",
                     width=width)


def bar_chart(values: list[tuple[str, float]], *, title: str, width: int = 30) -> Table:
    """Horizontal bars with the figure and its share of the total; names fold, never cut."""
    values = [(name, value) for name, value in values if value > 0]
    top = max((v for _, v in values), default=0.0)
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column("Channel", style="cyan", overflow="fold")
    table.add_column("Bar", style="green", no_wrap=True)
    table.add_column("Revenue", justify="right", no_wrap=True)
    total = sum(v for _, v in values) or 1.0
    for channel, value in values:
        bar = _BAR * max(1, round(width * value / top)) if top else ""
        table.add_row(escape(channel), bar, f"{money(value)} {100 * value / total:5.1f}%")
    return table


def api_calls_table(api_calls: Mapping[str, Mapping[str, int]], *, title: str = "API calls by endpoint") -> FitTable:
    table = FitTable(title, [Col("Endpoint", "left", key=True, wrap=True), Col("Calls"),
                             Col("By status", "left", wrap=True)])
    for endpoint, statuses in sorted(api_calls.items()):
        table.add_row(escape(endpoint), f"{sum(statuses.values()):,}",
                      ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    return table


def writeback_table(writeback: Mapping[str, Any] | None) -> FitTable:
    table = FitTable("Written back to the CRM", [Col("Property", "left", key=True, wrap=True), Col("Values")])
    if not writeback:
        table.add_row("(write-back did not run)", "")
        return table
    for prop, n in sorted(writeback.get("by_property", {}).items()):
        table.add_row(escape(prop), f"{n:,}")
    table.footer.append(["objects updated", f"{writeback.get('objects_written', 0):,}"])
    table.footer.append(["records failed", f"{writeback.get('records_failed', 0):,}"])
    table.footer.append(["values already right in the CRM", f"{writeback.get('already_right', 0):,}"])
    if writeback.get("properties_created"):
        table.footer.append(["properties created", f"{len(writeback['properties_created'])}"])
    return table


def funnel_table(data: ReportData) -> FitTable:
    lifecycle = data.has_lifecycle
    columns = [Col("Channel", "left", key=True, wrap=True), Col("Sess"), Col("Leads"),
               *([Col("MQL"), Col("SQL")] if lifecycle else []), Col("Opps"), Col("Won"), Col("Revenue"),
               Col("S→L"), Col("L→O"), Col("O→W"), Col("Days")]
    table = FitTable(
        f"Funnel by channel ({data.period_label}; revenue in {data.currency}; credited under {data.model})",
        columns,
        legend={"Sess": "sessions", "S→L": "session to lead", "L→O": "lead to opportunity",
                "O→W": "opportunity to won", "Days": "median days lead to won"},
        note=CREDITED_NOTE,
    )

    def cells(r: Any) -> list[str]:
        return [escape(r.channel), f"{r.sessions:,}", _num(r.leads),
                *([_num(r.mql), _num(r.sql)] if lifecycle else []), _num(r.opportunities), _num(r.won),
                money(r.revenue), _pct(r.session_to_lead), _pct(r.lead_to_opportunity),
                _pct(r.opportunity_to_won), _num(r.days_to_close)]

    for row in data.funnel:
        table.add_row(*cells(row))
    table.footer.append(cells(data.funnel_total))
    return table


def report_revenue_chart(data: ReportData) -> Table:
    values = sorted(((c, per.get(data.model, 0.0)) for c, per in data.revenue_by_model.items()), key=lambda v: -v[1])
    return bar_chart(values, title=f"Won revenue ({data.currency}) credited by {data.model}")


def models_table(data: ReportData) -> RenderableType:
    channels = sorted(data.revenue_by_model, key=lambda c: -data.revenue_by_model[c].get(data.model, 0.0))
    table = FitTable(f"Won revenue ({data.currency}) by channel under each model",
                     [Col("Channel", "left", key=True, wrap=True), *(Col(m) for m in data.models)])
    for channel in channels:
        table.add_row(escape(channel), *(money(data.revenue_by_model[channel].get(m, 0.0)) for m in data.models))
    table.footer.append(["Total", *(money(sum(data.revenue_by_model[c].get(m, 0.0) for c in channels))
                                    for m in data.models)])
    notes = FitTable("What each model rewards", [Col("Model", "left", key=True), Col("Rewards", "left", wrap=True)])
    for name in data.models:
        notes.add_row(escape(name), escape(data.model_notes[name]))
    return Group(table, notes)


def coverage_table(figures: Any, *, currency: str) -> FitTable:
    table = FitTable("Coverage: how much rests on web data", [Col("Figure", "left", key=True, wrap=True),
                                                             Col("Part"), Col("Of"), Col("Share")])
    for f in figures:
        unit = f" {currency}" if f.money else ""
        table.add_row(escape(f.label), f"{f.part:,.0f}{unit}", DASH if f.whole is None else f"{f.whole:,.0f}{unit}",
                      _pct(f.share))
    return table


def trend_table(data: ReportData) -> FitTable:
    table = FitTable(f"Monthly trend (revenue in {data.currency})",
                     [Col("Month", "left", key=True), Col("Leads"), Col("Won deals"), Col("Won revenue")])
    for r in data.trend:
        table.add_row(r.month, f"{r.leads:,}", f"{r.won:,}", money(r.revenue))
    return table


def landing_pages_table(data: ReportData) -> FitTable:
    table = FitTable(f"Top converting landing pages (credited under {data.model}; revenue in {data.currency})",
                     [Col("Landing page", "left", key=True, wrap=True), Col("Sessions"), Col("Leads"),
                      Col("Rate"), Col("Revenue")])
    for p in data.landing_pages:
        table.add_row(escape(p.page), f"{p.sessions:,}", _num(p.leads), _pct(p.lead_rate), money(p.revenue))
    return table
