"""HubSpot's error bodies, in one place so every endpoint fails the same way the real API does.

Top-level errors follow the spec's ``Error`` (status, message, correlationId, category and,
where useful, context); entries of a 207's ``errors[]`` follow ``StandardError``, whose
``context.ids`` is how clients learn which records failed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from closedloop.sandbox.server import Response


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_response(
    status: int,
    message: str,
    category: str,
    *,
    context: dict[str, list[str]] | None = None,
    sub_category: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    }
    if context:
        body["context"] = context
    if sub_category:
        body["subCategory"] = sub_category
    return Response(status, body, dict(headers or {}))


def validation_error(message: str, **context: list[str]) -> Response:
    return error_response(400, message, "VALIDATION_ERROR", context=context or None)


def not_found(message: str, **context: list[str]) -> Response:
    return error_response(404, message, "OBJECT_NOT_FOUND", context=context or None)


def batch_error(
    category: str,
    message: str,
    ids: list[str],
    *,
    sub_category: str | None = None,
    context_key: str = "ids",
) -> dict[str, Any]:
    """One entry of a 207's ``errors[]``; ``context.ids`` names the records it is about."""
    entry: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": {context_key: list(ids)},
        "errors": [],
        "links": {},
    }
    if sub_category:
        entry["subCategory"] = sub_category
    return entry


def invalid_property_values(problems: list[dict[str, Any]]) -> str:
    """HubSpot embeds the per-property findings as a JSON list inside the message text."""
    return "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))


def property_problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }
