"""A self-contained HTML report: one file, inline CSS and SVG charts, nothing fetched.

Marketers open it from a shared drive or an email and forward it to management; it must
render offline, say what period and currency it covers, explain its fractional counts and
print on A4 without a blank two-thirds page (sections may break between pages; a chart never
does, and no section forces a new page).
"""

from __future__ import annotations

from html import escape

from closedloop.attribution.roi import RoiReport, RoiRow
from closedloop.report import charts
from closedloop.report.build import ReportData
from closedloop.report.funnel import FunnelRow
from closedloop.report.roi_paid import ALL_LABEL, paid_total

CSS = """
@page{size:A4;margin:14mm 12mm}
body{font:13px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;
margin:1.5rem auto;max-width:1000px;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.12rem;margin:1.6rem 0 .4rem;break-after:avoid}
h3{font-size:.95rem;margin:1rem 0 .3rem;break-after:avoid}
.muted{color:#6b7280;fill:#6b7280}p{margin:.3rem 0}
table{border-collapse:collapse;width:100%;margin:.3rem 0;font-size:12px}
th,td{padding:.25rem .45rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}td:first-child{overflow-wrap:anywhere}
thead th{background:#f3f4f6;font-weight:600}thead{display:table-header-group}
tr{break-inside:avoid}tfoot td,tr.total td{font-weight:600;border-top:2px solid #d1d5db}
.kpis{display:flex;flex-wrap:wrap;gap:.6rem;margin:.8rem 0}
.kpi{border:1px solid #e5e7eb;border-radius:6px;padding:.45rem .7rem;min-width:130px}
.kpi b{display:block;font-size:1.15rem}.legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
figure{margin:.4rem 0;break-inside:avoid}svg.chart{max-width:100%;height:auto;display:block}
svg text{font:12px system-ui,sans-serif;fill:#374151}
dl.models dt{font-weight:600;float:left;clear:left;width:9rem}dl.models dd{margin:0 0 .2rem 9.5rem}
.note{background:#fffbeb;border-left:3px solid #d97706;padding:.3rem .6rem;margin:.4rem 0}
@media print{body{margin:0;max-width:none;font-size:10.5pt}table{font-size:9pt}
.kpi{padding:.3rem .5rem}a{color:inherit}}
"""
DASH = "—"


def _num(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def _table(head: list[str], rows: list[list[str]], foot: list[list[str]] | None = None) -> str:
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</tbody>")
    if foot:
        out += ["<tfoot>", *("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in foot), "</tfoot>"]
    return "".join(out) + "</table>"


def _header(d: ReportData) -> str:
    t = d.funnel_total
    paid = paid_total(d.roi_channel)
    web = next((f for f in d.coverage if f.key == "won_revenue_web"), None)
    kpis = [
        ("Won revenue", f"{_num(d.won_revenue)} {escape(d.currency)}"),
        ("Won deals", _num(t.won, 1)),
        ("New leads", _num(t.leads, 1)),
        ("Paid ROAS", DASH if paid.roas is None else f"{paid.roas:.2f}x"),
        ("Revenue with a web journey", _pct(web.share if web else None)),
    ]
    return (
        f"<h1>Marketing attribution report</h1><p><b>Period:</b> {escape(d.period_label)} "
        f"({escape(d.period.timezone)}) · <b>Currency:</b> {escape(d.currency)} · <b>Model:</b> {escape(d.model)}"
        f" · <span class=muted>generated {d.generated_at:%Y-%m-%d %H:%M} UTC by closedloop</span></p>"
        '<div class="kpis">' + "".join(f'<div class="kpi"><span class=muted>{k}</span><b>{v}</b></div>'
                                       for k, v in kpis) + "</div>"
        + "".join(f'<p class="note">{escape(n)}</p>' for n in d.notes)
    )


def _funnel(d: ReportData) -> str:
    cur = escape(d.currency)
    head = ["Channel", "Sessions", "Leads", *(["MQL", "SQL"] if d.has_lifecycle else []), "Opps", "Won",
            f"Revenue ({cur})", "Session→lead", "Lead→opp", "Opp→won", "Days to close"]

    def cells(r: FunnelRow) -> list[str]:
        return [escape(r.channel), f"{r.sessions:,}", _num(r.leads, 1),
                *([_num(r.mql, 1), _num(r.sql, 1)] if d.has_lifecycle else []), _num(r.opportunities, 1),
                _num(r.won, 1), _num(r.revenue), _pct(r.session_to_lead), _pct(r.lead_to_opportunity),
                _pct(r.opportunity_to_won), _num(r.days_to_close, 1)]

    chart = charts.grouped_bar_chart(
        [r.channel for r in d.funnel], ["Leads", "Opportunities", "Won"],
        {r.channel: {"Leads": r.leads, "Opportunities": r.opportunities, "Won": r.won} for r in d.funnel},
        label="Leads, opportunities and won deals per channel", fmt=lambda v: f"{v:,.1f}")
    return (
        "<section><h2>Funnel by channel</h2>"
        f"<p class=muted>Leads, MQL, SQL, opportunities and won deals are <b>credited</b> under {escape(d.model)}, "
        "not counted: a conversion whose journey touched three channels gives each a share of one, so a channel "
        "can show “Won 23.5”. Columns still add up to the real totals. Days to close: median days from lead "
        "creation to the win, each deal weighted by the channel's share.</p>"
        f"<figure>{charts.legend(['Leads', 'Opportunities', 'Won'])}{chart}</figure>"
        + _table(head, [cells(r) for r in d.funnel], [cells(d.funnel_total)]) + "</section>"
    )


def _models(d: ReportData) -> str:
    channels = sorted(d.revenue_by_model, key=lambda c: -d.revenue_by_model[c].get(d.model, 0.0))
    cur = escape(d.currency)
    chart = charts.grouped_bar_chart(channels, d.models, d.revenue_by_model,
                                     label="Credited won revenue per channel and model", fmt=lambda v: f"{v:,.0f}")
    rows = [[escape(c), *(_num(d.revenue_by_model[c].get(mo, 0.0)) for mo in d.models)] for c in channels]
    foot = [["Total", *(_num(sum(d.revenue_by_model[c].get(mo, 0.0) for c in channels)) for mo in d.models)]]
    notes = "".join(f"<dt>{escape(name)}</dt><dd>{escape(d.model_notes[name])}</dd>" for name in d.models)
    return (
        f"<section><h2>Won revenue by channel under each model ({cur})</h2>"
        f"<p class=muted>Every model credits the same won revenue ({_num(d.won_revenue)} {cur}); "
        "they differ in which touches they reward.</p>"
        f"<figure>{charts.legend(d.models)}{chart}</figure>"
        + _table(["Channel", *(escape(mo) for mo in d.models)], rows, foot)
        + f'<dl class="models">{notes}</dl></section>'
    )


def _roi_cells(r: RoiRow, *, campaign: bool, total: bool = False) -> list[str]:
    name = "" if total else escape(r.campaign or "(none)")
    return [escape(r.channel), *([name] if campaign else []), _num(r.cost),
            _num(r.leads, 1), _num(r.customers, 1), _num(r.revenue), _num(r.cost_per_lead, 2), _num(r.cac),
            DASH if r.roas is None else f"{r.roas:.2f}x", _pct(r.roi)]


def _roi_table(report: RoiReport, currency: str, *, campaign: bool) -> str:
    cur = escape(currency)
    head = ["Channel", *(["Campaign"] if campaign else []), f"Cost ({cur})", "Leads", "Won", f"Revenue ({cur})",
            f"Cost/lead ({cur})", f"CAC ({cur})", "ROAS", "ROI"]
    rows = [r for r in report.rows if r.cost is not None] if campaign else report.rows
    paid = paid_total(report)
    everything = RoiRow(ALL_LABEL, "" if campaign else None, None, report.total.leads, report.total.opportunities,
                        report.total.customers, report.total.revenue)
    foot = [_roi_cells(paid, campaign=campaign, total=True)]
    if not campaign:
        cells = _roi_cells(everything, campaign=campaign, total=True)
        cells[1] = _num(report.total.cost)  # the cost is known; only its ratios against all revenue are not
        foot.append(cells)
    return _table(head, [_roi_cells(r, campaign=campaign) for r in rows], foot)


def _roi(d: ReportData) -> str:
    if not d.has_spend:
        return ("<section><h2>Cost and return</h2><p>No spend is known for this period: connect GA4 ad cost or "
                "add <code>attribution.spend_files</code>, then cost, CAC, ROAS and ROI appear here.</p></section>")
    paid = [r for r in d.roi_channel.rows if r.cost]
    chart = charts.bar_chart([(r.channel, r.roas or 0.0) for r in paid], label="ROAS per paid channel",
                             fmt=lambda v: f"{v:.2f}x")
    return (
        f"<section><h2>Cost and return by channel ({escape(d.currency)})</h2>"
        "<p class=muted>ROAS = credited won revenue / cost; ROI = (revenue − cost) / cost; CAC = cost per credited "
        "won deal. <b>The paid total compares the revenue of channels with spend to their cost</b>; the "
        "all-channels row adds organic revenue, which no cost bought, so it has no ratios.</p>"
        f"<figure><h3>ROAS per paid channel</h3>{chart}</figure>"
        + _roi_table(d.roi_channel, d.currency, campaign=False)
        + f"<h3>By campaign (campaigns with spend)</h3>{_roi_table(d.roi_campaign, d.currency, campaign=True)}"
        "</section>"
    )


def _trend(d: ReportData) -> str:
    if not d.trend:
        return "<section><h2>Monthly trend</h2><p>No leads or won deals in this period.</p></section>"
    months = [r.month for r in d.trend]
    chart = charts.month_chart(months, [r.revenue for r in d.trend],
                               {"Leads": [r.leads for r in d.trend], "Won deals": [r.won for r in d.trend]},
                               label="Monthly won revenue, leads and won deals", bar_name="Won revenue",
                               fmt=lambda v: f"{v:,.0f}")
    rows = [[r.month, f"{r.leads:,}", f"{r.won:,}", _num(r.revenue)] for r in d.trend]
    return (
        "<section><h2>Monthly trend</h2><p class=muted>Bars: won revenue credited in the month "
        f"({escape(d.currency)}, left scale); lines: leads created and deals won (counts, right scale).</p>"
        f'<figure><p class="legend"><span><i class="swatch" style="background:#bfdbfe"></i>Won revenue</span>'
        f'<span><i class="swatch" style="background:{charts.PALETTE[1]}"></i>Leads</span>'
        f'<span><i class="swatch" style="background:{charts.PALETTE[2]}"></i>Won deals</span></p>{chart}</figure>'
        + _table(["Month", "Leads", "Won deals", f"Won revenue ({escape(d.currency)})"], rows) + "</section>"
    )


def _pages(d: ReportData) -> str:
    if not d.landing_pages:
        return ""
    chart = charts.bar_chart([(p.page, p.leads) for p in d.landing_pages], label="Credited leads per landing page",
                             fmt=lambda v: f"{v:,.1f}", color=charts.PALETTE[3])
    rows = [[escape(p.page), f"{p.sessions:,}", _num(p.leads, 1), _pct(p.lead_rate), _num(p.revenue)]
            for p in d.landing_pages]
    return ("<section><h2>Top converting landing pages</h2><p class=muted>Leads credited (under "
            f"{escape(d.model)}) to sessions that landed on the page.</p><figure>{chart}</figure>"
            + _table(["Landing page", "Sessions", "Leads", "Lead rate", f"Won revenue ({escape(d.currency)})"], rows)
            + "</section>")


def _coverage(d: ReportData) -> str:
    shares = [(f.label, f.share) for f in d.coverage if f.whole is not None]
    rows = [[escape(f.label),
             (f"{_num(f.part)} of {_num(f.whole)} {escape(d.currency)}" if f.money else
              f"{_num(f.part)} of {_num(f.whole)}") if f.whole is not None else _num(f.part),
             _pct(f.share), escape(f.note)] for f in d.coverage]
    return ("<section><h2>Coverage: how much rests on web data</h2><p class=muted>A conversion has a web journey "
            "when a GA4 session is among its credited touches; the rest was credited from CRM source fields.</p>"
            f"<figure>{charts.share_chart(shares, label='Coverage shares')}</figure>"
            + _table(["Figure", "Of", "Share", "Note"], rows) + "</section>")


def render_html(data: ReportData) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>closedloop report · {escape(data.period_label)}</title>"
        f'<meta name=viewport content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
        + _header(data) + _funnel(data) + _models(data) + _roi(data) + _trend(data) + _pages(data)
        + _coverage(data) + "</body></html>\n"
    )
