"""What the quarantine keeps of a refused record: enough to diagnose, nothing about the person.

A refused record is often refused *because* of a value (a malformed date, an overlong field),
and its other properties hold the person's email, name and client ids.  Unless the config opts
in (``privacy.quarantine_raw``), the quarantine keeps the record's ids and, per field, only its
type and length; the reason loses its quoted values and anything that looks like an address.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+\.[A-Za-z]{2,}")
ID_KEYS = {"id", "Id", "objectId", "hs_object_id", "record_key", "crm_id"}
ID_MAX = 64  # an id is short; anything longer under an id key is not kept


QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def redact_reason(reason: str) -> str:
    """The reason with every quoted value (parsers quote the offending value with ``!r``) and
    every address replaced by its kind and length: ``'last tuesday'`` -> ``<text, 12 chars>``."""
    reason = QUOTED.sub(lambda found: f"<text, {len(found.group(0)) - 2} chars>", reason)
    return EMAIL.sub("<email>", reason)


def redact_payload(payload: Any) -> dict[str, Any]:
    """``{"ids": {...}, "fields": {name: {"type": ..., "length": ...}}}`` of any payload."""
    ids: dict[str, str] = {}
    fields: dict[str, dict[str, Any]] = {}
    _walk(payload, "", ids, fields)
    return {"ids": ids, "fields": fields}


def _walk(value: Any, path: str, ids: dict[str, str], fields: dict[str, dict[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            name = f"{path}.{key}" if path else str(key)
            text = str(child)
            if str(key) in ID_KEYS and isinstance(child, str | int) and len(text) <= ID_MAX and not EMAIL.search(text):
                ids[name] = text
                continue
            _walk(child, name, ids, fields)
        return
    if isinstance(value, list):
        fields[path or "(value)"] = {"type": "list", "length": len(value)}
        return
    fields[path or "(value)"] = {
        "type": type(value).__name__,
        "length": len(value) if isinstance(value, str | bytes) else None,
    }
