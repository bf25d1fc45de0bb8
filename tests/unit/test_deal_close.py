"""When a lost deal closed (mapping.conversions.lost_date): where its non-converting path ends.

Salesforce's CloseDate is a day and HubSpot's closedate a moment; the stage history is a moment
in both, so it decides, and the close date is only the fallback.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closedloop.attribution.windows import window_channels
from closedloop.mapping.conversions import DealFacts, lost_date, won_date

CLOSE_DAY = datetime(2026, 5, 20, tzinfo=UTC)  # a CloseDate, read as its midnight
LOST_AT = CLOSE_DAY + timedelta(hours=16, minutes=9)  # the stage history's 'Closed Lost' entry


def deal(*, is_won: bool = False, closed_at: datetime | None = CLOSE_DAY) -> DealFacts:
    return DealFacts("d1", CLOSE_DAY - timedelta(days=9), 1000.0, is_won, closed_at, ("c1",))


def test_a_lost_deal_closes_at_its_first_entry_into_a_lost_stage_not_at_its_close_day() -> None:
    later = LOST_AT + timedelta(days=3)  # lost again after a reopening: the first loss counts
    assert lost_date(deal(), [later, LOST_AT]) == LOST_AT
    # The close day's touch before the loss stays in the path; cut at midnight it was lost.
    touches = [(CLOSE_DAY - timedelta(days=2), "Paid Search"), (CLOSE_DAY + timedelta(hours=9), "Paid Social")]
    end = lost_date(deal(), [LOST_AT])
    assert window_channels(touches, end=end, lookback=timedelta(days=30)) == ["Paid Search", "Paid Social"]


def test_without_stage_history_the_close_date_decides() -> None:
    assert lost_date(deal(), []) == CLOSE_DAY


def test_won_or_open_deals_have_no_lost_date() -> None:
    assert lost_date(deal(is_won=True), [LOST_AT]) is None
    # Reopened: it once entered a lost stage, but it is not closed now.
    assert lost_date(deal(closed_at=None), [LOST_AT]) is None
    assert won_date(deal(is_won=True), []) == CLOSE_DAY
