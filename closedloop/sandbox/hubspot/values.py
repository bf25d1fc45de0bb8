"""How HubSpot reads, checks and compares property values: everything on the wire is a string.

The CRM stores typed properties but speaks strings; writes are checked against the property's
``type`` (a bad value fails that record, not the batch) and search compares by type, so
``"9" < "10"`` for numbers and epoch millis meet ISO instants for datetimes.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from typing import Any


class InvalidValue(ValueError):
    """A value that does not fit its property; ``code`` is HubSpot's error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def format_instant(moment: datetime) -> str:
    """HubSpot v3 renders instants as UTC ISO-8601 with milliseconds and a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the sandbox keeps every instant in UTC")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_instant(raw: str) -> datetime | None:
    """Epoch millis (what most clients send) or ISO-8601; ``None`` when it is neither."""
    text = raw.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        try:
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        except ValueError:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _parse_number(raw: str) -> float | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def normalise_value(definition: dict[str, Any], raw: object) -> str | None:
    """The stored form of a written value, or InvalidValue; an empty string clears the value."""
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw).lower() if isinstance(raw, bool) else str(raw)
    if text == "":
        return None
    kind = definition.get("type", "string")
    name = definition.get("name", "?")
    if kind == "number":
        if _parse_number(text) is None:
            raise InvalidValue(
                "INVALID_FLOAT", f'{text!r} was not a valid number for property "{name}".'
            )
        return text.strip()
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise InvalidValue(
                "INVALID_BOOLEAN", f'{text!r} is not a valid boolean for property "{name}".'
            )
        return text.lower()
    if kind == "datetime":
        moment = parse_instant(text)
        if moment is None:
            raise InvalidValue(
                "INVALID_DATE", f'{text!r} is not a valid datetime for property "{name}".'
            )
        return format_instant(moment)
    if kind == "date":
        moment = parse_instant(text)
        if moment is None or moment.time() != time():
            raise InvalidValue(
                "INVALID_DATE",
                f'{text!r} is not a valid date for property "{name}": it must be midnight UTC.',
            )
        return moment.date().isoformat()
    if kind == "enumeration":
        allowed = {option["value"] for option in definition.get("options") or []}
        if allowed:
            unknown = [part for part in text.split(";") if part not in allowed]
            if unknown:
                raise InvalidValue(
                    "INVALID_OPTION",
                    f'{unknown[0]!r} was not one of the allowed options for property "{name}".',
                )
    return text


def comparable(kind: str, value: str | None) -> float | str | None:
    """A key that orders values as HubSpot search does for the property's type."""
    if value is None or value == "":
        return None
    if kind == "number":
        return _parse_number(value)
    if kind in ("datetime", "date"):
        moment = parse_instant(value)
        return float(epoch_millis(moment)) if moment is not None else None
    return value.lower()
