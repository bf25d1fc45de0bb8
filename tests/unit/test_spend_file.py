"""Spend files: CSV and YAML parsing, every problem at once with file:line and field."""

from __future__ import annotations

import calendar
import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closedloop.config.loader import ConfigError, parse_config
from closedloop.files.spend import (
    MAX_ORIGIN,
    SpendEntry,
    load_spend_files,
    parse_spend_csv,
    parse_spend_yaml,
    spend_origin,
)


def test_csv_rows_become_entries_and_repeats_add_up() -> None:
    text = (
        "Date,Channel,Campaign,Cost\n"
        "2026-05-01,Paid Search,brand,120.50\n"
        "2026-05-01,Paid Search,brand,10\n"
        "\n"
        "2026-05-02, Paid Social ,,80\n"
    )
    entries, problems = parse_spend_csv(text, file="s.csv")
    assert problems == []
    assert sorted(entries, key=lambda e: e.day) == [
        SpendEntry(date(2026, 5, 1), "Paid Search", "brand", 130.5),
        SpendEntry(date(2026, 5, 2), "Paid Social", "", 80.0),
    ]


def test_csv_campaign_column_is_optional_and_order_free() -> None:
    entries, problems = parse_spend_csv("cost,channel,date\n5,Email,2026-01-31\n", file="s.csv")
    assert problems == []
    assert entries == [SpendEntry(date(2026, 1, 31), "Email", "", 5.0)]


def test_csv_every_bad_row_is_reported_with_line_and_column() -> None:
    text = (
        "date,channel,campaign,cost\n"
        "2026-05-01,Paid Search,brand,12\n"
        "05/02/2026,Paid Search,brand,12\n"  # line 3: date
        "2026-05-03,,brand,1,234\n"  # line 4: field count
        "2026-05-04,,brand,-3\n"  # line 5: empty channel and negative cost
        "2026-02-30,Email,,abc\n"  # line 6: no such day, not a number
    )
    entries, problems = parse_spend_csv(text, file="s.csv")
    assert entries == [SpendEntry(date(2026, 5, 1), "Paid Search", "brand", 12.0)]
    found = {(p.line, p.field) for p in problems}
    assert found == {
        (3, "date (column 1)"),
        (4, ""),
        (5, "channel (column 2)"),
        (5, "cost (column 4)"),
        (6, "date (column 1)"),
        (6, "cost (column 4)"),
    }
    assert all(p.file == "s.csv" for p in problems)
    assert "05/02/2026" in next(p.message for p in problems if p.line == 3)


def test_csv_header_problems() -> None:
    _, problems = parse_spend_csv("day,channel,costs\n", file="s.csv")
    assert {p.field for p in problems} == {"day (column 1)", "costs (column 3)", "date", "cost"}
    assert {p.line for p in problems} == {1}
    _, empty = parse_spend_csv("", file="s.csv")
    assert len(empty) == 1 and "empty" in empty[0].message


def test_yaml_days_and_months() -> None:
    text = (
        "- {date: 2026-05-01, channel: Paid Search, campaign: brand, cost: 120.5}\n"
        "- month: 2026-11\n"
        "  channel: Events\n"
        "  cost: 3000\n"
    )
    entries, problems = parse_spend_yaml(text, file="s.yaml")
    assert problems == []
    events = [e for e in entries if e.channel == "Events"]
    assert sorted(e.day for e in events) == [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    assert {e.cost for e in events} == {100.0}
    assert SpendEntry(date(2026, 5, 1), "Paid Search", "brand", 120.5) in entries


@given(st.integers(2000, 2100), st.integers(1, 12), st.floats(0, 1e7, allow_nan=False))
def test_a_month_spreads_its_whole_cost_over_its_days(year: int, month: int, cost: float) -> None:
    entries, problems = parse_spend_yaml(f"- {{month: {year}-{month:02d}, channel: X, cost: {cost!r}}}\n", file="s")
    assert problems == []
    assert len(entries) == calendar.monthrange(year, month)[1]
    assert sum(e.cost for e in entries) == pytest.approx(cost, rel=1e-9, abs=1e-9)


def test_yaml_every_problem_with_its_line() -> None:
    text = (
        "- {date: 2026-05-01, channel: Paid Search, cost: 1}\n"  # 1 ok
        "- {date: 2026-05-01, month: 2026-05, channel: A, cost: 1}\n"  # 2 both
        "- {month: 2026-13, channel: A, cost: 1}\n"  # 3 bad month
        "- {date: 2026-05-01, channel: A, costs: 1}\n"  # 4 unknown field + missing cost
        "- {date: 2026-05-01, cost: 1}\n"  # 5 missing channel
        "- just text\n"  # 6 not a mapping
    )
    entries, problems = parse_spend_yaml(text, file="s.yaml")
    assert len(entries) == 1
    found = {(p.line, p.field.split(" ")[0]) for p in problems}
    assert found == {
        (2, "[1]"),
        (3, "[2].month"),
        (4, "[3].costs"),
        (4, "[3].cost"),
        (5, "[4].channel"),
        (6, "[5]"),
    }


def test_yaml_root_must_be_a_list() -> None:
    _, problems = parse_spend_yaml("channel: A\n", file="s.yaml")
    assert len(problems) == 1 and "list" in problems[0].message
    _, broken = parse_spend_yaml("- {date: [\n", file="s.yaml")
    assert len(broken) == 1 and "YAML" in broken[0].message


def test_load_reports_every_file_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("date,channel,cost\nnope,A,1\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("- {date: 2026-01-01, channel: B, cost: x}\n", encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.csv").write_text("date,channel,cost\n2026-01-01,A,1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_spend_files(["a.csv", "b.yaml", "missing.csv", str(other / "a.csv")], base_dir=tmp_path)
    problems = caught.value.problems
    assert {(Path(p.file).name, p.line) for p in problems} == {
        ("a.csv", 2), ("b.yaml", 1), ("missing.csv", None), ("a.csv", None)
    }
    assert "same file name" in str(caught.value)


def test_load_reads_bom_csv_and_names_the_origin(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_bytes("date,channel,cost\r\n2026-01-01,A,2.5\r\n".encode("utf-8-sig"))
    (loaded,) = load_spend_files([path])
    assert loaded.origin == "file:ads.csv"
    assert loaded.entries == [SpendEntry(date(2026, 1, 1), "A", "", 2.5)]
    assert loaded.total == 2.5


@given(st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=80))
def test_origins_fit_the_column_and_stay_distinct(stem: str) -> None:
    a, b = spend_origin(Path(f"{stem}.csv")), spend_origin(Path(f"{stem}x.csv"))
    assert len(a) <= MAX_ORIGIN and len(b) <= MAX_ORIGIN
    assert a.startswith("file:") and a != b
    assert spend_origin(Path("/elsewhere") / f"{stem}.csv") == a


entry_strategy = st.builds(
    SpendEntry,
    st.integers(0, 400).map(lambda d: date(2026, 1, 1) + timedelta(days=d)),
    st.sampled_from(["Paid Search", "Email", "Événements"]),
    st.sampled_from(["", "brand", "a,b", 'say "hi"']),
    st.integers(0, 10**8).map(lambda c: c / 100),
)


@given(st.lists(entry_strategy, max_size=25))
def test_csv_written_by_a_spreadsheet_reads_back(entries: list[SpendEntry]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["date", "channel", "campaign", "cost"])
    for e in entries:
        writer.writerow([e.day.isoformat(), e.channel, e.campaign, repr(e.cost)])
    parsed, problems = parse_spend_csv(buffer.getvalue(), file="s.csv")
    assert problems == []
    expected: dict[tuple[date, str, str], float] = {}
    for e in entries:
        expected[(e.day, e.channel, e.campaign)] = expected.get((e.day, e.channel, e.campaign), 0.0) + e.cost
    assert {(e.day, e.channel, e.campaign): e.cost for e in parsed} == pytest.approx(expected)


def test_config_refuses_other_extensions_with_the_line() -> None:
    text = "hubspot:\n  access_token_file: /t\nattribution:\n  spend_files: [spend.csv, spend.xlsx]\n  currency: usd\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="c.yaml")
    fields = {(p.field, p.line) for p in caught.value.problems}
    assert ("attribution.spend_files", 4) in fields
    assert ("attribution.currency", 5) in fields
    ok = parse_config(text.replace(", spend.xlsx", "").replace("usd", "USD"), file="c.yaml")
    assert ok.attribution.spend_files == ["spend.csv"] and ok.attribution.currency == "USD"
