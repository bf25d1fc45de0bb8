"""Terminal rendering with rich: the channel table, a revenue bar chart, API calls, write-back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from closedloop.report.summary import ChannelSummary

_BAR = "█"


def money(value: float) -> str:
    return f"{value:,.0f}"


def channel_table(summary: ChannelSummary, *, max_models: int = 8) -> Table:
    models = summary.models[:max_models]
    table = Table(
        title=f"Channels (counts credited under {summary.primary_model}; revenue per model)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("Channel", style="cyan", no_wrap=True)
    for name in ("Sessions", "Contacts", "Deals", "Won"):
        table.add_column(name, justify="right")
    for model in models:
        table.add_column(f"{model}\nrevenue", justify="right")
    for row in summary.rows:
        table.add_row(
            row.channel,
            f"{row.sessions:,}",
            f"{row.contacts:,.1f}",
            f"{row.deals:,.1f}",
            f"{row.won:,.1f}",
            *(money(row.revenue.get(model, 0.0)) for model in models),
        )
    totals = summary.totals
    table.add_section()
    table.add_row(
        "Total",
        f"{int(totals.get('sessions', 0)):,}",
        f"{totals.get('contacts', 0):,.0f}",
        f"{totals.get('deals', 0):,.0f}",
        f"{totals.get('won', 0):,.0f}",
        *(money(sum(r.revenue.get(model, 0.0) for r in summary.rows)) for model in models),
        style="bold",
    )
    return table


def revenue_chart(summary: ChannelSummary, *, width: int = 40) -> Table:
    model = summary.primary_model
    values = [(r.channel, r.revenue.get(model, 0.0)) for r in summary.rows if r.revenue.get(model, 0.0) > 0]
    top = max((v for _, v in values), default=0.0)
    table = Table(title=f"Won revenue credited by {model}", title_justify="left", show_header=False, box=None)
    table.add_column("Channel", style="cyan", no_wrap=True)
    table.add_column("Bar", style="green")
    table.add_column("Revenue", justify="right")
    total = sum(v for _, v in values) or 1.0
    for channel, value in values:
        bar = _BAR * max(1, round(width * value / top)) if top else ""
        table.add_row(channel, bar, f"{money(value)}  {100 * value / total:4.1f}%")
    return table


def api_calls_table(api_calls: Mapping[str, Mapping[str, int]], *, title: str = "API calls by endpoint") -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Calls", justify="right")
    table.add_column("By status")
    for endpoint, statuses in sorted(api_calls.items()):
        table.add_row(
            endpoint, f"{sum(statuses.values()):,}", ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        )
    return table


def writeback_table(writeback: Mapping[str, Any] | None) -> Table:
    table = Table(title="Written back to the CRM", title_justify="left", header_style="bold")
    table.add_column("Property", no_wrap=True)
    table.add_column("Values written", justify="right")
    if not writeback:
        table.add_row("(write-back did not run)", "")
        return table
    for prop, n in sorted(writeback.get("by_property", {}).items()):
        table.add_row(prop, f"{n:,}")
    table.add_section()
    table.add_row("objects updated", f"{writeback.get('objects_written', 0):,}", style="bold")
    table.add_row("records failed", f"{writeback.get('records_failed', 0):,}")
    if writeback.get("properties_created"):
        table.add_row("properties created", f"{len(writeback['properties_created'])}")
    return table


def print_summary(console: Console, summary: ChannelSummary) -> None:
    console.print(channel_table(summary))
    console.print(revenue_chart(summary))
