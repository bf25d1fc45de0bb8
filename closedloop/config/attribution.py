"""Config of the attribution engine: which models run, their weights and windows.

Position weights are **percent** and must sum to 100 (within 1e-6): that is how HubSpot,
Salesforce and Marketo Measure document them, so an admin can copy the numbers verbatim.
Marketo Measure's 50/50 U-shape is one line::

    custom_models: {marketo_u: {first: 50, lead: 50}}
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from closedloop.config.base import Strict
from closedloop.config.names import BUILTIN_MODEL_NAMES, ConversionKind

_WEIGHT_TOLERANCE = 1e-6
SPEND_FILE_SUFFIXES = (".csv", ".yaml", ".yml")
_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PositionWeights(Strict):
    """Percent of one conversion's credit per role a touch can play.

    ``first``/``last`` are the first/last touch of the journey; ``lead``, ``opportunity`` and
    ``won`` are the touches at the milestones; ``middle`` is shared evenly by every touch that
    plays none of the roles the model weights.  See ``closedloop.attribution.positions``.
    """

    first: float = Field(0.0, ge=0)
    lead: float = Field(0.0, ge=0)
    opportunity: float = Field(0.0, ge=0)
    won: float = Field(0.0, ge=0)
    last: float = Field(0.0, ge=0)
    middle: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _sums_to_100(self) -> PositionWeights:
        total = self.first + self.lead + self.opportunity + self.won + self.last + self.middle
        if abs(total - 100.0) > _WEIGHT_TOLERANCE:
            raise ValueError(f"position weights are percent and must sum to 100, got {total:g}")
        return self


class LookbackDays(Strict):
    """How far before each kind of conversion a touch may still get credit."""

    contact_created: int = Field(90, ge=1, le=3650)
    deal_created: int = Field(180, ge=1, le=3650)
    deal_won: int = Field(365, ge=1, le=3650)


class ShapleyConfig(Strict):
    exact_max_channels: int = Field(
        16, ge=1, le=20, description="Up to this many channels, enumerate every coalition"
    )
    samples: int = Field(
        2000, ge=10, le=1_000_000, description="Random permutations beyond exact_max_channels"
    )
    seed: int = 0
    characteristic: Literal["conversions", "conversion_rate"] = Field(
        "conversions",
        description="v(S): conversions of the paths within S (non-converting paths ignored), or "
        "conversion_rate: those conversions over all paths within S, converting or not",
    )


class AttributionConfig(Strict):
    models: list[str] = Field(
        default_factory=lambda: ["first_touch", "last_touch", "linear", "u_shaped"]
    )
    primary_model: str = "u_shaped"
    u_shaped: PositionWeights = PositionWeights(first=40, lead=40, middle=20)
    w_shaped: PositionWeights = PositionWeights(first=30, lead=30, opportunity=30, middle=10)
    full_path: PositionWeights = PositionWeights(
        first=22.5, lead=22.5, opportunity=22.5, won=22.5, middle=10
    )
    j_shaped: PositionWeights = PositionWeights(first=20, last=60, middle=20)
    inverse_j: PositionWeights = PositionWeights(first=60, last=20, middle=20)
    custom_models: dict[str, PositionWeights] = Field(default_factory=dict)
    time_decay_half_life_days: float = Field(7.0, gt=0, le=3650)
    path_step_days: float = Field(
        1.0, gt=0, description="Days between consecutive touches of a path-file path (time decay)"
    )
    markov_order: int = Field(1, ge=1, le=4, description="Order of the model named 'markov'")
    shapley: ShapleyConfig = ShapleyConfig()
    lookback_days: LookbackDays = LookbackDays()
    direct_channels: list[str] = Field(
        default_factory=lambda: ["direct"],
        description="Channel names (case-insensitive) that last_non_direct skips",
    )
    spend_files: list[str] = Field(
        default_factory=list,
        description="Spend per channel/campaign/day for `closedloop roi`: CSV (date,channel,"
        "campaign,cost) or YAML files, paths relative to the working directory",
    )
    currency: str | None = Field(
        None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the spend files' costs; unset: they are in GA4's currency",
    )

    @field_validator("custom_models")
    @classmethod
    def _custom_names_are_new(cls, value: dict[str, PositionWeights]) -> dict[str, PositionWeights]:
        for name in value:
            if not _CUSTOM_NAME.match(name):
                raise ValueError(
                    f"custom model name {name!r}: use lower-case letters, digits and _"
                )
            if name in BUILTIN_MODEL_NAMES or name == "all":
                raise ValueError(f"custom model name {name!r} is taken by a built-in")
        return value

    @field_validator("spend_files")
    @classmethod
    def _spend_files_are_csv_or_yaml(cls, value: list[str]) -> list[str]:
        wrong = [path for path in value if not path.lower().endswith(SPEND_FILE_SUFFIXES)]
        if wrong:
            raise ValueError(
                f"spend file(s) {', '.join(map(repr, wrong))}: must end in "
                f"{', '.join(SPEND_FILE_SUFFIXES)}"
            )
        return value

    @model_validator(mode="after")
    def _models_are_known(self) -> AttributionConfig:
        valid = self.model_names()
        unknown = [name for name in [*self.models, self.primary_model] if name not in valid]
        if unknown:
            raise ValueError(
                f"unknown model(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
            )
        return self

    def model_names(self) -> tuple[str, ...]:
        """Every model this config can run: built-ins then the custom position models."""
        return (*BUILTIN_MODEL_NAMES, *self.custom_models)

    def lookback(self, kind: ConversionKind) -> timedelta:
        return timedelta(days=getattr(self.lookback_days, kind))
