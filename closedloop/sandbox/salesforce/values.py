"""Field values on the wire: JSON for REST, text for Bulk 2.0 CSV, and back.

Stored values are Python values (str, float, bool, date, aware datetime, None).  REST writes
datetimes as ``2024-01-01T09:30:00.000+0000`` and Bulk 2.0 CSV as ``2024-01-01T09:30:00.000Z``,
as Salesforce does; inbound values are checked against the field's type, so a bad value is a
per-record error, not a silently stored string.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from closedloop.sandbox.salesforce.schema import FieldDef


class BadValue(ValueError):
    """A value that does not fit its field (the record fails, the rest of the batch goes on)."""


_PLAIN = (str, bool, float, int, type(None))


def rest_value(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "+0000"
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("Z", "+00:00")
    if len(cleaned) >= 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]  # +0000 -> +00:00
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        raise BadValue(f"'{text}' has no time zone")
    return moment.astimezone(UTC)


def from_json(fd: FieldDef, value: Any) -> Any:
    """A value a client sent in JSON, as stored; raises BadValue."""
    if value is None:
        return None
    kind = fd.kind
    if kind == "string":
        if not isinstance(value, str):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadValue(f"{fd.name}: value not of required type: {value}")
            value = str(value)
        if fd.length and len(value) > fd.length:
            raise BadValue(f"{fd.name}: data value too large: {value[:40]} (max length={fd.length})")
        return value
    if kind == "number":
        if isinstance(value, bool):
            raise BadValue(f"{fd.name}: value not of required type: {value}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BadValue(f"{fd.name}: value not of required type: {value}") from None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadValue(f"{fd.name}: value not of required type: {value}")
    try:
        if kind == "date":
            return date.fromisoformat(str(value)[:10])
        if kind == "datetime":
            return parse_datetime(str(value))
    except ValueError:
        raise BadValue(f"{fd.name}: value not of required type: {value}") from None
    return value


def from_csv(fd: FieldDef, text: str) -> Any:
    """A Bulk 2.0 CSV cell as stored (``#N/A`` is null; an empty cell is handled by the caller)."""
    return None if text == "#N/A" else from_json(fd, text)
