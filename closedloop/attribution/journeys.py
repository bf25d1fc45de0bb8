"""Cut a contact's touches down to the journey of one conversion."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from closedloop.attribution.types import Journey, Touch


def _require_aware(name: str, moment: datetime | None) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def build_journey(
    touches: Sequence[Touch],
    *,
    converted_at: datetime,
    lookback: timedelta | None,
    lead_at: datetime | None = None,
    opportunity_at: datetime | None = None,
    won_at: datetime | None = None,
    conversion_id: str = "",
    value: float = 0.0,
) -> Journey:
    """The journey of one conversion.

    Keeps the touches at or before ``converted_at`` and, with a ``lookback``, at or after
    ``converted_at - lookback``; sorted by time (ties keep their input order, so the caller's
    tie-break survives).  A milestone index is the last kept touch at or before the milestone;
    ``None`` if the milestone is unknown or no kept touch precedes it.  Naive datetimes are
    rejected rather than guessed.
    """
    _require_aware("converted_at", converted_at)
    milestones = (("lead_at", lead_at), ("opportunity_at", opportunity_at), ("won_at", won_at))
    for name, moment in milestones:
        _require_aware(name, moment)
    if lookback is not None and lookback < timedelta(0):
        raise ValueError("lookback must not be negative")
    earliest = None if lookback is None else converted_at - lookback
    kept: list[Touch] = []
    for touch in touches:
        _require_aware(f"touch {touch.touchpoint_id} at", touch.at)
        if touch.at <= converted_at and (earliest is None or touch.at >= earliest):
            kept.append(touch)
    kept.sort(key=lambda touch: touch.at)
    times = [touch.at for touch in kept]

    def index_at(moment: datetime | None) -> int | None:
        if moment is None:
            return None
        position = bisect_right(times, moment) - 1
        return position if position >= 0 else None

    return Journey(
        touches=tuple(kept),
        converted_at=converted_at,
        lead_index=index_at(lead_at),
        opportunity_index=index_at(opportunity_at),
        won_index=index_at(won_at),
        conversion_id=conversion_id,
        value=value,
    )
