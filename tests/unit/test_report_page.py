"""The HTML report: one self-contained file, every section with its chart, money with its currency."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_store import fill_store, write_config

from closedloop.config.loader import load_config
from closedloop.report.build import ReportData, build_report
from closedloop.report.html import render_html
from closedloop.report.period import Period
from closedloop.store.engine import open_store

os.environ.setdefault("REPORT_TEST_TOKEN", "not-used")


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sources: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.sources += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def data(tmp_path: Path) -> ReportData:
    url = fill_store(tmp_path)
    config = load_config(write_config(tmp_path, url))
    return build_report(open_store(url), config, model="first_touch", period=Period(None, None, "UTC"),
                        now=datetime(2026, 12, 1, tzinfo=UTC))


def parse(page: str) -> tuple[Collect, str]:
    parsed = Collect()
    parsed.feed(page)
    return parsed, " ".join(" ".join(parsed.text).split())


def test_the_page_is_self_contained_and_prints_on_a4(data: ReportData) -> None:
    page = render_html(data)
    parsed, _ = parse(page)
    assert parsed.sources == [] and "script" not in parsed.tags and "link" not in parsed.tags
    assert "url(" not in page and "@import" not in page  # nothing fetched from CSS either
    assert "@page{size:A4" in page and "break-inside:avoid" in page
    assert "break-before:page" not in page and "page-break-before" not in page  # no forced blank page


def test_every_section_has_its_chart_and_its_figures(data: ReportData) -> None:
    page = render_html(data)
    parsed, text = parse(page)
    # funnel, models, ROAS, trend, landing pages, coverage
    assert parsed.tags.count("svg") == 6
    for heading in ("Funnel by channel", "Won revenue by channel under each model (USD)",
                    "Cost and return by channel (USD)", "Monthly trend", "Top converting landing pages",
                    "Coverage"):
        assert heading in text, heading
    assert "Period: 2026-10-05 to 2026-11-09" in text and "Currency: USD" in text
    assert "1,500 USD" in text  # won revenue, with its currency
    assert "Paid total 200 1.0 1.0 1,000 200.00 200 5.00x 400.0%" in text  # paid revenue over paid cost
    assert "All channels 200 3.0 2.0 1,500 — — — —" in text  # organic revenue: no cost ratio
    assert "spring" in text
    assert "credited" in text and "Won 23.5" in text  # fractional counts are explained where shown
    assert "Rewards the channel that first brought the person in" in text
    assert "/pricing 2 1.0 50.0% 1,000" in text
    assert "Won revenue with a web journey 1,000 of 1,500 USD 66.7%" in text


def test_bars_are_proportional_to_the_figures(data: ReportData) -> None:
    page = render_html(data)
    roas = re.search(r'aria-label="ROAS per paid channel".*?</svg>', page)
    assert roas is not None
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', roas.group(0))]
    assert len(widths) == 1 and widths[0] > 500  # the only paid channel fills the plot


def test_names_are_escaped_in_markup_and_intact_as_text(data: ReportData) -> None:
    data.funnel[0].channel = "<Email & co>"
    page = render_html(data)
    _, text = parse(page)
    assert "<Email & co>" in text and "<Email & co>" not in page


def test_without_spend_the_report_says_how_to_get_it(tmp_path: Path) -> None:
    url = fill_store(tmp_path)
    config = load_config(write_config(tmp_path, url))
    november = Period(date(2026, 11, 1), None, "UTC")  # the only cost is on 1 October
    later = build_report(open_store(url), config, model="first_touch", period=november,
                         now=datetime(2026, 12, 1, tzinfo=UTC))
    _, text = parse(render_html(later))
    assert "No spend is known for this period" in text
