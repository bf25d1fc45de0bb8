"""What every HubSpot handler shares: reading JSON bodies, naming object types, rendering objects.

The rendering follows ``SimplePublicObject``: properties as strings or null, ``createdAt`` and
``updatedAt`` as ISO instants, and ``propertiesWithHistory`` newest value first, as HubSpot
returns it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from closedloop.sandbox.hubspot.definitions import ALWAYS_RETURNED, DEFAULT_PROPERTIES
from closedloop.sandbox.hubspot.errors import error_response, validation_error
from closedloop.sandbox.hubspot.state import HubSpotState, StoredObject, canonical_object_type
from closedloop.sandbox.hubspot.values import format_instant
from closedloop.sandbox.server import Request, Response


class BadRequest(Exception):
    """Carries the error response a handler should send; keeps handlers linear."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.body)
        self.response = response


def read_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(validation_error(f"Invalid input JSON: {exc}")) from None
    if not isinstance(body, dict):
        raise BadRequest(validation_error("Invalid input JSON: expected an object"))
    return body


def object_type_of(raw: str) -> str:
    object_type = canonical_object_type(raw)
    if object_type is None:
        raise BadRequest(
            error_response(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")
        )
    return object_type


def string_list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(validation_error(f"Invalid input JSON: {name} must be a list of strings"))
    out: list[str] = []
    for item in value:
        out.extend(part for part in item.split(",") if part)
    return out


def int_argument(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(
            validation_error(f"Invalid value for {name}: {raw!r} is not an integer")
        ) from None


def render(
    state: HubSpotState,
    object_type: str,
    stored: StoredObject,
    properties: list[str] | None,
    *,
    with_history: Sequence[str] = (),
    always: bool = True,
) -> dict[str, Any]:
    """One object as the API shows it; undefined names are ignored as HubSpot does."""
    names = list(properties) if properties else list(DEFAULT_PROPERTIES[object_type])
    if always:
        names.extend(n for n in ALWAYS_RETURNED[object_type] if n not in names)
    rendered_properties: dict[str, str | None] = {}
    for name in names:
        if name in stored.properties or state.property_definition(object_type, name) is not None:
            rendered_properties[name] = stored.properties.get(name)
    out: dict[str, Any] = {
        "id": stored.id,
        "properties": rendered_properties,
        "createdAt": format_instant(stored.created_at),
        "updatedAt": format_instant(stored.updated_at),
        "archived": stored.archived,
    }
    if with_history:
        history: dict[str, list[dict[str, Any]]] = {}
        for name in with_history:
            if state.property_definition(object_type, name) is None:
                continue
            history[name] = [
                {
                    "value": entry.value,
                    "timestamp": format_instant(entry.at),
                    "sourceType": entry.source_type,
                }
                for entry in reversed(stored.history.get(name, []))
            ]
        out["propertiesWithHistory"] = history
    return out


def next_page(request: Request, after: str) -> dict[str, Any]:
    """``paging.next`` with the cursor and a link that repeats the query with it."""
    query = {k: v for k, v in request.query.items() if k != "after"}
    query["after"] = [after]
    host = request.headers.get("host", "127.0.0.1")
    link = f"http://{host}{request.path}?{urlencode(query, doseq=True)}"
    return {"next": {"after": after, "link": link}}
