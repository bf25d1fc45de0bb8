"""Markov-chain removal effects, solved exactly as an absorbing chain (no simulation).

The chain is the one of channelattribution (Altomare & Loris, "ChannelAttribution"; Anderl et
al. 2016, "Mapping the customer journey"): a state of order ``k`` is the tuple of the last ``k``
channels (shorter at the start of a path).  Every path walks ``start -> s1 -> ... -> sn`` and
then to ``conversion`` with weight ``total_conversions`` and to ``null`` with ``total_null``;
every transition of the path carries ``total_conversions + total_null``.  Transition
probabilities are those counts normalised per state.

Removing channel ``c`` turns every state that contains ``c`` into a null.  With ``Q`` the
transient-to-transient probabilities and ``b`` the one-step conversion probabilities,
``P(conversion) = x[start]`` where ``(I - Q) x = b`` — one sparse solve per channel.  Then
``RE_c = 1 - P_without_c / P`` and channel ``c`` is credited ``total * RE_c / sum(RE)``.

Value uses the same chain with ``b_value[s] = value of conversions leaving s / weight leaving s``:
``x[start]`` is then the expected value of a path, removed the same way.  (channelattribution
estimates both by simulating paths, so its figures move by a few percent with ``nsim_start``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from closedloop.attribution.batch import FloatArray, IntArray, TouchBatch, share_in_proportion

MAX_ORDER = 4
# Up to this many states a dense solve is faster than building sparse matrices (and spares the
# scipy import on the command line); both are exact.
DENSE_STATE_LIMIT = 1500
# Up to this many possible k-gram keys, states are numbered by counting instead of sorting.
DENSE_KEY_LIMIT = 1 << 22


@dataclass(frozen=True, slots=True, eq=False)
class MarkovResult:
    channel_names: tuple[str, ...]
    order: int
    conversion_probability: float
    removal_effects: FloatArray
    value_removal_effects: FloatArray
    conversions: FloatArray
    value: FloatArray
    state_count: int


@dataclass(frozen=True, slots=True, eq=False)
class AbsorbingChain:
    """Transient states 0 (start) .. n-1; ``contains[c]`` marks the states that hold channel c."""

    transitions: Any  # numpy array (dense) or scipy.sparse csr matrix
    to_conversion: FloatArray
    value_to_conversion: FloatArray
    contains: list[IntArray]


def state_codes(batch: TouchBatch, order: int) -> tuple[IntArray, IntArray]:
    """State id (1-based; 0 is start) of every touch, and each state's k-gram key."""
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"markov order must be 1..{MAX_ORDER}, got {order}")
    base = len(batch.channel_names) + 1
    if base ** order >= 2**62:
        raise ValueError("too many channels for this markov order")
    key = batch.codes + 1
    for back in range(1, order):
        shifted = np.zeros_like(key)
        shifted[back:] = batch.codes[:-back] + 1
        shifted[batch.position < back] = 0
        key = key + shifted * base**back
    if base**order <= DENSE_KEY_LIMIT:
        # Same result as np.unique without sorting every touch: a third of a large run's solve.
        present = np.bincount(key, minlength=base**order) > 0
        rank = np.cumsum(present) - 1
        return rank[key].astype(np.int64) + 1, np.flatnonzero(present).astype(np.int64)
    unique_keys, state = np.unique(key, return_inverse=True)
    return state.astype(np.int64) + 1, unique_keys.astype(np.int64)


def build_chain(batch: TouchBatch, order: int) -> AbsorbingChain:
    state, keys = state_codes(batch, order)
    size = keys.shape[0] + 1
    path_weight = batch.conversions + batch.nulls
    touch_weight = path_weight[batch.path_of]
    first = batch.position == 0
    previous = np.zeros_like(state)
    previous[1:] = state[:-1]
    previous[first] = 0
    transitions = _counts(previous, state, touch_weight, size)
    last_touch = np.cumsum(batch.lengths) - 1
    last_state = state[last_touch]
    conversions = np.bincount(last_state, weights=batch.conversions, minlength=size)
    value = np.bincount(last_state, weights=batch.value, minlength=size)
    nulls = np.bincount(last_state, weights=batch.nulls, minlength=size)
    out = np.asarray(transitions.sum(axis=1)).ravel() + conversions + nulls
    scale = np.divide(1.0, out, out=np.zeros(size), where=out > 0)
    if isinstance(transitions, np.ndarray):
        transitions = transitions * scale[:, None]
    else:
        import scipy.sparse as sparse

        transitions = (sparse.diags(scale) @ transitions).tocsr()
    base = len(batch.channel_names) + 1
    digits = np.zeros((keys.shape[0], order), dtype=np.int64)
    remaining = keys.copy()
    for position in range(order):
        digits[:, position] = remaining % base
        remaining //= base
    contains = [
        np.flatnonzero((digits == code + 1).any(axis=1)) + 1
        for code in range(len(batch.channel_names))
    ]
    return AbsorbingChain(
        transitions=transitions,
        to_conversion=conversions * scale,
        value_to_conversion=value * scale,
        contains=contains,
    )


def absorption(chain: AbsorbingChain, removed: IntArray | None = None) -> tuple[float, float]:
    """P(conversion) and expected value from start, with the ``removed`` states made nulls."""
    size = chain.to_conversion.shape[0]
    keep = np.ones(size, dtype=bool)
    if removed is not None:
        keep[removed] = False
    kept = np.flatnonzero(keep)
    rhs = np.column_stack((chain.to_conversion[kept], chain.value_to_conversion[kept]))
    if isinstance(chain.transitions, np.ndarray):
        system = np.eye(kept.shape[0]) - chain.transitions[np.ix_(kept, kept)]
        solution = np.linalg.solve(system, rhs)
    else:
        import scipy.sparse as sparse
        from scipy.sparse.linalg import spsolve

        q = chain.transitions[kept][:, kept]
        sparse_system = (sparse.identity(kept.shape[0], format="csc") - q).tocsc()
        solution = np.asarray(spsolve(sparse_system, rhs)).reshape(kept.shape[0], 2)
    return float(solution[0, 0]), float(solution[0, 1])


def _counts(previous: IntArray, state: IntArray, weight: FloatArray, size: int) -> Any:
    """Weighted transition counts: dense for small chains, scipy.sparse beyond."""
    if size <= DENSE_STATE_LIMIT:
        flat = np.bincount(previous * size + state, weights=weight, minlength=size * size)
        return flat.astype(np.float64).reshape(size, size)
    import scipy.sparse as sparse

    return sparse.csr_matrix((weight, (previous, state)), shape=(size, size), dtype=np.float64)


def markov_attribution(batch: TouchBatch, order: int = 1) -> MarkovResult:
    """Exact removal effects and credits per channel of ``batch``."""
    chain = build_chain(batch, order)
    base_conversion, base_value = absorption(chain)
    channels = len(batch.channel_names)
    removal = np.zeros(channels)
    value_removal = np.zeros(channels)
    for code in range(channels):
        without_conversion, without_value = absorption(chain, chain.contains[code])
        if base_conversion > 0:
            removal[code] = 1.0 - without_conversion / base_conversion
        if base_value > 0:
            value_removal[code] = 1.0 - without_value / base_value
    # Removal only ever takes conversions away; clip solver round-off below zero.
    removal = np.clip(removal, 0.0, None)
    value_removal = np.clip(value_removal, 0.0, None)
    return MarkovResult(
        channel_names=batch.channel_names,
        order=order,
        conversion_probability=base_conversion,
        removal_effects=removal,
        value_removal_effects=value_removal,
        conversions=share_in_proportion(float(batch.conversions.sum()), removal),
        value=share_in_proportion(float(batch.value.sum()), value_removal),
        state_count=chain.to_conversion.shape[0],
    )

