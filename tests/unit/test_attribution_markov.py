"""Exact Markov removal effects: hand-worked chains and ChannelAttribution's definition.

The reference in ``reference_markov.py`` shares no code with closedloop: it builds the states
from ChannelAttribution's own higher-order definition and solves the chain with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_markov import reference_markov, windows

from closedloop.attribution.batch import batch_from_paths
from closedloop.attribution.markov import markov_attribution


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
    # Order 2 states: (a,b) and (b,a).  Only a>b converts; b>a never does.
    # P = 1/2; either channel removed takes (a,b) with it: P = 0, RE 1 each.
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


def test_reference_states_are_channelattribution_windows() -> None:
    # Worked from ChannelAttribution's definition, not from closedloop's code.
    assert windows(["a", "b", "c", "d"], 2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert windows(["a", "b", "c", "d"], 3) == [("a", "b", "c"), ("b", "c", "d")]
    assert windows(["a", "b"], 3) == [("a", "b")]
    assert windows(["a"], 4) == [("a",)]
    assert windows(["a", "a", "a", "b"], 2) == [("a", "a"), ("a", "b")]
    assert windows(["a", "a", "b", "b"], 1) == [("a",), ("b",)]
    assert windows(["a", "b", "a", "b", "a"], 2) == [("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]


def test_reference_hand_worked_order_two() -> None:
    # Order 2: a>b>c converts 1 (one state chain (a,b)->(b,c)), a>b 1 null (short path (a,b) is the
    # same window), c 1 null.  start->(a,b) 2/3, start->(c) 1/3; (a,b)->(b,c) 1/2, (a,b)->null 1/2;
    # (b,c)->conv 1.  P = 1/3.  Every channel sits on the one converting route: RE = 1 each.
    result = reference_markov(
        [["a", "b", "c"], ["a", "b"], ["c"]], [1, 0, 0], [9, 0, 0], [0, 1, 1], order=2
    )
    assert result.states == {("a", "b"), ("b", "c"), ("c",)}
    assert result.removal_effects == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})
    assert result.conversions == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def random_population(rng: np.random.Generator) -> tuple[list[list[str]], list[float], list[float], list[float]]:
    """A small path file: few channels (so windows repeat and merge), paths of 1..7 touches."""
    alphabet = list("abcdef"[: int(rng.integers(2, 7))])
    rows = int(rng.integers(1, 30))
    paths = [list(rng.choice(alphabet, size=int(rng.integers(1, 8)))) for _ in range(rows)]
    conversions = rng.integers(0, 4, rows).astype(float)
    conversions[int(rng.integers(0, rows))] += 1.0  # at least one conversion
    nulls = rng.integers(0, 4, rows).astype(float)
    values = conversions * rng.choice([10.0, 25.0, 40.0], size=rows)
    return paths, conversions.tolist(), values.tolist(), nulls.tolist()


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_independent_channelattribution_reference(order: int) -> None:
    rng = np.random.default_rng(1300 + order)
    for _ in range(40):
        paths, conversions, values, nulls = random_population(rng)
        expected = reference_markov(paths, conversions, values, nulls, order)
        result = markov_attribution(
            batch_from_paths(paths, conversions=conversions, value=values, nulls=nulls), order
        )
        names = result.channel_names
        assert set(names) == set(expected.removal_effects)
        for field, want in (
            ("removal_effects", expected.removal_effects),
            ("value_removal_effects", expected.value_removal_effects),
            ("conversions", expected.conversions),
            ("value", expected.value),
        ):
            got = dict(zip(names, getattr(result, field).tolist(), strict=True))
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (field, paths, conversions, nulls)


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
