"""Journeys -> credit rows for every requested model; the store stays outside."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from closedloop.attribution.batch import TouchBatch, batch_from_journeys, batch_from_paths
from closedloop.attribution.registry import (
    check_model_name,
    fitted_importance,
    heuristic_touch_weights,
    importance_weights,
    is_data_driven,
)
from closedloop.attribution.types import Journey
from closedloop.config.attribution import AttributionConfig


@dataclass(frozen=True, slots=True)
class CreditRow:
    conversion_id: str
    touchpoint_id: int
    model: str
    weight: float
    revenue: float


def _fitting_batch(
    journeys: Sequence[Journey],
    channel_names: tuple[str, ...],
    non_converting_paths: Sequence[Sequence[str]],
    config: AttributionConfig,
) -> TouchBatch:
    """Converting journeys plus non-converting paths, coded like the journeys' batch.

    A dummy first path pins the channel codes to the journeys' order; it has weight 0, so it
    adds no transitions and no conversions.
    """
    nulls = [path for path in non_converting_paths if path]
    paths: list[Sequence[str]] = [channel_names] if channel_names else []
    paths += [[touch.channel for touch in journey.touches] for journey in journeys]
    paths += nulls
    pinned = 1 if channel_names else 0
    conversions = np.r_[np.zeros(pinned), np.ones(len(journeys)), np.zeros(len(nulls))]
    value = np.r_[np.zeros(pinned), [j.value for j in journeys], np.zeros(len(nulls))]
    null_counts = np.r_[np.zeros(pinned), np.zeros(len(journeys)), np.ones(len(nulls))]
    batch = batch_from_paths(
        paths,
        conversions=conversions,
        value=value,
        nulls=null_counts,
        direct_channels=config.direct_channels,
    )
    if batch.channel_names[: len(channel_names)] != channel_names:
        raise AssertionError("channel codes out of order")
    return batch


def attribute_journeys(
    journeys: Sequence[Journey],
    *,
    models: Sequence[str],
    config: AttributionConfig,
    non_converting_paths: Sequence[Sequence[str]] = (),
) -> Iterator[CreditRow]:
    """Credit rows per journey, touch and model; each journey's weights per model sum to 1.

    Journeys without touches get no rows.  Data-driven models are fitted once on all journeys'
    channel paths (each a conversion worth ``journey.value``) plus ``non_converting_paths`` as
    nulls, then split per journey by ``registry.importance_weights``.  Revenue is weight times
    the journey's value.
    """
    for name in models:
        check_model_name(name, config)
    with_touches = [journey for journey in journeys if journey.touches]
    if not with_touches:
        return
    batch = batch_from_journeys(with_touches)
    fitting: TouchBatch | None = None
    for name in models:
        if is_data_driven(name):
            if fitting is None:
                fitting = _fitting_batch(
                    with_touches, batch.channel_names, non_converting_paths, config
                )
            # The fitting batch lists the journeys' channels first, then channels seen only
            # in non-converting paths, so the leading importances line up with batch codes.
            importance = fitted_importance(name, fitting, config)
            weights = importance_weights(batch, importance[: len(batch.channel_names)])
        else:
            weights = heuristic_touch_weights(name, batch, config)
        yield from _rows(with_touches, batch, name, weights)


def _rows(
    journeys: Sequence[Journey], batch: TouchBatch, model: str, weights: np.ndarray
) -> Iterator[CreditRow]:
    flat_index = 0
    weight_list = weights.tolist()
    for journey in journeys:
        for touch in journey.touches:
            weight = weight_list[flat_index]
            flat_index += 1
            yield CreditRow(
                conversion_id=journey.conversion_id,
                touchpoint_id=touch.touchpoint_id,
                model=model,
                weight=weight,
                revenue=weight * journey.value,
            )
