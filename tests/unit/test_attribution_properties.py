"""Invariants of every model through the engine: sums to 1, non-negative, renaming-invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.engine import attribute_journeys
from closedloop.attribution.journeys import build_journey
from closedloop.attribution.registry import MODEL_NAMES
from closedloop.attribution.types import Journey, Touch
from closedloop.config.attribution import AttributionConfig, PositionWeights

START = datetime(2024, 1, 1, tzinfo=UTC)
CONFIG = AttributionConfig(custom_models={"marketo_u": PositionWeights(first=50, lead=50)})
ALL_MODELS = CONFIG.model_names()
CHANNELS = ["direct", "email", "paid", "social", "seo"]


@st.composite
def journeys(draw: st.DrawFn) -> list[Journey]:
    result = []
    for number in range(draw(st.integers(1, 6))):
        count = draw(st.integers(0, 5))
        hours = sorted(draw(st.lists(st.integers(0, 2000), min_size=count, max_size=count)))
        touches = tuple(
            Touch(
                draw(st.sampled_from(CHANNELS)),
                START + timedelta(hours=hour),
                touchpoint_id=index,
                is_direct=draw(st.booleans()),
            )
            for index, hour in enumerate(hours)
        )
        milestone = st.none() | st.integers(0, max(count - 1, 0)) if count else st.none()
        result.append(
            Journey(
                touches,
                converted_at=START + timedelta(hours=2001),
                lead_index=draw(milestone),
                opportunity_index=draw(milestone),
                won_index=draw(milestone),
                conversion_id=f"conv{number}",
                value=float(draw(st.integers(0, 1000))),
            )
        )
    return result


def weights_by_journey(
    trips: list[Journey], nulls: list[list[str]]
) -> dict[tuple[str, str], list[float]]:
    grouped: dict[tuple[str, str], list[float]] = {}
    for row in attribute_journeys(
        trips, models=ALL_MODELS, config=CONFIG, non_converting_paths=nulls
    ):
        grouped.setdefault((row.model, row.conversion_id), []).append(row.weight)
    return grouped


NULL_PATHS = st.lists(st.lists(st.sampled_from(CHANNELS), max_size=4), max_size=4)


@settings(max_examples=60, deadline=None)
@given(trips=journeys(), nulls=NULL_PATHS)
def test_every_model_sums_to_one_non_negative_and_ignores_names(
    trips: list[Journey], nulls: list[list[str]]
) -> None:
    grouped = weights_by_journey(trips, nulls)
    with_touches = [trip for trip in trips if trip.touches]
    assert len(grouped) == len(with_touches) * len(ALL_MODELS)
    for weights in grouped.values():
        assert sum(weights) == pytest.approx(1.0, abs=1e-9)
        assert min(weights) >= 0.0
    rename = {name: f"renamed-{name[::-1]}" for name in CHANNELS}
    renamed = [
        Journey(
            tuple(
                Touch(rename[t.channel], t.at, t.touchpoint_id, t.is_direct) for t in trip.touches
            ),
            trip.converted_at,
            trip.lead_index,
            trip.opportunity_index,
            trip.won_index,
            trip.conversion_id,
            trip.value,
        )
        for trip in trips
    ]
    renamed_nulls = [[rename[channel] for channel in path] for path in nulls]
    again = weights_by_journey(renamed, renamed_nulls)
    assert again.keys() == grouped.keys()
    for key, weights in grouped.items():
        assert again[key] == pytest.approx(weights, abs=1e-9), key


def test_builtin_names_are_exported() -> None:
    assert {"u_shaped", "markov", "markov_4", "shapley", "time_decay"} <= set(MODEL_NAMES)


def test_revenue_is_weight_times_value_and_empty_journeys_get_nothing() -> None:
    trip = Journey(
        (Touch("a", START, 1), Touch("b", START + timedelta(days=1), 2)),
        converted_at=START + timedelta(days=2),
        lead_index=1,
        conversion_id="x",
        value=100.0,
    )
    empty = Journey((), converted_at=START, conversion_id="empty")
    rows = list(attribute_journeys([trip, empty], models=["u_shaped", "markov"], config=CONFIG))
    assert {row.conversion_id for row in rows} == {"x"}
    for row in rows:
        assert row.revenue == pytest.approx(row.weight * 100.0)
    assert [row.weight for row in rows if row.model == "u_shaped"] == pytest.approx([0.5, 0.5])


def test_unknown_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        list(attribute_journeys([], models=["nope"], config=CONFIG))


def test_build_journey_window_sort_and_milestones() -> None:
    touches = [
        Touch("late", START + timedelta(days=10), 3),
        Touch("b", START + timedelta(days=2), 2),
        Touch("old", START - timedelta(days=100), 0),
        Touch("a", START, 1),
    ]
    trip = build_journey(
        touches,
        converted_at=START + timedelta(days=5),
        lookback=timedelta(days=30),
        lead_at=START + timedelta(days=1),
        opportunity_at=START - timedelta(days=1),
        won_at=START + timedelta(days=5),
        conversion_id="c",
        value=5.0,
    )
    assert [touch.channel for touch in trip.touches] == ["a", "b"]
    assert (trip.lead_index, trip.opportunity_index, trip.won_index) == (0, None, 1)
    unlimited = build_journey(touches, converted_at=START + timedelta(days=5), lookback=None)
    assert [touch.channel for touch in unlimited.touches] == ["old", "a", "b"]
    assert unlimited.lead_index is None


def test_build_journey_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_journey([], converted_at=datetime(2024, 1, 1), lookback=None)


CUSTOM_YAML = """
custom_models:
  marketo_u: {first: 50, lead: 50}
  deal_only: {opportunity: 100}
"""


def test_every_model_by_name_on_a_hand_worked_journey() -> None:
    """One journey, every model name through the engine, weights worked by hand.

    Touches: email (day 0), paid (day 7, lead created), direct (day 14, deal created and won);
    value 100.  A registry that wired a name to the wrong weights would break a row here.
    """
    config = AttributionConfig.model_validate(yaml.safe_load(CUSTOM_YAML))
    touches = (
        Touch("email", START, 10),
        Touch("paid", START + timedelta(days=7), 11),
        Touch("direct", START + timedelta(days=14), 12, is_direct=True),
    )
    trip = Journey(
        touches,
        converted_at=START + timedelta(days=14),
        lead_index=1,
        opportunity_index=2,
        won_index=2,
        conversion_id="won1",
        value=100.0,
    )
    third = 1 / 3
    expected = {
        "first_touch": [1, 0, 0],
        "last_touch": [0, 0, 1],
        "last_non_direct": [0, 1, 0],
        "linear": [third, third, third],
        "u_shaped": [0.4, 0.4, 0.2],  # the touch after lead creation is middle
        "w_shaped": [third, third, third],  # 30/30/30 on three touches, no middle: scaled
        "full_path": [0.25, 0.25, 0.5],  # deal and won share the last touch: 45 of 90
        "time_decay": [1 / 7, 2 / 7, 4 / 7],  # 14, 7, 0 days old, 7-day half-life
        "j_shaped": [0.2, 0.2, 0.6],
        "inverse_j": [0.6, 0.2, 0.2],
        "marketo_u": [0.5, 0.5, 0],
        "deal_only": [0, 0, 1],
        # one converting path of three distinct channels: each is indispensable
        "markov": [third, third, third],
        "shapley": [third, third, third],
    }
    assert set(expected) <= set(config.model_names())
    rows = list(attribute_journeys([trip], models=list(expected), config=config))
    got: dict[str, list[float]] = {}
    for row in sorted(rows, key=lambda row: (row.model, row.touchpoint_id)):
        got.setdefault(row.model, []).append(row.weight)
        assert row.revenue == pytest.approx(row.weight * 100.0)
    assert {name: got.get(name, []) for name in expected} == {
        name: pytest.approx([float(w) for w in weights], abs=1e-12)
        for name, weights in expected.items()
    }
