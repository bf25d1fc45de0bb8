"""Exact splits of every heuristic on hand-made journeys, including the documented edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from closedloop.attribution.positions import (
    FIRST_TOUCH,
    LAST_TOUCH,
    LINEAR,
    journey_last_non_direct_credit,
    journey_position_credit,
    journey_time_decay_credit,
)
from closedloop.attribution.types import Journey, Touch
from closedloop.config.attribution import AttributionConfig, PositionWeights

START = datetime(2024, 3, 1, tzinfo=UTC)
CONFIG = AttributionConfig()


def journey(
    count: int,
    *,
    lead: int | None = None,
    opportunity: int | None = None,
    won: int | None = None,
    direct: tuple[int, ...] = (),
    days_apart: float = 1.0,
) -> Journey:
    touches = tuple(
        Touch(f"c{i}", START + timedelta(days=i * days_apart), i, i in direct) for i in range(count)
    )
    return Journey(
        touches,
        converted_at=START + timedelta(days=(count - 1) * days_apart),
        lead_index=lead,
        opportunity_index=opportunity,
        won_index=won,
    )


def split(model: PositionWeights, trip: Journey) -> list[float]:
    return journey_position_credit(trip, model)


@pytest.mark.parametrize(
    ("weights", "trip", "expected"),
    [
        (FIRST_TOUCH, journey(3), [1, 0, 0]),
        (LAST_TOUCH, journey(3), [0, 0, 1]),
        (LINEAR, journey(4), [0.25] * 4),
        (LINEAR, journey(1), [1]),
        # U-shaped 40/20/40: lead in the middle, touches around share the 20.
        (CONFIG.u_shaped, journey(4, lead=2), [0.4, 0.1, 0.4, 0.1]),
        (CONFIG.u_shaped, journey(1, lead=0), [1]),
        (CONFIG.u_shaped, journey(2, lead=1), [0.5, 0.5]),
        # first and lead on one touch: 80% there, the rest is middle.
        (CONFIG.u_shaped, journey(2, lead=0), [0.8, 0.2]),
        # no lead: its 40 drops out, first 40 and middle 20 scale to 2/3 and 1/3.
        (CONFIG.u_shaped, journey(3), [2 / 3, 1 / 6, 1 / 6]),
        # W-shaped 30/30/30 + 10 middle.
        (CONFIG.w_shaped, journey(5, lead=1, opportunity=3), [0.3, 0.3, 0.05, 0.3, 0.05]),
        (CONFIG.w_shaped, journey(3, lead=1, opportunity=2), [1 / 3, 1 / 3, 1 / 3]),
        # lead and deal on one touch add up; the touch after them is middle.
        (CONFIG.w_shaped, journey(3, lead=1, opportunity=1), [0.3, 0.6, 0.1]),
        # full path 22.5 x 4 + 10 middle.
        (
            CONFIG.full_path,
            journey(6, lead=1, opportunity=2, won=4),
            [0.225, 0.225, 0.225, 0.05, 0.225, 0.05],
        ),
        (CONFIG.full_path, journey(4, lead=1, opportunity=2, won=3), [0.25] * 4),
        # J 20/60/20, inverse J 60/20/20.
        (CONFIG.j_shaped, journey(4), [0.2, 0.1, 0.1, 0.6]),
        (CONFIG.j_shaped, journey(2), [0.25, 0.75]),
        (CONFIG.inverse_j, journey(3), [0.6, 0.2, 0.2]),
        (CONFIG.inverse_j, journey(2), [0.75, 0.25]),
        (CONFIG.inverse_j, journey(1), [1]),
        # a custom model whose only role is missing falls back to linear.
        (PositionWeights(lead=100), journey(2), [0.5, 0.5]),
        (PositionWeights(first=50, lead=50), journey(3, lead=2), [0.5, 0, 0.5]),
    ],
)
def test_position_model_splits(
    weights: PositionWeights, trip: Journey, expected: list[float]
) -> None:
    assert split(weights, trip) == pytest.approx(expected, abs=1e-12)


def test_no_touches_no_weights() -> None:
    assert split(CONFIG.u_shaped, journey(0)) == []


@pytest.mark.parametrize(
    ("trip", "expected"),
    [
        (journey(3, direct=(2,)), [0, 1, 0]),
        (journey(3, direct=(1,)), [0, 0, 1]),
        (journey(3, direct=(0, 1, 2)), [0, 0, 1]),
        (journey(1, direct=(0,)), [1]),
    ],
)
def test_last_non_direct(trip: Journey, expected: list[float]) -> None:
    assert journey_last_non_direct_credit(trip) == pytest.approx(expected)


def test_time_decay_halves_per_half_life() -> None:
    trip = journey(3, days_apart=7)
    assert journey_time_decay_credit(trip, 7) == pytest.approx([1 / 7, 2 / 7, 4 / 7])


def test_time_decay_same_time_touches_share_and_old_journeys_do_not_underflow() -> None:
    trip = journey(2, days_apart=0)
    assert journey_time_decay_credit(trip, 7) == pytest.approx([0.5, 0.5])
    ancient = journey(2, days_apart=20_000)
    assert journey_time_decay_credit(ancient, 0.5) == pytest.approx([0, 1])


def test_weights_must_sum_to_100() -> None:
    with pytest.raises(ValidationError, match="sum to 100"):
        PositionWeights(first=50, lead=40)


def test_unknown_model_names_list_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as error:
        AttributionConfig(models=["first_touch", "magic"])
    assert "magic" in str(error.value) and "w_shaped" in str(error.value)


def test_custom_model_is_valid_and_cannot_shadow_builtins() -> None:
    config = AttributionConfig(
        custom_models={"marketo_u": PositionWeights(first=50, lead=50)}, models=["marketo_u"]
    )
    assert "marketo_u" in config.model_names()
    with pytest.raises(ValidationError, match="built-in"):
        AttributionConfig(custom_models={"linear": PositionWeights(middle=100)})


def test_lookback_per_kind() -> None:
    config = AttributionConfig()
    assert config.lookback("contact_created") == timedelta(days=90)
    assert config.lookback("deal_won") == timedelta(days=365)
