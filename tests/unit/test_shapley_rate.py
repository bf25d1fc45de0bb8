"""Shapley with the conversion-rate characteristic function: non-converting paths count.

Checked against the definition (every order of the players, ``v`` evaluated by brute force)
and the default game's documented indifference to non-converting paths.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.attribution.batch import batch_from_paths
from closedloop.attribution.shapley import channel_sets, exact_shapley, sampled_shapley, shapley_attribution

Rows = list[tuple[list[str], float, float]]  # path, conversions, nulls


def by_definition(rows: Rows, channels: tuple[str, ...]) -> dict[str, float]:
    def v(coalition: frozenset[str]) -> float:
        within = [(c, n) for path, c, n in rows if set(path) <= coalition]
        paths = sum(c + n for c, n in within)
        return sum(c for c, _ in within) / paths if paths else 0.0

    out = dict.fromkeys(channels, 0.0)
    orders = list(permutations(channels))
    for order in orders:
        seen: frozenset[str] = frozenset()
        for channel in order:
            out[channel] += (v(seen | {channel}) - v(seen)) / len(orders)
            seen = seen | {channel}
    return out


def batch(rows: Rows):  # type: ignore[no-untyped-def]
    return batch_from_paths([p for p, _, _ in rows], conversions=[c for _, c, _ in rows],
                            value=[10 * c for _, c, _ in rows], nulls=[n for _, _, n in rows])


def test_by_hand_a_channel_whose_paths_rarely_convert_gets_less() -> None:
    # email alone converts 1 in 2; display alone 1 in 10; both together 2 in 4.
    rows: Rows = [(["email"], 1, 1), (["display"], 1, 9), (["email", "display"], 2, 2)]
    b = batch(rows)
    values, value_values = exact_shapley(channel_sets(b), "conversion_rate")
    got = dict(zip(b.channel_names, values, strict=True))
    # v({e}) = 1/2, v({d}) = 1/10, v({e,d}) = 4/16; phi_e = (1/2 + (1/4 - 1/10)) / 2 = 0.325
    assert got["email"] == pytest.approx(0.325)
    assert got["display"] == pytest.approx((0.1 + (0.25 - 0.5)) / 2)  # negative: clipped later
    assert value_values == pytest.approx(10 * values)
    result = shapley_attribution(b, characteristic="conversion_rate")
    assert dict(zip(b.channel_names, result.conversions, strict=True)) == pytest.approx(
        {"email": 4.0, "display": 0.0})  # every conversion goes to the channel with positive value


def test_the_default_game_ignores_non_converting_paths() -> None:
    rows: Rows = [(["email"], 1, 1), (["display"], 1, 9), (["email", "display"], 2, 2)]
    without = [(p, c, 0.0) for p, c, _ in rows]
    assert exact_shapley(channel_sets(batch(rows)))[0] == pytest.approx(exact_shapley(channel_sets(batch(without)))[0])
    assert not np.allclose(exact_shapley(channel_sets(batch(rows)), "conversion_rate")[0],
                           exact_shapley(channel_sets(batch(without)), "conversion_rate")[0])


paths = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4)
rows_strategy = st.lists(
    st.tuples(paths, st.integers(0, 5).map(float), st.integers(0, 5).map(float)), min_size=1, max_size=8
).filter(lambda rows: any(c + n > 0 for _, c, n in rows))


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_enumeration_and_sampler_equal_the_definition(rows: Rows) -> None:
    b = batch(rows)
    expected = by_definition(rows, b.channel_names)
    exact, _ = exact_shapley(channel_sets(b), "conversion_rate")
    assert dict(zip(b.channel_names, exact, strict=True)) == pytest.approx(expected, abs=1e-9)
    sampled, _, errors = sampled_shapley(channel_sets(b), samples=4000, seed=1, characteristic="conversion_rate")
    assert np.all(np.abs(sampled - exact) <= 6 * errors + 1e-9)
