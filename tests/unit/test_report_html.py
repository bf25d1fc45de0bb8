"""The HTML report is one well-formed, self-contained file with a bar per channel and model."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

from closedloop.report.html import render_report
from closedloop.report.summary import ChannelRow, ChannelSummary


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sources: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.sources += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_has_every_channel_and_a_bar_per_model_and_fetches_nothing() -> None:
    summary = ChannelSummary(
        "u_shaped", ["first_touch", "u_shaped"],
        [ChannelRow("Paid Search", 10, 2.0, 1.0, 0.5, {"first_touch": 700.0, "u_shaped": 400.0}),
         ChannelRow("<Email & co>", 5, 1.0, 1.0, 0.5, {"first_touch": 300.0, "u_shaped": 600.0})],
        1000.0, {"sessions": 15, "contacts": 3, "deals": 2, "won": 1},
    )
    page = render_report(summary, generated_at=datetime(2026, 11, 20, tzinfo=UTC))
    parsed = Collect()
    parsed.feed(page)
    assert parsed.tags.count("rect") == 4
    assert parsed.sources == []  # nothing loaded from anywhere
    text = "".join(parsed.text)
    assert "<Email & co>" in text and "Paid Search" in text  # escaped in the markup, intact as text
    assert "<Email & co>" not in page
    assert "1,000" in text and "600" in text
