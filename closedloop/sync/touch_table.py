"""Every contact's touches in flat columns, turned back into ``Touch`` objects on demand.

Crediting reads each contact's touches several times (its own journey, its deals' journeys,
the paths the data-driven models learn from), so the rebuild keeps them from the touchpoints
pass to the end.  As objects that was 160 bytes a touch (the ``Touch``, its datetime, its
63-bit id, a list slot): 67 MB at 100,000 contacts, most of the rebuild's peak.  Here a touch
is 24 bytes in three arrays, and objects exist only for the journeys being built.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from closedloop.attribution.types import Touch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class TouchTable:
    """Touches by contact position (the order contacts are added in), read back in the order
    they were added; channel and campaign names are stored once each."""

    def __init__(self) -> None:
        self._starts = array("q", [0])  # touches of position p: [_starts[p], _starts[p + 1])
        self._at = array("q")  # microseconds since the epoch, UTC
        self._ids = array("q")
        self._labels = array("q")  # channel code << 33 | is_direct << 32 | campaign code
        self._code_of: dict[str, int] = {}
        self._names: list[str] = []

    def __len__(self) -> int:
        """Positions covered so far (a position added with no touches counts)."""
        return len(self._starts) - 1

    def add(self, position: int, touches: Iterable[Touch]) -> None:
        """The touches of ``position``; positions come in increasing order, gaps have none."""
        if position < len(self):
            raise ValueError(f"position {position} was already added (next is {len(self)})")
        mark = len(self._at)
        try:
            for touch in touches:
                if touch.at.tzinfo is None:
                    raise ValueError(f"touch {touch.touchpoint_id} has a naive time")
                self._at.append((touch.at - _EPOCH) // _MICROSECOND)
                self._ids.append(touch.touchpoint_id)
                self._labels.append(
                    self._code(touch.channel) << 33 | int(touch.is_direct) << 32 | self._code(touch.campaign)
                )
        except BaseException:
            for column in (self._at, self._ids, self._labels):
                del column[mark:]  # the position stays unadded
            raise
        while len(self) < position:
            self._starts.append(mark)
        self._starts.append(len(self._at))

    def touches(self, position: int) -> list[Touch]:
        """The touches of ``position`` as objects (none for a position never added)."""
        if not 0 <= position < len(self):
            return []
        names = self._names
        out = []
        for i in range(self._starts[position], self._starts[position + 1]):
            label = self._labels[i]
            out.append(
                Touch(
                    names[label >> 33],
                    _EPOCH + self._at[i] * _MICROSECOND,
                    self._ids[i],
                    bool(label >> 32 & 1),
                    names[label & 0xFFFFFFFF],
                )
            )
        return out

    def channels(self, position: int) -> list[str]:
        """The channels of ``position``'s touches, in order: a path for the data-driven models."""
        if not 0 <= position < len(self):
            return []
        names = self._names
        return [names[self._labels[i] >> 33] for i in range(self._starts[position], self._starts[position + 1])]

    def _code(self, name: str) -> int:
        code = self._code_of.get(name)
        if code is None:
            code = self._code_of[name] = len(self._names)
            self._names.append(name)
        return code
