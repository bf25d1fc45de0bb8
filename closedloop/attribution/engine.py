"""Journeys -> credit rows for every requested model; the store stays outside."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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


ChannelImportance = Mapping[str, float]


def fit_data_driven(
    journeys: Sequence[Journey],
    *,
    models: Sequence[str],
    config: AttributionConfig,
    non_converting_paths: Sequence[Sequence[str]] = (),
) -> dict[str, ChannelImportance]:
    """Fit every data-driven model once on all journeys: model -> channel -> importance.

    Fitting needs the whole population of paths, crediting does not, so a caller with many
    conversions fits once here and then credits them chunk by chunk with ``fitted=``.
    """
    with_touches = [journey for journey in journeys if journey.touches]
    wanted = [name for name in models if is_data_driven(name)]
    if not with_touches or not wanted:
        return {}
    names = batch_from_journeys(with_touches).channel_names
    fitting = _fitting_batch(with_touches, names, non_converting_paths, config)
    out: dict[str, ChannelImportance] = {}
    for name in wanted:
        importance = fitted_importance(name, fitting, config)
        out[name] = dict(zip(fitting.channel_names, importance.tolist(), strict=True))
    return out


def attribute_journeys(
    journeys: Sequence[Journey],
    *,
    models: Sequence[str],
    config: AttributionConfig,
    non_converting_paths: Sequence[Sequence[str]] = (),
    fitted: Mapping[str, ChannelImportance] | None = None,
) -> Iterator[CreditRow]:
    """Credit rows per journey, touch and model; each journey's weights per model sum to 1.

    Journeys without touches get no rows.  Data-driven models are fitted once on all journeys'
    channel paths (each a conversion worth ``journey.value``) plus ``non_converting_paths`` as
    nulls, then split per journey by ``registry.importance_weights``; pass ``fitted`` (from
    ``fit_data_driven``) to credit a chunk of journeys with importances fitted on all of them.
    Revenue is weight times the journey's value.
    """
    for name in models:
        check_model_name(name, config)
    with_touches = [journey for journey in journeys if journey.touches]
    if not with_touches:
        return
    if fitted is None:
        fitted = fit_data_driven(
            with_touches, models=models, config=config, non_converting_paths=non_converting_paths
        )
    batch = batch_from_journeys(with_touches)
    for name in models:
        if is_data_driven(name):
            by_channel = fitted[name]
            importance = np.array([by_channel.get(c, 0.0) for c in batch.channel_names], dtype=np.float64)
            weights = importance_weights(batch, importance)
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
