"""An independent Markov removal-effect model, written from ChannelAttribution's definition.

Nothing here comes from closedloop: the states are built the way ChannelAttribution's
``markov_model_cpp`` builds them (DavideAltomare/ChannelAttribution, ``functions.cpp``, "turn to
order"), the chain is solved with ``numpy.linalg.solve``.

- A state of order ``k`` is a window of exactly ``k`` consecutive channels, sliding one channel at
  a time; a path shorter than ``k`` is one state (the whole path).
- A state equal to the one before it in the same path is merged into it (no self-step).
- Every step ``start -> s1 -> ... -> sn`` of a path carries ``conversions + nulls``; the last
  state steps to ``conversion`` with ``conversions`` and to ``null`` with ``nulls``.
- Removing a channel turns every state that contains it into ``null``;
  ``RE_c = 1 - P(conversion without c) / P(conversion)``; credits are the total shared in
  proportion to the removal effects.  Value: the last state pays the mean value of the
  conversions that ended there, so ``P`` becomes the expected value of a path.

(ChannelAttribution estimates the same quantities by simulation: the share of converting
simulated paths that visit a channel is exactly this removal effect.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

State = tuple[str, ...]


@dataclass(frozen=True)
class ReferenceResult:
    removal_effects: dict[str, float]
    value_removal_effects: dict[str, float]
    conversions: dict[str, float]
    value: dict[str, float]
    states: frozenset[State]


def windows(path: Sequence[str], order: int) -> list[State]:
    """The path's states: windows of exactly ``order`` channels, repeats merged."""
    if len(path) <= order:
        raw = [tuple(path)]
    else:
        raw = [tuple(path[start : start + order]) for start in range(len(path) - order + 1)]
    merged: list[State] = []
    for state in raw:
        if not merged or merged[-1] != state:
            merged.append(state)
    return merged


def _share(total: float, effects: dict[str, float]) -> dict[str, float]:
    weight = sum(effects.values())
    if weight <= 0:
        return {channel: 0.0 for channel in effects}
    return {channel: total * effect / weight for channel, effect in effects.items()}


def reference_markov(
    paths: Sequence[Sequence[str]],
    conversions: Sequence[float],
    values: Sequence[float],
    nulls: Sequence[float],
    order: int,
) -> ReferenceResult:
    """Removal effects and credits per channel, from the definition above."""
    start: State = ("(start)",)
    index: dict[State, int] = {start: 0}
    steps: dict[tuple[int, int], float] = {}
    converted: dict[int, float] = {}
    ended_null: dict[int, float] = {}
    paid: dict[int, float] = {}
    for path, conversion, value, null in zip(paths, conversions, values, nulls, strict=True):
        walk = [0] + [index.setdefault(state, len(index)) for state in windows(path, order)]
        for before, after in itertools.pairwise(walk):
            steps[before, after] = steps.get((before, after), 0.0) + conversion + null
        last = walk[-1]
        converted[last] = converted.get(last, 0.0) + conversion
        ended_null[last] = ended_null.get(last, 0.0) + null
        paid[last] = paid.get(last, 0.0) + value
    size = len(index)
    count = np.zeros((size, size))
    for (before, after), weight in steps.items():
        count[before, after] += weight
    to_conversion = np.array([converted.get(state, 0.0) for state in range(size)])
    to_value = np.array([paid.get(state, 0.0) for state in range(size)])
    leaving = count.sum(axis=1) + to_conversion + np.array([ended_null.get(s, 0.0) for s in range(size)])
    leaving[leaving == 0] = 1.0
    q = count / leaving[:, None]
    rewards = np.column_stack([to_conversion / leaving, to_value / leaving])

    def solve(removed: str | None) -> tuple[float, float]:
        kept = [number for state, number in index.items() if removed is None or removed not in state]
        answer = np.linalg.solve(np.eye(len(kept)) - q[np.ix_(kept, kept)], rewards[kept])
        return float(answer[0, 0]), float(answer[0, 1])

    base_conversion, base_value = solve(None)
    channels = sorted({channel for path in paths for channel in path})
    effects: dict[str, float] = {}
    value_effects: dict[str, float] = {}
    for channel in channels:
        without_conversion, without_value = solve(channel)
        effects[channel] = 1.0 - without_conversion / base_conversion if base_conversion > 0 else 0.0
        value_effects[channel] = 1.0 - without_value / base_value if base_value > 0 else 0.0
    return ReferenceResult(
        removal_effects=effects,
        value_removal_effects=value_effects,
        conversions=_share(float(sum(conversions)), effects),
        value=_share(float(sum(values)), value_effects),
        states=frozenset(state for state in index if state != start),
    )
