"""``GET /v1beta/properties/{id}/metadata``: the dimensions and metrics a property offers.

What ``closedloop doctor`` reads to tell whether the property registers the client-id custom
dimension.  The answer lists what the emulator can report on (the session dimensions, the
property's client-id dimension, the metrics), in the Data API's ``Metadata`` shape; property
``0`` lists the universal ones only, as on GA4.  A property the caller cannot read is 403.
"""

from __future__ import annotations

from typing import Any

from closedloop.sandbox.ga4_report import METRIC_TYPES, SESSION_DIMENSIONS
from closedloop.sandbox.ga4_state import GA4State
from closedloop.sandbox.server import Request, Response

PROPERTY_ID_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/property-id"


def metadata_handler(state: GA4State) -> Any:
    """The route handler answering for ``state``'s property."""

    def answer(_request: Request, params: dict[str, str]) -> Response:
        return metadata_response(state, params["propertyId"])

    return answer


def metadata_response(state: GA4State, property_id: str) -> Response:
    if not property_id.isdigit():
        message = f"Invalid property ID: {property_id}. A numeric Property ID is required."
        return _error(400, "INVALID_ARGUMENT", message)
    if property_id not in (state.property_id, "0"):
        return _error(
            403,
            "PERMISSION_DENIED",
            "User does not have sufficient permissions for this property. To learn more about Property ID, "
            f"see {PROPERTY_ID_URL}.",
        )
    dimensions = [_dimension(name, custom=False) for name in SESSION_DIMENSIONS]
    if property_id != "0":
        dimensions.append(_dimension(state.client_id_dimension, custom=True))
    metrics = [
        {"apiName": name, "uiName": name, "type": kind, "category": "Session"} for name, kind in METRIC_TYPES.items()
    ]
    return Response(
        200, {"name": f"properties/{property_id}/metadata", "dimensions": dimensions, "metrics": metrics}
    )


def _dimension(name: str, *, custom: bool) -> dict[str, Any]:
    short = name.split(":", 1)[-1]
    entry: dict[str, Any] = {"apiName": name, "uiName": short, "category": "Custom" if custom else "Session"}
    if custom:
        entry["customDefinition"] = True
    return entry


def _error(code: int, status: str, message: str) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": status}})
