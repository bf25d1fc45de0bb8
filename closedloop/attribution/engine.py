"""Journeys -> credit rows for every requested model; the store stays outside."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from closedloop.attribution.batch import TouchBatch, batch_from_codes, batch_from_journeys
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
    journeys: Iterable[Journey],
    non_converting_paths: Sequence[Sequence[str]],
    config: AttributionConfig,
) -> TouchBatch | None:
    """Converting journeys plus non-converting paths as one batch; None without a journey.

    ``journeys`` is read once, so a generator keeps one journey alive at a time: at 100,000
    contacts the journeys and their touches, held whole for the fit, were a rebuild's largest
    allocation.  Codes go straight into flat arrays.  A dummy first path (weight 0: no
    transitions, no conversions) pins the codes to the journeys' order of first appearance.
    """
    code_of: dict[str, int] = {}
    codes, lengths, values = array("q"), array("q"), array("d")
    for journey in journeys:
        if journey.touches:
            lengths.append(len(journey.touches))
            values.append(journey.value)
            codes.extend(code_of.setdefault(touch.channel, len(code_of)) for touch in journey.touches)
    converting = len(lengths)
    if not converting:
        return None
    pinned = len(code_of)
    for path in non_converting_paths:
        if path:
            lengths.append(len(path))
            codes.extend(code_of.setdefault(channel, len(code_of)) for channel in path)
    nulls = len(lengths) - converting
    return batch_from_codes(
        tuple(code_of),
        np.concatenate((np.arange(pinned, dtype=np.int64), np.frombuffer(codes, dtype=np.int64))),
        np.concatenate(([pinned], np.frombuffer(lengths, dtype=np.int64))),
        conversions=np.r_[0.0, np.ones(converting), np.zeros(nulls)],
        value=np.r_[0.0, np.frombuffer(values, dtype=np.float64), np.zeros(nulls)],
        nulls=np.r_[0.0, np.zeros(converting), np.ones(nulls)],
        direct_channels=config.direct_channels,
    )


ChannelImportance = Mapping[str, float]


def fit_data_driven(
    journeys: Iterable[Journey],
    *,
    models: Sequence[str],
    config: AttributionConfig,
    non_converting_paths: Sequence[Sequence[str]] = (),
) -> dict[str, ChannelImportance]:
    """Fit every data-driven model once on all journeys: model -> channel -> importance.

    Fitting needs the whole population of paths, crediting does not, so a caller with many
    conversions fits once here (``journeys`` may be a generator: it is read once) and then
    credits them chunk by chunk with ``fitted=``.
    """
    wanted = [name for name in models if is_data_driven(name)]
    if not wanted:
        return {}
    fitting = _fitting_batch(journeys, non_converting_paths, config)
    if fitting is None:
        return {}
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
