"""Names the config validates against and attribution implements: the built-in models and the
conversion kinds.

They live in config, free of imports, so that the config never imports attribution (attribution
imports config models, never the other way round).
"""

from __future__ import annotations

from typing import Literal

ConversionKind = Literal["contact_created", "deal_created", "deal_won"]

POSITION_MODEL_NAMES: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "u_shaped",
    "w_shaped",
    "full_path",
    "j_shaped",
    "inverse_j",
)
HEURISTIC_MODEL_NAMES: tuple[str, ...] = (*POSITION_MODEL_NAMES, "last_non_direct", "time_decay")
MARKOV_MODEL_NAMES: tuple[str, ...] = ("markov", "markov_1", "markov_2", "markov_3", "markov_4")
DATA_DRIVEN_MODEL_NAMES: tuple[str, ...] = (*MARKOV_MODEL_NAMES, "shapley")
BUILTIN_MODEL_NAMES: tuple[str, ...] = (*HEURISTIC_MODEL_NAMES, *DATA_DRIVEN_MODEL_NAMES)

# The order of the model named ``markov`` when no settings say otherwise (AttributionConfig's
# default); ``closedloop attribute --model markov`` without ``--config`` uses it without pydantic.
DEFAULT_MARKOV_ORDER = 1
