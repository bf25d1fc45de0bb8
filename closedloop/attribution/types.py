"""Plain data the attribution models take and return: no sessions, no I/O.

A ``Journey`` is the ordered touches of one conversion, already cut to the lookback window and
to touches at or before the conversion.  Milestone indexes point into ``touches``: the touch
that was last at or before the milestone happened (lead creation, opportunity/deal creation,
closed won).  Two milestones may point at the same touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from closedloop.config.names import ConversionKind

__all__ = ["ConversionKind", "Journey", "Touch"]


@dataclass(frozen=True, slots=True)
class Touch:
    channel: str
    at: datetime
    touchpoint_id: int = 0
    is_direct: bool = False
    campaign: str = ""  # carried to the credit rows; no model reads it


@dataclass(frozen=True, slots=True)
class Journey:
    touches: tuple[Touch, ...]
    converted_at: datetime
    lead_index: int | None = None
    opportunity_index: int | None = None
    won_index: int | None = None
    conversion_id: str = ""
    value: float = 0.0
