"""Many journeys or paths as flat numpy arrays, so every model runs vectorised.

One representation serves both inputs: journeys from the store (with times and milestones)
and paths from a path file (channel names only).  A path file has no milestones: its path *is*
the conversion, so the last touch stands for lead creation, opportunity and closed won, as in
channelattribution's heuristic models; touches are ``path_step_days`` apart, ending at the
conversion, for time decay.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from closedloop.attribution.types import Journey

NO_TOUCH = -1

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class TouchBatch:
    """Per-touch arrays (flat, path after path) and per-path arrays.

    Every path has at least one touch.  Milestone arrays hold an index into the path or
    ``NO_TOUCH``.
    """

    channel_names: tuple[str, ...]
    codes: IntArray
    path_of: IntArray
    position: IntArray
    age_days: FloatArray
    is_direct: BoolArray
    lengths: IntArray
    lead: IntArray
    opportunity: IntArray
    won: IntArray
    conversions: FloatArray
    value: FloatArray
    nulls: FloatArray

    @property
    def path_count(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def starts(self) -> IntArray:
        return np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)

    def path_length_of_touch(self) -> IntArray:
        return self.lengths[self.path_of]


def _touch_layout(lengths: IntArray) -> tuple[IntArray, IntArray]:
    total = int(lengths.sum())
    path_of = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    position = np.arange(total, dtype=np.int64) - starts[path_of]
    return path_of, position


def batch_from_paths(
    paths: Sequence[Sequence[str]],
    *,
    conversions: Sequence[float] | FloatArray,
    value: Sequence[float] | FloatArray,
    nulls: Sequence[float] | FloatArray,
    direct_channels: Collection[str] = ("direct",),
    step_days: float = 1.0,
) -> TouchBatch:
    """Build a batch from channel paths; every path must have at least one channel."""
    code_of: dict[str, int] = {}
    flat: list[int] = []
    lengths_list: list[int] = []
    for path in paths:
        if not path:
            raise ValueError("a path needs at least one channel")
        for channel in path:
            code = code_of.get(channel)
            if code is None:
                code = code_of[channel] = len(code_of)
            flat.append(code)
        lengths_list.append(len(path))
    names = tuple(code_of)
    return _assemble(
        names,
        np.asarray(flat, dtype=np.int64),
        np.asarray(lengths_list, dtype=np.int64),
        conversions=np.asarray(conversions, dtype=np.float64),
        value=np.asarray(value, dtype=np.float64),
        nulls=np.asarray(nulls, dtype=np.float64),
        direct_channels=direct_channels,
        step_days=step_days,
    )


def batch_from_codes(
    channel_names: Sequence[str],
    codes: IntArray,
    lengths: IntArray,
    *,
    conversions: FloatArray,
    value: FloatArray,
    nulls: FloatArray,
    direct_channels: Collection[str] = ("direct",),
    step_days: float = 1.0,
) -> TouchBatch:
    """Build a batch from already-encoded paths (the fast path of the path-file reader)."""
    if lengths.size and int(lengths.min()) < 1:
        raise ValueError("a path needs at least one channel")
    return _assemble(
        tuple(channel_names),
        codes.astype(np.int64, copy=False),
        lengths.astype(np.int64, copy=False),
        conversions=conversions,
        value=value,
        nulls=nulls,
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _assemble(
    names: tuple[str, ...],
    codes: IntArray,
    lengths: IntArray,
    *,
    conversions: FloatArray,
    value: FloatArray,
    nulls: FloatArray,
    direct_channels: Collection[str],
    step_days: float,
) -> TouchBatch:
    path_of, position = _touch_layout(lengths)
    direct = {name.casefold() for name in direct_channels}
    direct_code = np.array([name.casefold() in direct for name in names], dtype=bool)
    last = lengths - 1
    return TouchBatch(
        channel_names=names,
        codes=codes,
        path_of=path_of,
        position=position,
        age_days=(last[path_of] - position).astype(np.float64) * step_days,
        is_direct=direct_code[codes] if codes.size else np.zeros(0, dtype=bool),
        lengths=lengths,
        lead=last.copy(),
        opportunity=last.copy(),
        won=last.copy(),
        conversions=conversions,
        value=value,
        nulls=nulls,
    )


def batch_from_journeys(journeys: Sequence[Journey]) -> TouchBatch:
    """Build a batch from journeys; each converts once (conversions 1, no nulls).

    Journeys without touches must be filtered out first: they cannot carry credit.
    """
    code_of: dict[str, int] = {}
    flat: list[int] = []
    ages: list[float] = []
    direct: list[bool] = []
    lengths: list[int] = []
    milestones: list[tuple[int, int, int]] = []
    for journey in journeys:
        if not journey.touches:
            raise ValueError(f"journey {journey.conversion_id!r} has no touches")
        for touch in journey.touches:
            code = code_of.get(touch.channel)
            if code is None:
                code = code_of[touch.channel] = len(code_of)
            flat.append(code)
            ages.append((journey.converted_at - touch.at).total_seconds() / 86_400.0)
            direct.append(touch.is_direct)
        lengths.append(len(journey.touches))
        milestones.append(
            tuple(  # type: ignore[arg-type]
                NO_TOUCH if index is None else index
                for index in (journey.lead_index, journey.opportunity_index, journey.won_index)
            )
        )
    lengths_array = np.asarray(lengths, dtype=np.int64)
    path_of, position = _touch_layout(lengths_array)
    milestone_array = np.asarray(milestones, dtype=np.int64).reshape(-1, 3)
    for column, name in enumerate(("lead_index", "opportunity_index", "won_index")):
        bad = (milestone_array[:, column] >= lengths_array) | (milestone_array[:, column] < -1)
        if bad.any():
            journey = journeys[int(np.argmax(bad))]
            raise ValueError(f"journey {journey.conversion_id!r}: {name} is outside its touches")
    return TouchBatch(
        channel_names=tuple(code_of),
        codes=np.asarray(flat, dtype=np.int64),
        path_of=path_of,
        position=position,
        age_days=np.maximum(np.asarray(ages, dtype=np.float64), 0.0),
        is_direct=np.asarray(direct, dtype=bool),
        lengths=lengths_array,
        lead=milestone_array[:, 0].copy(),
        opportunity=milestone_array[:, 1].copy(),
        won=milestone_array[:, 2].copy(),
        conversions=np.ones(len(journeys), dtype=np.float64),
        value=np.asarray([journey.value for journey in journeys], dtype=np.float64),
        nulls=np.zeros(len(journeys), dtype=np.float64),
    )


def channel_totals(batch: TouchBatch, touch_weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Credited conversions and value per channel code from per-touch weights."""
    size = len(batch.channel_names)
    conversions = np.bincount(
        batch.codes, weights=touch_weights * batch.conversions[batch.path_of], minlength=size
    )
    value = np.bincount(
        batch.codes, weights=touch_weights * batch.value[batch.path_of], minlength=size
    )
    return conversions.astype(np.float64), value.astype(np.float64)


def share_in_proportion(total: float, effects: FloatArray) -> FloatArray:
    """Split ``total`` over channels in proportion to their effects; all zero when none has any."""
    effect_sum = float(effects.sum())
    if effect_sum <= 0:
        return np.zeros_like(effects)
    return total * effects / effect_sum
