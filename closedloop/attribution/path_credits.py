"""Credits per channel for a path file (channelattribution's format), under one model or all.

What ``closedloop attribute`` computes between parsing its options and printing.  Markov models
whose order is in their name (``markov_1``..``markov_4``) need no settings, and ``markov`` without
a config is the default order, so without a config they skip pydantic altogether: that import
costs a fifth of a million-journey run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from closedloop.attribution.pathfile import read_path_file
from closedloop.attribution.pathfile_fast import DEFAULT_SEPARATOR, PathColumns
from closedloop.config.names import DEFAULT_MARKOV_ORDER, MARKOV_MODEL_NAMES
from closedloop.errors import UsageError

if TYPE_CHECKING:
    from closedloop.attribution.batch import FloatArray
    from closedloop.config.attribution import AttributionConfig

# Markov models whose only setting, the order, is in their name.
ORDER_IN_NAME = tuple(name for name in MARKOV_MODEL_NAMES if name != "markov")


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


def path_file_credits(
    paths_file: Path,
    model: str,
    *,
    config: AttributionConfig | None,
    columns: PathColumns | None = None,
    separator: str = DEFAULT_SEPARATOR,
) -> list[dict[str, Any]]:
    """One ``{"model", "channels": {name: {"conversions", "value"}}}`` per model, channels sorted.

    ``model`` may be ``all``; ``config`` None means the defaults.  Raises ``UsageError`` for an
    unknown model and ``PathFileError`` for a file that cannot be read.
    """
    columns = columns or PathColumns()
    order = settings_free_order(model) if config is None else None
    if order is not None:
        from closedloop.attribution.markov import markov_attribution

        # Direct channels and step days shape only heuristics, so the defaults are harmless.
        batch = read_path_file(paths_file, columns=columns, separator=separator)
        markov = markov_attribution(batch, order)
        return [_as_dict(model, markov.channel_names, markov.conversions, markov.value)]
    if config is None:
        from closedloop.config.attribution import AttributionConfig

        config = AttributionConfig()
    valid = config.model_names()
    if model != "all" and model not in valid:
        raise UsageError(f"unknown model {model!r}; valid: all, {', '.join(valid)}", "--model")
    batch = read_path_file(
        paths_file,
        columns=columns,
        separator=separator,
        direct_channels=config.direct_channels,
        step_days=config.path_step_days,
    )
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
