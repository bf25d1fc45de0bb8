"""A self-contained HTML report: one file, inline CSS and SVG charts, nothing fetched.

Marketers open it from a shared drive or an email; it must render offline and print well.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from closedloop.report.summary import ChannelSummary

PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f", "#be185d"]
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;
margin:2rem auto;max-width:1100px;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
.muted{color:#6b7280}table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f9fafb;font-weight:600}
tfoot td{font-weight:600;border-top:2px solid #d1d5db}.legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
svg text{font:12px system-ui,sans-serif;fill:#374151}
"""


def _money(value: float) -> str:
    return f"{value:,.0f}"


def revenue_chart_svg(summary: ChannelSummary, *, width: int = 1000) -> str:
    """Grouped horizontal bars: credited won revenue per channel, one bar per model."""
    models = summary.models
    rows = [r for r in summary.rows if any(r.revenue.get(m, 0) for m in models)]
    top = max((r.revenue.get(m, 0.0) for r in rows for m in models), default=0.0) or 1.0
    label_w, bar_h, gap = 150, 9, 10
    group_h = bar_h * len(models) + gap
    height = group_h * len(rows) + 10
    plot_w = width - label_w - 110
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="Credited won revenue per channel and model">']
    for i, row in enumerate(rows):
        y0 = i * group_h + 5
        parts.append(f'<text x="0" y="{y0 + group_h / 2:.0f}">{escape(row.channel)}</text>')
        for k, model in enumerate(models):
            value = row.revenue.get(model, 0.0)
            w = plot_w * value / top
            y = y0 + k * bar_h
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(row.channel)} · {escape(model)}: '
                         f'{_money(value)}</title></rect>')
            if model == summary.primary_model:  # one figure per group, the model the CRM shows
                parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 1}">{_money(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(models: list[str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i class="swatch" style="background:{PALETTE[k % len(PALETTE)]}"></i>{escape(m)}</span>'
        for k, m in enumerate(models)) + "</p>"


def channel_table_html(summary: ChannelSummary) -> str:
    head = "".join(f"<th>{escape(m)}</th>" for m in summary.models)
    body = "".join(
        f"<tr><td>{escape(r.channel)}</td><td>{r.sessions:,}</td><td>{r.contacts:,.1f}</td><td>{r.deals:,.1f}</td>"
        f"<td>{r.won:,.1f}</td>" + "".join(f"<td>{_money(r.revenue.get(m, 0.0))}</td>" for m in summary.models)
        + "</tr>" for r in summary.rows)
    t = summary.totals
    foot = (f"<tr><td>Total</td><td>{int(t.get('sessions', 0)):,}</td><td>{t.get('contacts', 0):,.0f}</td>"
            f"<td>{t.get('deals', 0):,.0f}</td><td>{t.get('won', 0):,.0f}</td>"
            + "".join(f"<td>{_money(sum(r.revenue.get(m, 0.0) for r in summary.rows))}</td>" for m in summary.models)
            + "</tr>")
    return (f"<table><thead><tr><th>Channel</th><th>Sessions</th><th>Contacts</th><th>Deals</th><th>Won</th>{head}"
            f"</tr></thead><tbody>{body}</tbody><tfoot>{foot}</tfoot></table>")


def render_report(summary: ChannelSummary, *, generated_at: datetime, title: str = "closedloop attribution") -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f'<meta name=viewport content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
        f"<h1>{escape(title)}</h1><p class=muted>Generated {generated_at:%Y-%m-%d %H:%M %Z}. "
        f"Counts are credited under <b>{escape(summary.primary_model)}</b>; revenue is won revenue credited per "
        f"model (every model credits the same total, {_money(summary.won_revenue)}).</p>"
        f"<h2>Credited won revenue by channel</h2>{legend(summary.models)}{revenue_chart_svg(summary)}"
        f"<h2>Channels</h2>{channel_table_html(summary)}"
        "<p class=muted>Sessions are all web sessions mapped to the channel; contacts, deals and won are "
        "fractional because each conversion's credit is split over its touches.</p></body></html>\n"
    )
