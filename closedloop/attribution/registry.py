"""Model names -> implementations, for per-journey weights and per-channel totals alike.

Data-driven models (``markov``, ``markov_1``..``markov_4``, ``shapley``) learn one importance
per channel from all paths.  Splitting one journey's credit by importance follows this rule:
each *distinct* channel of the journey gets a share proportional to its importance (removal
effect or Shapley value), and that share is split evenly over the touches of that channel, so
touching a channel twice does not double it.  If every channel of the journey has importance 0,
the journey falls back to linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from closedloop.attribution.batch import FloatArray, TouchBatch, channel_totals
from closedloop.attribution.markov import markov_attribution
from closedloop.attribution.positions import (
    FIRST_TOUCH,
    LAST_TOUCH,
    LINEAR,
    last_non_direct_weights,
    position_weights,
    time_decay_weights,
)
from closedloop.attribution.shapley import shapley_attribution
from closedloop.config.attribution import AttributionConfig, PositionWeights
from closedloop.config.names import (
    BUILTIN_MODEL_NAMES,
    DATA_DRIVEN_MODEL_NAMES,
    HEURISTIC_MODEL_NAMES,
    MARKOV_MODEL_NAMES,
)

MODEL_NAMES: tuple[str, ...] = BUILTIN_MODEL_NAMES

__all__ = [
    "DATA_DRIVEN_MODEL_NAMES",
    "HEURISTIC_MODEL_NAMES",
    "MODEL_NAMES",
    "ChannelCredits",
    "channel_credits",
    "fitted_importance",
    "importance_weights",
    "is_data_driven",
    "model_touch_weights",
]


@dataclass(frozen=True, slots=True, eq=False)
class ChannelCredits:
    """Credited conversions and value per channel under one model."""

    model: str
    channel_names: tuple[str, ...]
    conversions: FloatArray
    value: FloatArray


def check_model_name(name: str, config: AttributionConfig) -> None:
    if name not in config.model_names():
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(config.model_names())}")


def is_data_driven(name: str) -> bool:
    return name in DATA_DRIVEN_MODEL_NAMES


def markov_order(name: str, config: AttributionConfig) -> int:
    return config.markov_order if name == "markov" else int(name.rsplit("_", 1)[1])


def _position_weights_of(name: str, config: AttributionConfig) -> PositionWeights | None:
    fixed = {"first_touch": FIRST_TOUCH, "last_touch": LAST_TOUCH, "linear": LINEAR}
    if name in fixed:
        return fixed[name]
    if name in ("u_shaped", "w_shaped", "full_path", "j_shaped", "inverse_j"):
        weights: PositionWeights = getattr(config, name)
        return weights
    return config.custom_models.get(name)


def heuristic_touch_weights(name: str, batch: TouchBatch, config: AttributionConfig) -> FloatArray:
    check_model_name(name, config)
    if name == "last_non_direct":
        return last_non_direct_weights(batch)
    if name == "time_decay":
        return time_decay_weights(batch, config.time_decay_half_life_days)
    weights = _position_weights_of(name, config)
    if weights is None:
        raise ValueError(f"{name!r} is not a heuristic model")
    return position_weights(batch, weights)


def fitted_importance(name: str, batch: TouchBatch, config: AttributionConfig) -> FloatArray:
    """Per-channel importance of a data-driven model fitted on ``batch``."""
    if name in MARKOV_MODEL_NAMES:
        return markov_attribution(batch, markov_order(name, config)).removal_effects
    if name == "shapley":
        return shapley_attribution(
            batch,
            exact_max_channels=config.shapley.exact_max_channels,
            samples=config.shapley.samples,
            seed=config.shapley.seed,
            characteristic=config.shapley.characteristic,
        ).values
    raise ValueError(f"{name!r} is not a data-driven model")


def importance_weights(batch: TouchBatch, importance: FloatArray) -> FloatArray:
    """Per-touch weights from channel importance (rule in the module docstring)."""
    if batch.codes.size == 0:
        return np.zeros(0, dtype=np.float64)
    channels = len(batch.channel_names)
    pair = batch.path_of * channels + batch.codes
    unique_pair, pair_index, touches_of_pair = np.unique(
        pair, return_inverse=True, return_counts=True
    )
    pair_path = unique_pair // channels
    pair_importance = np.clip(importance[unique_pair % channels], 0.0, None)
    path_total = np.bincount(pair_path, weights=pair_importance, minlength=batch.path_count)
    pair_share = np.divide(
        pair_importance,
        path_total[pair_path],
        out=np.zeros_like(pair_importance),
        where=path_total[pair_path] > 0,
    )
    weights = pair_share[pair_index] / touches_of_pair[pair_index]
    linear = 1.0 / batch.path_length_of_touch()
    return np.where(path_total[batch.path_of] > 0, weights, linear)


def model_touch_weights(
    name: str,
    batch: TouchBatch,
    config: AttributionConfig,
    fitted_on: TouchBatch | None = None,
) -> FloatArray:
    """Per-touch weights of any model; data-driven ones are fitted on ``fitted_on`` (or batch).

    ``fitted_on`` must encode channels the same way as ``batch`` (same ``channel_names``).
    """
    check_model_name(name, config)
    if not is_data_driven(name):
        return heuristic_touch_weights(name, batch, config)
    source = batch if fitted_on is None else fitted_on
    if source.channel_names != batch.channel_names:
        raise ValueError("fitted_on must use the same channel codes as batch")
    return importance_weights(batch, fitted_importance(name, source, config))


def channel_credits(name: str, batch: TouchBatch, config: AttributionConfig) -> ChannelCredits:
    """Per-channel credits over path-level data, as channelattribution reports them.

    Heuristics credit each path's conversions by touch weights; Markov and Shapley credit the
    total by their importance shares (``total * RE_c / sum RE``), exactly as channelattribution.
    """
    check_model_name(name, config)
    if name in MARKOV_MODEL_NAMES:
        markov = markov_attribution(batch, markov_order(name, config))
        return ChannelCredits(name, batch.channel_names, markov.conversions, markov.value)
    if name == "shapley":
        shapley = shapley_attribution(
            batch,
            exact_max_channels=config.shapley.exact_max_channels,
            samples=config.shapley.samples,
            seed=config.shapley.seed,
            characteristic=config.shapley.characteristic,
        )
        return ChannelCredits(name, batch.channel_names, shapley.conversions, shapley.value)
    conversions, value = channel_totals(batch, heuristic_touch_weights(name, batch, config))
    return ChannelCredits(name, batch.channel_names, conversions, value)
