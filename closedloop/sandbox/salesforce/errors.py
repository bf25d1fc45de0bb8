"""Salesforce's error answers: always a JSON array of ``{"message", "errorCode"[, "fields"]}``.

simple-salesforce reads ``body[0]["errorCode"]`` on a 401 to decide whether to renew the
session, so a body in any other shape breaks the client; every refusal goes through here.
"""

from __future__ import annotations

from closedloop.sandbox.server import Response

SESSION_EXPIRED = "Session expired or invalid"
LIMIT_EXCEEDED = "TotalRequests Limit exceeded."


class SalesforceError(Exception):
    """Raised by a handler; the app turns it into the JSON-array answer."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.fields)


def error_response(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    entry: dict[str, object] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return Response(status, [entry])


def not_found(message: str = "The requested resource does not exist") -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", message)


def bad_json(message: str = "The request body is not valid JSON.") -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", message)


def record_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, object]:
    """One per-record error of a SaveResult (collections use ``statusCode``, not ``errorCode``)."""
    return {"statusCode": code, "message": message, "fields": list(fields or [])}
