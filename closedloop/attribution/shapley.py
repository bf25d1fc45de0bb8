"""Shapley-value attribution over channel coalitions.

Characteristic function (Zhao, Mahboobi & Bagheri 2018, "Shapley Value Methods for Attribution
Modeling in Online Advertising", arXiv:1804.05327, eq. 3; Dalessandro et al. 2012): ``v(S)`` is
the conversions of the paths whose *set* of channels is a subset of ``S``.  It is monotone, so
every Shapley value is non-negative, and credits are ``total * phi_c / sum(phi)``.

* Up to ``exact_max_channels`` channels (default 16) every one of the ``2^n`` coalitions is
  enumerated: ``v`` by a subset-sum (zeta) transform, then the textbook weighted sum of marginal
  contributions.  Exact, ``O(n 2^n)``.
* Beyond that, ``samples`` random channel orders (seeded) estimate each value as the mean
  marginal contribution; ``standard_errors`` gives the standard error of each estimate
  (sample standard deviation / sqrt(samples)), so the error is stated, not hidden.

Non-converting paths.  Under this default game (``characteristic="conversions"``) a path that
did not convert adds nothing to any ``v(S)``: the non-converting paths handed to the fit are
ignored, and Shapley splits conversions by how often channels appear in converting paths only.
A channel present in many paths that rarely convert is therefore not penalised.

``characteristic="conversion_rate"`` (config ``attribution.shapley.characteristic``) uses the
non-converting paths: ``v(S)`` is the conversions of the paths whose channel set is a subset of
``S`` over *all* such paths, converting or not (``v`` of a coalition no path fits is 0).  This
game is not monotone: a channel whose paths convert less often than the coalition it joins has
a negative marginal contribution there, and a channel's total value may be negative; negative
values are clipped to 0 before the shares are taken, as for the default.  Both games share the
enumeration and the sampler below (the sampler evaluates ``v`` along each random order).

Because ``v`` (the default game) is a sum of unanimity games, its exact values also equal ``sum over channel sets T
containing c of conversions(T) / |T|`` (Harsanyi dividends); the tests use that as an
independent check of both the enumeration and the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import Literal

import numpy as np

from closedloop.attribution.batch import FloatArray, IntArray, TouchBatch, share_in_proportion

DEFAULT_EXACT_MAX_CHANNELS = 16
Characteristic = Literal["conversions", "conversion_rate"]


@dataclass(frozen=True, slots=True, eq=False)
class ShapleyResult:
    channel_names: tuple[str, ...]
    values: FloatArray
    value_values: FloatArray
    standard_errors: FloatArray
    exact: bool
    conversions: FloatArray
    value: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class ChannelSets:
    """Unique channel sets as a membership matrix, with the conversions and value of each."""

    membership: np.ndarray  # bool, (sets, channels)
    conversions: FloatArray
    value: FloatArray
    paths: FloatArray  # every path of the set, converting or not (conversions + nulls)


def channel_sets(batch: TouchBatch) -> ChannelSets:
    channels = len(batch.channel_names)
    membership = np.zeros((batch.path_count, channels), dtype=bool)
    membership[batch.path_of, batch.codes] = True
    unique, inverse = np.unique(membership, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return ChannelSets(
        membership=unique,
        conversions=np.bincount(
            inverse, weights=batch.conversions, minlength=unique.shape[0]
        ).astype(np.float64),
        value=np.bincount(inverse, weights=batch.value, minlength=unique.shape[0]).astype(
            np.float64
        ),
        paths=np.bincount(
            inverse, weights=batch.conversions + batch.nulls, minlength=unique.shape[0]
        ).astype(np.float64),
    )


def _as_rate(game: FloatArray, paths: FloatArray) -> FloatArray:
    """``game`` (conversions, value per coalition) over the paths of each coalition; 0 where none."""
    out = np.zeros_like(game)
    some = paths > 0
    out[some] = game[some] / paths[some, None]
    return out


def exact_shapley(
    sets: ChannelSets, characteristic: Characteristic = "conversions"
) -> tuple[FloatArray, FloatArray]:
    """Exact Shapley values (conversions, value) by enumerating every coalition."""
    channels = sets.membership.shape[1]
    if channels == 0:
        return np.zeros(0), np.zeros(0)
    if channels > 20:
        raise ValueError("exact Shapley enumeration is limited to 20 channels")
    bits = (1 << np.arange(channels, dtype=np.int64))
    masks = sets.membership.astype(np.int64) @ bits
    coalitions = 1 << channels
    game = np.zeros((coalitions, 3))
    np.add.at(game, masks, np.column_stack((sets.conversions, sets.value, sets.paths)))
    every = np.arange(coalitions, dtype=np.int64)
    for bit in range(channels):  # zeta transform: v(S) = sum over subsets
        has_bit = (every >> bit) & 1 == 1
        game[every[has_bit]] += game[every[has_bit] ^ (1 << bit)]
    game = _as_rate(game[:, :2], game[:, 2]) if characteristic == "conversion_rate" else game[:, :2]
    sizes = np.zeros(coalitions, dtype=np.int64)
    for bit in range(channels):
        sizes += (every >> bit) & 1
    weight_by_size = np.array(
        [factorial(s) * factorial(channels - s - 1) / factorial(channels) for s in range(channels)]
    )
    result = np.zeros((channels, 2))
    for bit in range(channels):
        without = every[(every >> bit) & 1 == 0]
        marginal = game[without | (1 << bit)] - game[without]
        result[bit] = weight_by_size[sizes[without]] @ marginal
    return result[:, 0], result[:, 1]


def sampled_shapley(
    sets: ChannelSets, *, samples: int, seed: int, characteristic: Characteristic = "conversions"
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Permutation-sampling estimates (conversions, value) and their standard errors.

    In a random order, the marginal contribution of ``c`` is the conversions of the sets that
    ``c`` completes, i.e. whose last member in that order is ``c``.
    """
    channels = sets.membership.shape[1]
    rows, columns = np.nonzero(sets.membership)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if rows.size else rows
    set_index = rows[starts] if rows.size else rows
    rng = np.random.default_rng(seed)
    draws = np.zeros((samples, channels))
    value_sum = np.zeros(channels)
    for sample in range(samples):
        rank = rng.permutation(channels)
        if rows.size == 0:
            continue
        member_rank = rank[columns]
        last_rank = np.maximum.reduceat(member_rank, starts)
        completer = _channel_of_rank(rank)[last_rank]
        if characteristic == "conversion_rate":
            # v after each prefix of the order, as a rate; a channel's marginal is the step it makes.
            game = np.zeros((channels, 3))
            np.add.at(game, last_rank, np.column_stack(
                (sets.conversions[set_index], sets.value[set_index], sets.paths[set_index])))
            game = np.cumsum(game, axis=0)
            rate = _as_rate(game[:, :2], game[:, 2])
            step = np.diff(np.vstack((np.zeros((1, 2)), rate)), axis=0)  # by rank
            draws[sample] = step[rank, 0]
            value_sum += step[rank, 1]
            continue
        draws[sample] = np.bincount(
            completer, weights=sets.conversions[set_index], minlength=channels
        )
        value_sum += np.bincount(completer, weights=sets.value[set_index], minlength=channels)
    errors = draws.std(axis=0, ddof=1) / np.sqrt(samples) if samples > 1 else np.zeros(channels)
    return draws.mean(axis=0), value_sum / samples, errors


def _channel_of_rank(rank: IntArray) -> IntArray:
    inverse = np.empty_like(rank)
    inverse[rank] = np.arange(rank.shape[0])
    return inverse


def shapley_attribution(
    batch: TouchBatch,
    *,
    exact_max_channels: int = DEFAULT_EXACT_MAX_CHANNELS,
    samples: int = 2000,
    seed: int = 0,
    characteristic: Characteristic = "conversions",
) -> ShapleyResult:
    sets = channel_sets(batch)
    channels = len(batch.channel_names)
    if channels <= exact_max_channels:
        values, value_values = exact_shapley(sets, characteristic)
        errors = np.zeros(channels)
        exact = True
    else:
        values, value_values, errors = sampled_shapley(
            sets, samples=samples, seed=seed, characteristic=characteristic
        )
        exact = False
    values = np.clip(values, 0.0, None)
    value_values = np.clip(value_values, 0.0, None)
    return ShapleyResult(
        channel_names=batch.channel_names,
        values=values,
        value_values=value_values,
        standard_errors=errors,
        exact=exact,
        conversions=share_in_proportion(float(batch.conversions.sum()), values),
        value=share_in_proportion(float(batch.value.sum()), value_values),
    )

