"""Inline SVG charts for the HTML report: no script, no font or file fetched, so the file opens
offline, in a mail client's preview and on paper the same way.

Each function returns one ``<svg class="chart">`` with a viewBox and explicit height, so it
scales to the page width and never collapses to nothing.  Bars carry a ``<title>`` with the
exact figure for readers who hover.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f", "#be185d"]
WIDTH = 900
Fmt = Callable[[float], str]


def _svg(height: float, label: str, body: list[str]) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
            f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg>")


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def bar_chart(items: Sequence[tuple[str, float]], *, label: str, fmt: Fmt, color: str = PALETTE[0]) -> str:
    """One horizontal bar per item, the figure at its end."""
    label_w, bar_h, gap = 170, 16, 6
    top = max((v for _, v in items), default=0.0) or 1.0
    plot_w = WIDTH - label_w - 110
    body: list[str] = []
    for i, (name, value) in enumerate(items):
        y = i * (bar_h + gap) + 4
        w = max(plot_w * max(value, 0.0) / top, 1.0)
        body.append(f'<text x="0" y="{y + 12}">{escape(_clip(name, 26))}</text>'
                    f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                    f"<title>{escape(name)}: {escape(fmt(value))}</title></rect>"
                    f'<text x="{label_w + w + 5:.1f}" y="{y + 12}">{escape(fmt(value))}</text>')
    return _svg(len(items) * (bar_h + gap) + 8, label, body)


def grouped_bar_chart(
    categories: Sequence[str], series: Sequence[str], values: dict[str, dict[str, float]], *, label: str, fmt: Fmt
) -> str:
    """Per category a group of horizontal bars, one per series (models side by side)."""
    label_w, bar_h, gap = 170, 8, 10
    top = max((values.get(c, {}).get(s, 0.0) for c in categories for s in series), default=0.0) or 1.0
    plot_w = WIDTH - label_w - 110
    group_h = bar_h * len(series) + gap
    body: list[str] = []
    for i, category in enumerate(categories):
        y0 = i * group_h + 4
        body.append(f'<text x="0" y="{y0 + bar_h * len(series) / 2 + 4:.0f}">{escape(_clip(category, 26))}</text>')
        for k, name in enumerate(series):
            value = values.get(category, {}).get(name, 0.0)
            w = max(plot_w * max(value, 0.0) / top, 1.0)
            body.append(f'<rect x="{label_w}" y="{y0 + k * bar_h}" width="{w:.1f}" height="{bar_h - 1}" '
                        f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(category)} · {escape(name)}: '
                        f"{escape(fmt(value))}</title></rect>")
        first = values.get(category, {}).get(series[0], 0.0) if series else 0.0
        body.append(f'<text x="{label_w + plot_w * max(first, 0.0) / top + 5:.1f}" y="{y0 + bar_h - 1}" '
                    f'class="muted">{escape(fmt(first))}</text>')
    return _svg(len(categories) * group_h + 8, label, body)


def legend(series: Sequence[str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i class="swatch" style="background:{PALETTE[k % len(PALETTE)]}"></i>{escape(s)}</span>'
        for k, s in enumerate(series)) + "</p>"


def month_chart(months: Sequence[str], bars: Sequence[float], lines: dict[str, Sequence[float]], *,
                label: str, bar_name: str, fmt: Fmt) -> str:
    """Monthly bars (left scale) with count lines over them (right scale)."""
    height, left, right, bottom, top_pad = 240, 70, 50, 28, 12
    plot_w, plot_h = WIDTH - left - right, height - bottom - top_pad
    n = max(len(months), 1)
    step = plot_w / n
    bar_top = max(bars, default=0.0) or 1.0
    line_top = max((v for values in lines.values() for v in values), default=0.0) or 1.0
    body = [f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
            'stroke="#9ca3af"/>',
            f'<text x="0" y="{top_pad + 8}" class="muted">{escape(fmt(bar_top))}</text>',
            f'<text x="{WIDTH - right + 6}" y="{top_pad + 8}" class="muted">{line_top:,.0f}</text>']
    for i, (month, value) in enumerate(zip(months, bars, strict=True)):
        h = max(plot_h * max(value, 0.0) / bar_top, 1.0)
        x = left + i * step + step * 0.15
        body.append(f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="#bfdbfe"><title>{escape(month)} · {escape(bar_name)}: {escape(fmt(value))}</title></rect>')
        if n <= 12 or i % max(1, n // 12) == 0:
            body.append(f'<text x="{left + i * step + step / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                        f"{escape(month)}</text>")
    for k, (name, values) in enumerate(lines.items()):
        color = PALETTE[(k + 1) % len(PALETTE)]
        points = [(left + i * step + step / 2, top_pad + plot_h - plot_h * v / line_top) for i, v in enumerate(values)]
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(months[i])} · '
                 f"{escape(name)}: {values[i]:,.0f}</title></circle>" for i, (x, y) in enumerate(points)]
    return _svg(height, label, body)


def share_chart(items: Sequence[tuple[str, float | None]], *, label: str) -> str:
    """One 100% bar per figure: the share filled, the rest grey, the percentage at the end."""
    label_w, bar_h, gap = 340, 16, 8
    plot_w = WIDTH - label_w - 70
    body: list[str] = []
    for i, (name, share) in enumerate(items):
        y = i * (bar_h + gap) + 4
        filled = plot_w * min(max(share or 0.0, 0.0), 1.0)
        text = "—" if share is None else f"{share * 100:.0f}%"
        body.append(f'<text x="0" y="{y + 12}">{escape(_clip(name, 54))}</text>'
                    f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#e5e7eb"/>'
                    f'<rect x="{label_w}" y="{y}" width="{max(filled, 1.0):.1f}" height="{bar_h}" fill="{PALETTE[1]}">'
                    f"<title>{escape(name)}: {text}</title></rect>"
                    f'<text x="{label_w + plot_w + 6}" y="{y + 12}">{text}</text>')
    return _svg(len(items) * (bar_h + gap) + 8, label, body)
