"""Credits per channel for path-level data (channelattribution's format), under one model or all.

What ``closedloop attribute`` computes between reading its file and printing.  The file itself is
read by ``closedloop.files.pathfile`` (this part does no I/O): the caller passes a reader, which
is called once, after the model name is checked, with the settings that shape the batch.  Markov models
whose order is in their name (``markov_1``..``markov_4``) need no settings, and ``markov`` without
a config is the default order, so without a config they skip pydantic altogether: that import
costs a fifth of a million-journey run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol

from closedloop.config.names import DEFAULT_MARKOV_ORDER, MARKOV_MODEL_NAMES
from closedloop.errors import UsageError

if TYPE_CHECKING:
    from closedloop.attribution.batch import FloatArray, TouchBatch
    from closedloop.config.attribution import AttributionConfig

# Markov models whose only setting, the order, is in their name.
ORDER_IN_NAME = tuple(name for name in MARKOV_MODEL_NAMES if name != "markov")
# Reads the batch given the direct channels and the days between touches (they shape heuristics).
BatchReader = Callable[[Collection[str], float], "TouchBatch"]


def settings_free_order(model: str) -> int | None:
    """The Markov order of ``model`` when it needs no settings (no ``--config``), else None."""
    if model == "markov":
        return DEFAULT_MARKOV_ORDER
    if model in ORDER_IN_NAME:
        return int(model.rsplit("_", 1)[1])
    return None


class Credits(Protocol):
    @property
    def model(self) -> str: ...
    @property
    def channel_names(self) -> tuple[str, ...]: ...
    @property
    def conversions(self) -> FloatArray: ...
    @property
    def value(self) -> FloatArray: ...


def path_credits(read_batch: BatchReader, model: str, *, config: AttributionConfig | None) -> list[dict[str, Any]]:
    """One ``{"model", "channels": {name: {"conversions", "value"}}}`` per model, channels sorted.

    ``model`` may be ``all``; ``config`` None means the defaults.  Raises ``UsageError`` for an
    unknown model (before ``read_batch`` is called) and whatever ``read_batch`` raises.
    """
    order = settings_free_order(model) if config is None else None
    if order is not None:
        from closedloop.attribution.markov import markov_attribution

        # Direct channels and step days shape only heuristics, so the defaults are harmless.
        batch = read_batch(("direct",), 1.0)
        markov = markov_attribution(batch, order)
        return [_as_dict(model, markov.channel_names, markov.conversions, markov.value)]
    if config is None:
        from closedloop.config.attribution import AttributionConfig

        config = AttributionConfig()
    valid = config.model_names()
    if model != "all" and model not in valid:
        raise UsageError(f"unknown model {model!r}; valid: all, {', '.join(valid)}", "--model")
    batch = read_batch(config.direct_channels, config.path_step_days)
    from closedloop.attribution.registry import channel_credits

    names = list(valid) if model == "all" else [model]
    results = []
    for name in names:
        credits: Credits = channel_credits(name, batch, config)
        results.append(_as_dict(credits.model, credits.channel_names, credits.conversions, credits.value))
    return results


def _as_dict(
    model: str, channel_names: tuple[str, ...], conversions: FloatArray, value: FloatArray
) -> dict[str, Any]:
    order = sorted(range(len(channel_names)), key=channel_names.__getitem__)
    return {
        "model": model,
        "channels": {
            channel_names[code]: {"conversions": float(conversions[code]), "value": float(value[code])}
            for code in order
        },
    }
