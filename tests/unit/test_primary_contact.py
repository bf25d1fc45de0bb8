"""One rule for whose conversion a deal is (mapping.primary), and the lookback cut of
non-converting paths (attribution.windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from closedloop.attribution.windows import window_channels
from closedloop.mapping.primary import order_deal_contacts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ids_compare_as_numbers_so_9_comes_before_10() -> None:
    assert order_deal_contacts([("10", T0, False), ("9", T0, False)]) == ("9", "10")


def test_the_earliest_created_contact_comes_first_without_a_marked_primary() -> None:
    later, earlier = T0 + timedelta(days=3), T0
    assert order_deal_contacts([("1", later, False), ("2", earlier, False)])[0] == "2"


def test_a_marked_primary_wins_over_an_earlier_contact_and_unknown_contacts_come_last() -> None:
    ordered = order_deal_contacts([("1", T0, False), ("3", None, False), ("2", T0 + timedelta(days=9), True)])
    assert ordered == ("2", "1", "3")


def test_a_contact_named_twice_is_primary_if_either_link_says_so() -> None:
    assert order_deal_contacts([("5", T0, False), ("7", T0, False), ("7", T0, True)]) == ("7", "5")


@given(st.lists(st.tuples(st.integers(1, 50).map(str), st.integers(0, 5), st.booleans()), min_size=1, max_size=8))
def test_the_rule_does_not_depend_on_input_order(rows: list[tuple[str, int, bool]]) -> None:
    contacts = [(cid, T0 + timedelta(days=d), p) for cid, d, p in rows]
    first = order_deal_contacts(contacts)
    assert order_deal_contacts(list(reversed(contacts))) == first
    assert set(first) == {cid for cid, _, _ in rows}
    if any(p for _, _, p in rows):  # a marked contact always comes first
        assert any(p for cid, _, p in rows if cid == first[0])


def test_non_converting_paths_are_cut_to_the_lookback_before_their_end() -> None:
    touches = [(T0 + timedelta(days=d), channel) for d, channel in ((0, "a"), (40, "b"), (60, "c"), (95, "d"))]
    # Ending at the last touch (day 95) with 30 days: c (day 60) is 35 days before it, so only d.
    assert window_channels(touches, end=None, lookback=timedelta(days=30)) == ["d"]
    # Ending at a lost deal's close on day 61: b (21 days before) and c; d came after the close.
    assert window_channels(touches, end=T0 + timedelta(days=61), lookback=timedelta(days=30)) == ["b", "c"]
    assert window_channels(touches, end=None, lookback=None) == ["a", "b", "c", "d"]
    assert window_channels([], end=None, lookback=timedelta(days=1)) == []
