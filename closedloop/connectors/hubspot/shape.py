"""What a HubSpot object must look like before a parser reads it; what does not is quarantined.

HubSpot answers ``{"id": "123", "properties": {"name": "text" | null, ...}, ...}``.  The rules,
applied the same way to contacts, deals, stage history and associations:

- a record that is not an object, or whose ``id`` is missing, empty, not a string or number, or
  longer than an id column (64), is quarantined under the key ``(no id)`` or its id;
- ``properties`` must be an object; a property value must be text or null (numbers and booleans
  are read as their text, as HubSpot itself sends them); a list or object as a value quarantines;
- a timestamp that does not parse quarantines; one without a time zone is read as UTC (what
  HubSpot documents its timestamps in) and counted as a ``naive_timestamp`` warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from closedloop.errors import SkippableRecordError

# (kind, example): counted in the run record's warnings, a few examples kept.
Warn = Callable[[str, str], None]
NO_ID = "(no id)"
ID_MAX = 64  # the id columns' size (contacts.id, deals.id)


def no_warn(_kind: str, _example: str) -> None:
    return None


def object_key(obj: Any, *, field: str = "id") -> str:
    """The record's id as text, or SkippableRecordError naming what is wrong with it."""
    if not isinstance(obj, Mapping):
        raise SkippableRecordError(f"the record is {_kind(obj)}, not an object", record_key=NO_ID)
    raw = obj.get(field)
    if raw is None:
        raise SkippableRecordError(f"the record has no {field}", record_key=NO_ID)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise SkippableRecordError(f"{field} is {_kind(raw)}, not text", record_key=NO_ID)
    key = str(raw).strip()
    if not key:
        raise SkippableRecordError(f"{field} is empty", record_key=NO_ID)
    if len(key) > ID_MAX:
        raise SkippableRecordError(f"{field} is {len(key)} characters long (at most {ID_MAX})", record_key=key[:ID_MAX])
    return key


def properties(obj: Mapping[str, Any], key: str, *, field: str = "properties") -> dict[str, str | None]:
    """The record's properties, every value text or None; anything else quarantines the record."""
    raw = obj.get(field)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SkippableRecordError(f"{field} is {_kind(raw)}, not an object", record_key=key)
    out: dict[str, str | None] = {}
    for name, value in raw.items():
        if value is None or isinstance(value, str):
            out[str(name)] = value
        elif isinstance(value, bool):
            out[str(name)] = "true" if value else "false"
        elif isinstance(value, int | float):
            out[str(name)] = str(value)
        else:
            raise SkippableRecordError(f"property {name} is {_kind(value)}, not a value", record_key=key)
    return out


def timestamp(value: Any, *, name: str, key: str, warn: Warn = no_warn) -> datetime | None:
    """ISO-8601 or epoch milliseconds as an aware UTC datetime; None when there is no value."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            warn("naive_timestamp", f"{key} {name}={text[:40]}")
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise SkippableRecordError(f"{name} is not a timestamp: {text[:60]!r}", record_key=key) from None


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"
