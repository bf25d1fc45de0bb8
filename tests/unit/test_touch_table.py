"""The rebuild's columnar touches give back exactly the touches that went in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closedloop.attribution.types import Touch
from closedloop.sync.touch_table import TouchTable

CHANNELS = st.sampled_from(["Direct", "Email", "Paid Search", "Organic Search", ""])
TIMES = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
TOUCHES = st.builds(
    Touch,
    channel=CHANNELS,
    at=TIMES,
    touchpoint_id=st.integers(min_value=0, max_value=2**63 - 1),
    is_direct=st.booleans(),
    campaign=st.text(max_size=12),
)


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=3), st.lists(TOUCHES, max_size=5)), max_size=12))
def test_touches_round_trip_by_position(gaps_and_touches: list[tuple[int, list[Touch]]]) -> None:
    table = TouchTable()
    expected: dict[int, list[Touch]] = {}
    position = 0
    for gap, touches in gaps_and_touches:
        position += gap  # positions skipped (merged contacts) have no touches
        table.add(position, touches)
        expected[position] = touches
        position += 1
    for p in range(position + 2):
        assert table.touches(p) == expected.get(p, [])
        assert table.channels(p) == [t.channel for t in expected.get(p, [])]


def test_times_in_another_zone_come_back_as_the_same_instant_in_utc() -> None:
    table = TouchTable()
    at = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    table.add(0, [Touch("Email", at, 7)])
    (back,) = table.touches(0)
    assert back.at == at and back.at.tzinfo == UTC


def test_positions_must_increase_and_naive_times_are_refused() -> None:
    table = TouchTable()
    table.add(2, [])
    with pytest.raises(ValueError, match="already added"):
        table.add(1, [])
    good = Touch("Email", datetime(2026, 1, 1, tzinfo=UTC), 1)
    with pytest.raises(ValueError, match="naive"):
        table.add(3, [good, Touch("Email", datetime(2026, 1, 1), 2)])
    table.add(3, [good])  # the refused position left nothing behind
    assert table.touches(3) == [good] and len(table) == 4
