"""Exact Markov removal effects: hand-worked chains and an independent dense solve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.batch import batch_from_paths
from closedloop.attribution.markov import markov_attribution


def dense_removal_effects(
    paths: list[list[str]], conversions: list[float], nulls: list[float], order: int
) -> dict[str, float]:
    """Reference: build the k-gram chain with dicts and solve it with numpy.linalg."""
    states: dict[tuple[str, ...], int] = {(): 0}
    edges: dict[tuple[int, int], float] = {}
    to_conversion: dict[int, float] = {}
    to_null: dict[int, float] = {}

    def state_of(path: list[str], index: int) -> int:
        key = tuple(path[max(0, index - order + 1) : index + 1])
        return states.setdefault(key, len(states))

    for path, conversion, null in zip(paths, conversions, nulls, strict=True):
        sequence = [0] + [state_of(path, index) for index in range(len(path))]
        for before, after in itertools.pairwise(sequence):
            edges[before, after] = edges.get((before, after), 0.0) + conversion + null
        to_conversion[sequence[-1]] = to_conversion.get(sequence[-1], 0.0) + conversion
        to_null[sequence[-1]] = to_null.get(sequence[-1], 0.0) + null
    size = len(states)
    counts = np.zeros((size, size))
    for (before, after), weight in edges.items():
        counts[before, after] += weight
    b = np.array([to_conversion.get(state, 0.0) for state in range(size)])
    out = counts.sum(axis=1) + b + np.array([to_null.get(state, 0.0) for state in range(size)])
    out[out == 0] = 1.0
    q, b = counts / out[:, None], b / out

    def probability(removed: str | None) -> float:
        keep = [index for key, index in states.items() if removed not in key]
        return float(np.linalg.solve(np.eye(len(keep)) - q[np.ix_(keep, keep)], b[keep])[0])

    base = probability(None)
    channels = sorted({channel for path in paths for channel in path})
    return {channel: 1.0 - probability(channel) / base for channel in channels}


def test_hand_worked_order_one() -> None:
    # start->a 2/3, start->b 1/3; a->b 1/2, a->null 1/2; b->conv 1/2, b->null 1/2.
    # P = 2/3*1/2*1/2 + 1/3*1/2 = 1/3; without a: 1/6 (RE 1/2); without b: 0 (RE 1).
    batch = batch_from_paths(
        [["a", "b"], ["a"], ["b"]], conversions=[1, 0, 0], value=[30, 0, 0], nulls=[0, 1, 1]
    )
    result = markov_attribution(batch, 1)
    assert result.conversion_probability == pytest.approx(1 / 3)
    assert dict(zip(result.channel_names, result.removal_effects, strict=True)) == pytest.approx(
        {"a": 0.5, "b": 1.0}
    )
    assert result.conversions.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert result.value.tolist() == pytest.approx([10, 20])


def test_hand_worked_order_two_separates_contexts() -> None:
    # Order 2 states: (a), (a,b), (b), (b,a).  Only a>b converts; b>a never does.
    # Without a: start->(b) only, (b)->(b,a) is removed... P = 0; without b: P = 0.
    batch = batch_from_paths(
        [["a", "b"], ["b", "a"]], conversions=[2, 0], value=[4, 0], nulls=[0, 2]
    )
    result = markov_attribution(batch, 2)
    assert result.conversion_probability == pytest.approx(0.5)
    assert result.removal_effects.tolist() == pytest.approx([1.0, 1.0])
    assert result.conversions.tolist() == pytest.approx([1.0, 1.0])


def test_chain_reproduces_total_conversions() -> None:
    # Flow conservation: the fitted chain expects exactly the observed conversions.
    batch = batch_from_paths(
        [["a", "b", "a"], ["c"], ["b", "c"], ["a"]],
        conversions=[3, 1, 2, 0],
        value=[1, 1, 1, 0],
        nulls=[1, 4, 0, 5],
    )
    for order in (1, 2, 3, 4):
        result = markov_attribution(batch, order)
        assert result.conversion_probability * 16 == pytest.approx(6)
        assert result.conversions.sum() == pytest.approx(6)


paths_strategy = st.lists(
    st.tuples(
        st.lists(st.sampled_from("abcde"), min_size=1, max_size=6),
        st.integers(0, 5),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=12,
).filter(lambda rows: sum(conversion for _, conversion, _ in rows) > 0)


@settings(max_examples=40, deadline=None)
@given(rows=paths_strategy, order=st.integers(1, 3))
def test_matches_dense_solve(rows: list[tuple[list[str], int, int]], order: int) -> None:
    paths = [path for path, _, _ in rows]
    conversions = [float(conversion) for _, conversion, _ in rows]
    nulls = [float(null) for _, _, null in rows]
    result = markov_attribution(
        batch_from_paths(paths, conversions=conversions, value=conversions, nulls=nulls), order
    )
    expected = dense_removal_effects(paths, conversions, nulls, order)
    got = dict(zip(result.channel_names, result.removal_effects.tolist(), strict=True))
    assert got.keys() == expected.keys()
    for channel, effect in expected.items():
        assert got[channel] == pytest.approx(max(effect, 0.0), abs=1e-9)
    assert result.conversions.sum() == pytest.approx(sum(conversions))


def test_order_out_of_range_is_rejected() -> None:
    batch = batch_from_paths([["a"]], conversions=[1], value=[0], nulls=[0])
    with pytest.raises(ValueError, match="order"):
        markov_attribution(batch, 5)


def test_sparse_and_dense_solvers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import closedloop.attribution.markov as markov

    rng = np.random.default_rng(0)
    names = list("abcdefgh")
    paths = [list(rng.choice(names, size=rng.integers(1, 6))) for _ in range(400)]
    conversions = rng.integers(0, 3, 400).astype(float)
    batch = batch_from_paths(
        paths, conversions=conversions, value=conversions, nulls=3 - conversions
    )
    dense = markov.markov_attribution(batch, 2)
    monkeypatch.setattr(markov, "DENSE_STATE_LIMIT", 0)
    sparse = markov.markov_attribution(batch, 2)
    assert np.allclose(dense.removal_effects, sparse.removal_effects, atol=1e-12)
    assert np.allclose(dense.value, sparse.value, atol=1e-9)
