"""Small helpers every endpoint module shares: routes, JSON bodies, the version segment, CSV answers."""

from __future__ import annotations

import re
from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError, bad_json, not_found
from closedloop.sandbox.server import Handler, Request, Response

Route = tuple[str, str, Handler]
DATA = "/services/data/{version}"
_VERSION = re.compile(r"^v\d{2,3}\.\d$")


def both(method: str, template: str, handler: Handler) -> list[Route]:
    """Salesforce answers a resource with and without its trailing slash (simple-salesforce sends both)."""
    return [(method, template, handler), (method, template + "/", handler)]


def version(params: dict[str, str]) -> str:
    value = params.get("version", "")
    if not _VERSION.match(value):
        raise not_found()
    return value


def json_body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise bad_json() from None


def json_object(request: Request) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of object from the request body")
    return body


def csv_response(text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(200, text.encode(), dict(headers or {}), content_type="text/csv")


def created(record_id: str) -> Response:
    return Response(201, {"id": record_id, "success": True, "errors": []})
