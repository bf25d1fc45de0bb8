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
        # full path, fewer than four milestone touches: milestones sharing a touch add up and
        # with no middle touch the 90 left scale to 100.
        (CONFIG.full_path, journey(3, lead=1, opportunity=2, won=2), [0.25, 0.25, 0.5]),
        (CONFIG.full_path, journey(2, lead=0, opportunity=1, won=1), [0.5, 0.5]),
        (CONFIG.full_path, journey(1, lead=0, opportunity=0, won=0), [1]),
        (
            CONFIG.full_path,
            journey(5, lead=1, opportunity=1, won=3),
            [0.225, 0.45, 0.05, 0.225, 0.05],
        ),
        # W-shaped with one, two, three touches.
        (CONFIG.w_shaped, journey(1, lead=0, opportunity=0), [1]),
        (CONFIG.w_shaped, journey(2, lead=0, opportunity=1), [2 / 3, 1 / 3]),
        (CONFIG.w_shaped, journey(2, lead=1, opportunity=1), [1 / 3, 2 / 3]),
        (CONFIG.w_shaped, journey(3, lead=2, opportunity=2), [0.3, 0.1, 0.6]),
        # U-shaped, two touches and no lead: first 40 + the other touch's middle 20, scaled.
        (CONFIG.u_shaped, journey(2), [2 / 3, 1 / 3]),
        # U-shaped: the 20 goes to touches before AND after lead creation (project rule).
        (CONFIG.u_shaped, journey(3, lead=1), [0.4, 0.4, 0.2]),
        # first/last models on one and two touches.
        (FIRST_TOUCH, journey(1), [1]),
        (LAST_TOUCH, journey(2), [0, 1]),
        (LINEAR, journey(2), [0.5, 0.5]),
        (CONFIG.j_shaped, journey(1), [1]),
        (CONFIG.j_shaped, journey(3), [0.2, 0.2, 0.6]),
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


def test_time_decay_hand_worked_seven_day_half_life() -> None:
    # Touches 14 days, 3.5 days and 0 days before the last one: raw weights 2^-2 = 0.25,
    # 2^-0.5 = 0.7071067811865476 and 1; they sum to 1.9571067811865475.
    touches = tuple(
        Touch(f"c{i}", START + timedelta(days=day), i) for i, day in enumerate((0.0, 10.5, 14.0))
    )
    trip = Journey(touches, converted_at=START + timedelta(days=16))
    assert journey_time_decay_credit(trip) == pytest.approx(
        [0.12773958089728293, 0.3613020955135854, 0.5109583235891317], abs=1e-12
    )
    # A single touch takes everything; two touches a day apart: 1 / (1 + 2^(1/7)) and the rest.
    assert journey_time_decay_credit(journey(1)) == [1.0]
    assert journey_time_decay_credit(journey(2)) == pytest.approx(
        [0.47526495118259765, 0.5247350488174024], abs=1e-12
    )


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
