"""Rule-based (heuristic) models: position weights, last non-direct touch, time decay.

Each model maps a batch to one weight per touch; the weights of every path sum to 1 and are
never negative.  Every position model (first/last touch, linear, U, W, full path, J, inverse J
and the custom ones) is one rule over ``PositionWeights``:

* a touch plays the roles first (index 0), last (index n-1), lead / opportunity / won (the
  milestone indexes); it earns the percent of every role it plays, so two milestones on the same
  touch add up (U-shaped with first and lead on one touch: 80% there);
* a role whose milestone is missing (``None``) drops out;
* ``middle`` is split evenly over the touches that play none of the roles the model weights
  (for U-shaped that includes touches after lead creation);
* with no such touch, the middle share is not lost: the remaining weights are scaled up to 1
  (U-shaped with two touches: 50/50; W-shaped with first, lead, deal on three touches: 1/3 each);
* if nothing at all earns weight (a custom ``{lead: 100}`` on a journey without a lead), the
  touches share equally, so a conversion's credit is never lost.
"""

from __future__ import annotations

import numpy as np

from closedloop.attribution.batch import NO_TOUCH, FloatArray, TouchBatch, batch_from_journeys
from closedloop.attribution.types import Journey
from closedloop.config.attribution import PositionWeights

FIRST_TOUCH = PositionWeights(first=100)
LAST_TOUCH = PositionWeights(last=100)
LINEAR = PositionWeights(middle=100)


def position_weights(batch: TouchBatch, weights: PositionWeights) -> FloatArray:
    """Per-touch weights of a position model over a batch (see the module docstring)."""
    if batch.codes.size == 0:
        return np.zeros(0, dtype=np.float64)
    length = batch.path_length_of_touch()
    position = batch.position
    path_of = batch.path_of
    roles = (
        (weights.first, position == 0),
        (weights.last, position == length - 1),
        (weights.lead, _at_milestone(batch, batch.lead)),
        (weights.opportunity, _at_milestone(batch, batch.opportunity)),
        (weights.won, _at_milestone(batch, batch.won)),
    )
    role_weight = np.zeros(position.shape[0], dtype=np.float64)
    plays_role = np.zeros(position.shape[0], dtype=bool)
    for percent, hit in roles:
        if percent > 0:
            role_weight += hit * (percent / 100.0)
            plays_role |= hit
    middle = ~plays_role
    paths = batch.path_count
    middle_count = np.bincount(path_of, weights=middle, minlength=paths)
    middle_share = np.where(middle_count > 0, weights.middle / 100.0, 0.0)
    denominator = np.bincount(path_of, weights=role_weight, minlength=paths) + middle_share
    per_middle_touch = np.divide(
        middle_share, middle_count, out=np.zeros(paths), where=middle_count > 0
    )
    numerator = role_weight + middle * per_middle_touch[path_of]
    touch_denominator = denominator[path_of]
    equal_split = 1.0 / length
    return np.divide(
        numerator,
        touch_denominator,
        out=equal_split.astype(np.float64),
        where=touch_denominator > 0,
    )


def _at_milestone(batch: TouchBatch, milestone: np.ndarray) -> np.ndarray:
    index = milestone[batch.path_of]
    return (index != NO_TOUCH) & (batch.position == index)


def last_non_direct_weights(batch: TouchBatch) -> FloatArray:
    """All credit to the last touch that is not direct; all-direct paths credit their last touch.

    This is Google's classic last non-direct click: a direct visit only gets credit when the
    journey has nothing else.
    """
    if batch.codes.size == 0:
        return np.zeros(0, dtype=np.float64)
    candidate = np.where(batch.is_direct, -1, batch.position)
    chosen = np.maximum.reduceat(candidate, batch.starts)
    chosen = np.where(chosen < 0, batch.lengths - 1, chosen)
    return (batch.position == chosen[batch.path_of]).astype(np.float64)


def time_decay_weights(batch: TouchBatch, half_life_days: float) -> FloatArray:
    """Weights halve every ``half_life_days`` before the conversion (HubSpot default: 7 days).

    Touches at the same time share equally; a one-touch journey gets 1.  Ages are measured
    from each path's newest touch, so very old journeys do not underflow to zero.
    """
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    if batch.codes.size == 0:
        return np.zeros(0, dtype=np.float64)
    youngest = np.minimum.reduceat(batch.age_days, batch.starts)
    relative_age = batch.age_days - youngest[batch.path_of]
    raw = np.exp2(-relative_age / half_life_days)
    totals = np.bincount(batch.path_of, weights=raw, minlength=batch.path_count)
    return raw / totals[batch.path_of]


def journey_position_credit(journey: Journey, weights: PositionWeights) -> list[float]:
    """One journey's weights under a position model; ``[]`` for a journey without touches."""
    if not journey.touches:
        return []
    return position_weights(batch_from_journeys([journey]), weights).tolist()


def journey_last_non_direct_credit(journey: Journey) -> list[float]:
    if not journey.touches:
        return []
    return last_non_direct_weights(batch_from_journeys([journey])).tolist()


def journey_time_decay_credit(journey: Journey, half_life_days: float = 7.0) -> list[float]:
    if not journey.touches:
        return []
    return time_decay_weights(batch_from_journeys([journey]), half_life_days).tolist()
