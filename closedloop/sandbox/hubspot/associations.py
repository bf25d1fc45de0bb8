"""POST /crm/v4/associations/{from}/{to}/batch/read: which contacts a deal has (and back).

Answers follow ``BatchResponsePublicAssociationMultiWithLabel``; ids that do not exist come back
as 207 errors under ``context.ids``, ids with no associations under ``context.fromObjectId`` (the
live API adds a string ``subCategory`` NO_ASSOCIATIONS_FOUND, which the spec types as an object,
so it is left out).  Each object's list is paged at 500 with a per-input ``after``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from closedloop.sandbox.hubspot.errors import batch_error, validation_error
from closedloop.sandbox.hubspot.state import ASSOCIATION_TYPE_IDS, HubSpotState
from closedloop.sandbox.hubspot.values import format_instant
from closedloop.sandbox.hubspot.wire import BadRequest, object_type_of, read_json
from closedloop.sandbox.server import Handler, Request, Response

MAX_INPUTS = 1000
PER_OBJECT_PAGE = 500
_SINGULAR = {"contacts": "contact", "deals": "deal"}


class Associations:
    def __init__(self, state: HubSpotState, now: Callable[[], datetime]) -> None:
        self.state = state
        self.now = now

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            (
                "POST",
                "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
                self.batch_read,
            )
        ]

    def batch_read(self, request: Request, params: dict[str, str]) -> Response:
        from_type = object_type_of(params["fromObjectType"])
        to_type = object_type_of(params["toObjectType"])
        inputs = read_json(request).get("inputs")
        if not isinstance(inputs, list) or not all(
            isinstance(i, dict) and "id" in i for i in inputs
        ):
            raise BadRequest(validation_error("Invalid input JSON: inputs must be a list of {id}"))
        if len(inputs) > MAX_INPUTS:
            raise BadRequest(
                validation_error(
                    f"Batch input limit exceeded: at most {MAX_INPUTS} inputs, {len(inputs)} given"
                )
            )
        started = self.now()
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type), 1)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        unlinked: list[str] = []
        with self.state.lock:
            for item in inputs:
                from_id = str(item["id"])
                if self.state.get(from_type, from_id) is None:
                    missing.append(from_id)
                    continue
                linked = self.state.associated_ids(from_type, from_id, to_type)
                if not linked:
                    unlinked.append(from_id)
                    continue
                start = int(item["after"]) if str(item.get("after") or "").isdigit() else 0
                chunk = linked[start : start + PER_OBJECT_PAGE]
                result: dict[str, Any] = {
                    "from": {"id": from_id},
                    "to": [
                        {
                            "toObjectId": int(to_id),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": type_id},
                                *_labelled(self.state.association_labels, from_type, from_id, to_id),
                            ],
                        }
                        for to_id in chunk
                    ],
                }
                if start + PER_OBJECT_PAGE < len(linked):
                    result["paging"] = {"next": {"after": str(start + PER_OBJECT_PAGE)}}
                results.append(result)
        errors: list[dict[str, Any]] = []
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not find some {_SINGULAR[from_type]} objects: "
                    "they may be deleted or not exist.",
                    missing,
                )
            )
        for from_id in unlinked:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"No {_SINGULAR[to_type]} is associated with {_SINGULAR[from_type]} {from_id}.",
                    [from_id],
                    context_key="fromObjectId",
                )
            )
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": format_instant(started),
            "completedAt": format_instant(self.now()),
        }
        if not errors:
            return Response(200, body)
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body)


# The sandbox's one user-defined deal -> contact association type.
LABELLED_TYPE_ID = 1001


def _labelled(labels: dict[tuple[str, str], str], from_type: str, from_id: str, to_id: str) -> list[dict[str, Any]]:
    """A user-defined label on a deal -> contact association (HubSpot: category USER_DEFINED)."""
    key = (from_id, to_id) if from_type == "deals" else (to_id, from_id)
    label = labels.get(key)
    return [{"category": "USER_DEFINED", "typeId": LABELLED_TYPE_ID, "label": label}] if label else []
