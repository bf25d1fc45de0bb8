"""Shapley values: hand-worked cases, the Harsanyi closed form, sampled vs exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.batch import batch_from_paths
from closedloop.attribution.shapley import (
    channel_sets,
    exact_shapley,
    shapley_attribution,
)


def test_two_channels_by_hand() -> None:
    # v({a})=2, v({b})=0, v({a,b})=2+0+4=6: phi_a = (2 + (6-0))/2 = 4, phi_b = (0 + 6-2)/2 = 2.
    batch = batch_from_paths(
        [["a"], ["b", "a"], ["b"]], conversions=[2, 4, 0], value=[2, 4, 0], nulls=[1, 1, 1]
    )
    result = shapley_attribution(batch)
    assert result.exact
    assert result.values.tolist() == pytest.approx([4, 2])
    assert result.conversions.tolist() == pytest.approx([4, 2])


def test_three_channels_by_hand() -> None:
    # Dividends: {a,b}:3 -> 1.5 each; {a}:1 -> a; {c,a,b}:2 -> 2/3 each.
    batch = batch_from_paths(
        [["a", "b"], ["a"], ["b"], ["c", "a", "b"]],
        conversions=[3, 1, 0, 2],
        value=[10, 0, 0, 4],
        nulls=[0, 1, 1, 0],
    )
    result = shapley_attribution(batch)
    assert result.values.tolist() == pytest.approx([1.5 + 1 + 2 / 3, 1.5 + 2 / 3, 2 / 3])
    assert result.value.tolist() == pytest.approx([5 + 4 / 3, 5 + 4 / 3, 4 / 3])


def harsanyi(paths: list[list[str]], conversions: list[float]) -> dict[str, float]:
    values: dict[str, float] = {}
    for path, conversion in zip(paths, conversions, strict=True):
        members = set(path)
        for channel in members:
            values[channel] = values.get(channel, 0.0) + conversion / len(members)
    return values


rows_strategy = st.lists(
    st.tuples(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5), st.integers(0, 9)),
    min_size=1,
    max_size=15,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_enumeration_equals_closed_form(rows: list[tuple[list[str], int]]) -> None:
    paths = [path for path, _ in rows]
    conversions = [float(conversion) for _, conversion in rows]
    batch = batch_from_paths(
        paths, conversions=conversions, value=conversions, nulls=[0.0] * len(rows)
    )
    values, _ = exact_shapley(channel_sets(batch))
    expected = harsanyi(paths, conversions)
    assert dict(zip(batch.channel_names, values.tolist(), strict=True)) == pytest.approx(expected)


def test_sampled_agrees_with_exact_within_stated_error() -> None:
    rng = np.random.default_rng(3)
    names = [f"ch{i}" for i in range(14)]
    paths = [list(rng.choice(names, size=rng.integers(1, 6))) for _ in range(300)]
    conversions = rng.integers(0, 4, size=300).astype(float)
    batch = batch_from_paths(paths, conversions=conversions, value=conversions, nulls=conversions)
    exact = shapley_attribution(batch, exact_max_channels=16)
    sampled = shapley_attribution(batch, exact_max_channels=8, samples=3000, seed=1)
    assert exact.exact and not sampled.exact
    assert (sampled.standard_errors > 0).all()
    assert np.all(np.abs(sampled.values - exact.values) <= 5 * sampled.standard_errors + 1e-9)
    assert sampled.conversions.sum() == pytest.approx(conversions.sum())
