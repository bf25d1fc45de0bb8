"""Non-converting paths cut to the lookback window converting journeys get.

Pure.  A converting journey keeps only the touches in ``[converted_at - lookback,
converted_at]``; a path that did not convert must be cut the same way (ending at its lost
deal's close, or at its last touch where nothing ended it), or the data-driven fits compare
converting journeys of a month with non-converting histories of years, and every channel that
appears early in long histories looks like it prevents conversions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


def window_channels(
    touches: Sequence[tuple[datetime, str]], *, end: datetime | None, lookback: timedelta | None
) -> list[str]:
    """The channels of the time-sorted ``touches`` at or before ``end`` and at or after
    ``end - lookback`` (``end`` None: the last touch; ``lookback`` None: no lower bound)."""
    if not touches:
        return []
    stop = touches[-1][0] if end is None else end
    start = None if lookback is None else stop - lookback
    return [channel for at, channel in touches if at <= stop and (start is None or at >= start)]
