"""Every table closedloop prints fits 80 columns when piped (as under `docker exec`), with no cell cut to '…'.

Rows use long, realistic names (campaign names, endpoint paths, quarantine reasons) so a table that
only fits because its data is short would fail here.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from report_store import fill_store, write_config
from rich.cells import cell_len
from rich.console import RenderableType
from sqlalchemy import Engine

from closedloop.attribution.roi import CreditLine, SpendLine, roi_report
from closedloop.config.loader import load_config
from closedloop.report.build import build_report
from closedloop.report.fit import Col, FitTable, render_text
from closedloop.report.history import quarantine_table, runs_table
from closedloop.report.period import Period
from closedloop.report.roi_table import roi_table
from closedloop.report.summary import ChannelRow, ChannelSummary
from closedloop.report.terminal import (
    api_calls_table,
    channel_table,
    coverage_table,
    funnel_table,
    landing_pages_table,
    models_table,
    report_revenue_chart,
    revenue_chart,
    trend_table,
    writeback_table,
)
from closedloop.store import models as m
from closedloop.store.engine import open_store, session_scope
from closedloop.store.models import table
from closedloop.store.upsert import upsert

os.environ.setdefault("REPORT_TEST_TOKEN", "not-used")
MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "u_shaped", "w_shaped", "time_decay", "markov"]
CHANNELS = ["Paid Search", "Organic Search", "Cross-network", "Organic Social", "Unassigned", "Email"]
CAMPAIGNS = ["2026_q4_enterprise_attribution_retargeting_emea_lookalike", "brand_search_us", "nb_crm_analytics"]


def shows_whole(lines: list[str], word: str) -> bool:
    """``word`` is in the text whole: on one line, or folded into one column over consecutive lines."""
    target = "".join(word.split())
    for i, line in enumerate(lines):
        for col in range(len(line)):
            found = ""
            for below in lines[i:]:
                cell = re.match(r"\S+(?: \S+)*", below[col:])
                if cell is None or (found and col > 0 and below[col - 1] != " "):
                    break
                found += "".join(cell.group(0).split())
                if found.startswith(target):
                    return True
                if not target.startswith(found):
                    break
    return False


def assert_fits(renderable: RenderableType, *, must_show: list[str]) -> str:
    text = render_text(renderable, width=80)
    wide = [line for line in text.splitlines() if cell_len(line) > 80]
    assert not wide, wide
    assert "…" not in text
    for word in must_show:
        assert shows_whole(text.splitlines(), word), (word, text)
    return text


def summary() -> ChannelSummary:
    rows = [ChannelRow(c, 123_456 + i, 1234.5, 234.5, 23.5, {m: 1_234_567.0 * (i + 1) for m in MODELS})
            for i, c in enumerate(CHANNELS)]
    return ChannelSummary("u_shaped", MODELS, rows, 9_999_999.0,
                          {"sessions": 999_999, "contacts": 9_999, "deals": 999, "won": 99})


def test_channel_table_and_revenue_chart() -> None:
    assert_fits(channel_table(summary(), currency="EUR"), must_show=[*CHANNELS, *MODELS, "7,407,402", "credited"])
    assert_fits(revenue_chart(summary(), currency="EUR"), must_show=CHANNELS)


@pytest.mark.parametrize("by", ["channel", "campaign"])
def test_roi_tables(by: str) -> None:
    day = datetime(2026, 11, 2).date()
    spend = [SpendLine(day, "Paid Search", c, 123_456.78, "ga4") for c in CAMPAIGNS]
    credits = [CreditLine(f"w{i}", "deal_won", "Paid Search", c, 0.5, 1_234_567.0) for i, c in enumerate(CAMPAIGNS)]
    credits += [CreditLine("o", "deal_won", "Organic Search", "", 1.0, 99_999.0)]
    report = roi_report(spend, credits, {"w0": 12.5}, group_by="campaign" if by == "campaign" else "channel")
    text = assert_fits(roi_table(report, title=f"ROI by {by} under u_shaped", currency="USD"),
                       must_show=["Paid Search", "Paid total", "All channels", "ROAS",
                                  *(CAMPAIGNS if by == "campaign" else [])])
    assert "Organic Search" in text.replace("\n", " ") or "Organic" in text


def test_writeback_and_api_calls() -> None:
    wb = {"by_property": {f"closedloop_{m}_first_touch_channel_credited_revenue": 12_345 for m in MODELS},
          "objects_written": 123_456, "records_failed": 12, "properties_created": ["a", "b"]}
    assert_fits(writeback_table(wb), must_show=["objects updated", "closedloop_markov_first_touch"])
    calls = {"POST /crm/v3/objects/contacts/search/with/a/very/long/path/segment/for/testing": {"200": 512, "429": 3},
             "GET /crm/v3/pipelines/deals": {"200": 1}}
    assert_fits(api_calls_table(calls), must_show=["429: 3", "/crm/v3/pipelines/deals"])


def _history_store(tmp_path: Path) -> Engine:
    engine = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    at = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    stats = {"duration_s": 1234.5, "pulled": {"hubspot.contacts": {"records": 1_234_567, "batches": 9}},
             "rebuild": {"touchpoints": {"changed": 9_876_543}, "credits": {"changed": 98_765_432}},
             "writeback": {"properties_written": 1_234_567, "records_failed": 12_345},
             "usage": {"salesforce": {"api_usage_first": 1204, "api_usage_last": 1690, "api_allocation": 100_000}}}
    with session_scope(engine) as session:
        upsert(session, table(m.SyncRun), [
            {"id": i, "job": "run", "started_at": at, "finished_at": at, "status": "partial", "stats": stats,
             "api_calls": {"GET /x": {"200": 123_456}}, "errors": {}} for i in (1, 2)], key=("id",))
        upsert(session, table(m.QuarantinedRow), [
            {"id": 1, "stream": "hubspot.contacts", "record_key": "contact/123456789012",
             "reason": "createdate 'yesterday-ish' is not an ISO-8601 timestamp; the record cannot be placed in time "
             "and was kept aside", "payload": {}, "first_seen": at, "last_seen": at, "times_seen": 3}], key=("id",))
    return engine


def test_runs_and_quarantine(tmp_path: Path) -> None:
    engine = _history_store(tmp_path)
    assert_fits(runs_table(engine, limit=5), must_show=["98,765,432", "partial", "salesforce"])
    found = quarantine_table(engine, limit=5)
    assert found is not None
    assert_fits(found, must_show=["ISO-8601", "contact/123456789012", "hubspot.contacts"])


def test_report_tables(tmp_path: Path) -> None:
    url = fill_store(tmp_path)
    data = build_report(open_store(url), load_config(write_config(tmp_path, url)), model="first_touch",
                        period=Period(None, None, "UTC"), now=datetime(2026, 12, 1, tzinfo=UTC))
    assert_fits(funnel_table(data), must_show=["Paid Search", "MQL", "S→L", "session to lead"])
    assert_fits(models_table(data), must_show=["first_touch", "linear", "Rewards"])
    chart = assert_fits(report_revenue_chart(data), must_show=["Paid Search", "1,000", "66.7%"])
    assert chart.count("█") == 30 + 15  # bars in proportion: 1,000 and 500
    assert_fits(trend_table(data), must_show=["2026-10", "2026-11"])
    assert_fits(landing_pages_table(data), must_show=["/pricing"])
    assert_fits(coverage_table(data.coverage, currency=data.currency),
                must_show=["Won revenue with a web journey", "66.7%"])


def test_a_table_too_wide_is_stacked_with_its_key_column_repeated() -> None:
    wide = FitTable("wide", [Col("Name", "left", key=True), *(Col(f"Figure {i}") for i in range(12))])
    wide.add_row("alpha", *(f"{10 ** 9 + i:,}" for i in range(12)))
    text = assert_fits(wide, must_show=[f"{10 ** 9 + i:,}" for i in range(12)])
    assert text.count("alpha") >= 2 and "wide (1/" in text
