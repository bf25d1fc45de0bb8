"""ROI arithmetic: definitions on hand-built rows, invariants with hypothesis."""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.roi import (
    CreditLine,
    GroupBy,
    RoiRow,
    SpendLine,
    ratio,
    roi_report,
    weighted_median,
    without_overlap,
)

DAY = date(2026, 5, 1)


def credit(conv: str, kind: str, channel: str, weight: float, revenue: float = 0.0, campaign: str = "") -> CreditLine:
    return CreditLine(conv, kind, channel, campaign, weight, revenue)  # type: ignore[arg-type]


def spend(channel: str, cost: float, *, day: date = DAY, campaign: str = "", origin: str = "file:s.csv") -> SpendLine:
    return SpendLine(day, channel, campaign, cost, origin)


def test_the_definitions_on_one_channel() -> None:
    credits = [
        *(credit(f"contact_created:{i}", "contact_created", "Paid Search", 0.5) for i in range(8)),
        credit("deal_created:1", "deal_created", "Paid Search", 1.0),
        credit("deal_created:2", "deal_created", "Paid Search", 1.0),
        credit("deal_won:1", "deal_won", "Paid Search", 0.5, revenue=3000.0),
    ]
    report = roi_report([spend("Paid Search", 600.0), spend("Paid Search", 400.0, day=DAY + timedelta(1))], credits, {})
    (row,) = report.rows
    assert (row.cost, row.leads, row.opportunities, row.customers, row.revenue) == (1000.0, 4.0, 2.0, 0.5, 3000.0)
    assert row.cost_per_lead == 1000.0 / 4
    assert row.cost_per_opportunity == 1000.0 / 2
    assert row.cac == 1000.0 / 0.5
    assert row.roas == 3000.0 / 1000.0
    assert row.roi == (3000.0 - 1000.0) / 1000.0
    assert row.lead_to_opportunity == 2 / 4
    assert row.opportunity_to_won == 0.5 / 2


def test_no_spend_is_unknown_cost_and_zero_spend_is_known() -> None:
    credits = [credit("contact_created:1", "contact_created", "Organic", 1.0),
               credit("contact_created:2", "contact_created", "Events", 1.0)]
    report = roi_report([spend("Events", 0.0)], credits, {})
    rows = {r.channel: r for r in report.rows}
    assert rows["Organic"].cost is None and rows["Organic"].cost_per_lead is None and rows["Organic"].roi is None
    assert rows["Events"].cost == 0.0 and rows["Events"].cost_per_lead == 0.0
    assert rows["Events"].roas is None and rows["Events"].roi is None  # nothing to divide by


def test_ratio_never_divides_by_zero() -> None:
    assert ratio(5.0, 0.0) is None
    assert ratio(None, 3.0) is None
    assert ratio(5.0, None) is None
    assert ratio(6.0, 3.0) == 2.0


def test_spend_files_override_ga4_for_the_channel_days_they_cover() -> None:
    lines = [
        spend("Paid Search", 100.0, origin="ga4"),
        spend("paid search ", 80.0),  # the file spells the channel differently
        spend("Paid Search", 70.0, origin="ga4", day=DAY + timedelta(1)),
        spend("Paid Social", 30.0, origin="ga4"),
    ]
    kept, dropped = without_overlap(lines)
    assert dropped == 100.0
    assert sorted(line.cost for line in kept) == [30.0, 70.0, 80.0]
    report = roi_report(lines, [], {})
    assert report.ga4_cost_overridden == 100.0
    assert report.total.cost == 180.0


def test_campaign_rows_merge_spellings_and_channel_rows_ignore_campaigns() -> None:
    lines = [spend("Paid Search", 10.0, campaign="Brand "), spend("Paid Search", 5.0, campaign="brand"),
             spend("Paid Search", 7.0, campaign="generic")]
    credits = [credit("deal_won:1", "deal_won", "Paid Search", 1.0, 50.0, campaign="BRAND")]
    by_campaign = roi_report(lines, credits, {}, group_by="campaign")
    costs = {(r.channel, (r.campaign or "").lower()): r.cost for r in by_campaign.rows}
    assert costs == {("Paid Search", "brand"): 15.0, ("Paid Search", "generic"): 7.0}
    by_channel = roi_report(lines, credits, {}, group_by="channel")
    assert [(r.channel, r.campaign, r.cost) for r in by_channel.rows] == [("Paid Search", None, 22.0)]


def test_spend_on_a_channel_nobody_credits_is_flagged() -> None:
    lead = credit("contact_created:1", "contact_created", "Paid Search", 1)
    report = roi_report([spend("Paid Serch", 10.0)], [lead], {})
    assert report.spend_without_credit == ["Paid Serch"]


def test_median_days_is_weighted_by_the_channels_credit() -> None:
    days = {"deal_won:a": 10.0, "deal_won:b": 20.0, "deal_won:c": 90.0}
    credits = [
        credit("deal_won:a", "deal_won", "Email", 0.8), credit("deal_won:a", "deal_won", "Ads", 0.2),
        credit("deal_won:b", "deal_won", "Email", 0.1), credit("deal_won:b", "deal_won", "Ads", 0.9),
        credit("deal_won:c", "deal_won", "Email", 0.1), credit("deal_won:c", "deal_won", "Ads", 0.1),
        credit("deal_won:d", "deal_won", "Ads", 1.0),  # no lead time known: counts, but not for the median
    ]
    rows = {r.channel: r for r in roi_report([], credits, days).rows}
    assert rows["Email"].median_days_lead_to_won == 10.0  # 0.8 of 1.0 weight sits at 10 days
    assert rows["Ads"].median_days_lead_to_won == 20.0
    assert rows["Ads"].customers == pytest.approx(2.2)


def test_rows_are_ordered_by_revenue_then_cost() -> None:
    credits = [credit("deal_won:1", "deal_won", "A", 1, 10.0), credit("deal_won:2", "deal_won", "B", 1, 30.0)]
    report = roi_report([spend("C", 5.0), spend("D", 9.0)], credits, {})
    assert [r.channel for r in report.rows] == ["B", "A", "D", "C"]


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_equal_weights_give_the_ordinary_median(values: list[float]) -> None:
    got = weighted_median((v, 1.0) for v in values)
    assert got == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-9)


@given(
    st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), st.floats(0.001, 100)), min_size=1, max_size=30),
    st.floats(0.01, 100),
)
def test_weighted_median_is_within_range_and_scale_free(points: list[tuple[float, float]], scale: float) -> None:
    median = weighted_median(points)
    assert median is not None
    values = [v for v, _ in points]
    assert min(values) <= median <= max(values)
    # at least half the weight lies on each side (inclusive)
    total = sum(w for _, w in points)
    assert sum(w for v, w in points if v <= median) >= total / 2 * (1 - 1e-9)
    assert sum(w for v, w in points if v >= median) >= total / 2 * (1 - 1e-9)
    scaled = weighted_median((v, w * scale) for v, w in points)
    assert scaled == pytest.approx(median)


def test_weighted_median_of_nothing_is_none() -> None:
    assert weighted_median([]) is None
    assert weighted_median([(5.0, 0.0)]) is None


CHANNELS = st.sampled_from(["Paid Search", "Email", "Organic", "Paid Social"])
CAMPAIGNS = st.sampled_from(["", "brand", "Brand", "generic"])
KINDS = st.sampled_from(["contact_created", "deal_created", "deal_won"])
money = st.floats(0, 10_000, allow_nan=False)
spend_lines = st.builds(
    SpendLine,
    st.integers(0, 5).map(lambda d: DAY + timedelta(days=d)),
    CHANNELS,
    CAMPAIGNS,
    money,
    st.sampled_from(["ga4", "file:a.csv"]),
)
credit_lines = st.builds(
    CreditLine, st.integers(0, 30).map(lambda i: f"c{i}"), KINDS, CHANNELS, CAMPAIGNS, st.floats(0, 1), money
)


def finite_or_none(row: RoiRow) -> bool:
    values = [row.cost_per_lead, row.cost_per_opportunity, row.cac, row.roas, row.roi,
              row.lead_to_opportunity, row.opportunity_to_won, row.median_days_lead_to_won]
    return all(v is None or math.isfinite(v) for v in values)


@settings(max_examples=150)
@given(st.lists(spend_lines, max_size=30), st.lists(credit_lines, max_size=40))
def test_totals_add_up_and_nothing_is_infinite(lines: list[SpendLine], credits: list[CreditLine]) -> None:
    groupings: tuple[GroupBy, ...] = ("channel", "campaign")
    for group_by in groupings:
        report = roi_report(lines, credits, {c.conversion_id: 3.0 for c in credits}, group_by=group_by)
        assert all(finite_or_none(r) for r in [*report.rows, report.total])
        kept, dropped = without_overlap(lines)
        assert sum(r.cost or 0.0 for r in report.rows) == pytest.approx(sum(s.cost for s in kept))
        assert (report.total.cost or 0.0) + dropped == pytest.approx(sum(s.cost for s in lines))
        for field in ("leads", "opportunities", "customers", "revenue"):
            assert sum(getattr(r, field) for r in report.rows) == pytest.approx(getattr(report.total, field))
        assert report.total.revenue == pytest.approx(sum(c.revenue for c in credits if c.kind == "deal_won"))


@settings(max_examples=100)
@given(st.lists(spend_lines, max_size=30), st.lists(credit_lines, max_size=40))
def test_campaign_rows_sum_to_their_channel_row(lines: list[SpendLine], credits: list[CreditLine]) -> None:
    by_channel = {r.channel: r for r in roi_report(lines, credits, {}).rows}
    by_campaign = roi_report(lines, credits, {}, group_by="campaign").rows
    for channel, row in by_channel.items():
        parts = [r for r in by_campaign if r.channel == channel]
        assert sum(p.leads for p in parts) == pytest.approx(row.leads)
        assert sum(p.revenue for p in parts) == pytest.approx(row.revenue)
        costs = [p.cost for p in parts if p.cost is not None]
        assert (sum(costs) if costs else None) == (None if row.cost is None else pytest.approx(row.cost))
