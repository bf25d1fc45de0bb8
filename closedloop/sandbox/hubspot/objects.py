"""GET /crm/v3/objects/{type} and /{type}/{id}: list paging and single reads.

List paging walks ids in ascending order and hands out the next id as the ``after`` cursor, so a
client that follows ``paging.next.after`` sees each object exactly once.  Asking for history
lowers the page size limit to 50, as HubSpot does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from closedloop.sandbox.hubspot.errors import not_found, validation_error
from closedloop.sandbox.hubspot.state import HubSpotState, StoredObject, canonical_object_type
from closedloop.sandbox.hubspot.values import format_instant
from closedloop.sandbox.hubspot.wire import (
    BadRequest,
    int_argument,
    next_page,
    object_type_of,
    read_json,
    render,
)
from closedloop.sandbox.server import Handler, Request, Response

MAX_PAGE = 100
MAX_PAGE_WITH_HISTORY = 50
DEFAULT_PAGE = 10
ASSOCIATION_TYPE_NAMES = {
    ("contacts", "deals"): "contact_to_deal",
    ("deals", "contacts"): "deal_to_contact",
}


class ObjectReads:
    """Reads, and the removals a portal's users make: archive, GDPR delete, merge."""

    def __init__(self, state: HubSpotState, now: Callable[[], datetime] | None = None) -> None:
        self.state = state
        self.now = now or (lambda: datetime.now(UTC))

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/crm/v3/objects/{objectType}", self.list_page),
            ("GET", "/crm/v3/objects/{objectType}/{objectId}", self.get_one),
            ("DELETE", "/crm/v3/objects/{objectType}/{objectId}", self.archive_one),
            ("POST", "/crm/v3/objects/{objectType}/batch/archive", self.archive_batch),
            ("POST", "/crm/v3/objects/contacts/gdpr-delete", self.gdpr_delete),
            ("POST", "/crm/v3/objects/{objectType}/merge", self.merge),
        ]

    def archive_one(self, request: Request, params: dict[str, str]) -> Response:
        """204 whether or not the object existed, as HubSpot answers."""
        self.state.archive(object_type_of(params["objectType"]), params["objectId"], now=self.now())
        return Response(204, None)

    def archive_batch(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        inputs = read_json(request).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and i.get("id") for i in inputs):
            raise BadRequest(validation_error("inputs must be a list of {\"id\": ...}"))
        at = self.now()
        for item in inputs:
            self.state.archive(object_type, str(item["id"]), now=at)
        return Response(204, None)

    def gdpr_delete(self, request: Request, params: dict[str, str]) -> Response:
        body = read_json(request)
        object_id = body.get("objectId")
        if not isinstance(object_id, str) or not object_id:
            raise BadRequest(validation_error("objectId is required", objectId=[str(object_id)]))
        id_property = body.get("idProperty")
        found = self.state.gdpr_delete(object_id, id_property=id_property if isinstance(id_property, str) else None)
        if not found and id_property != "email":
            return not_found(f"Object not found. objectId are usually numeric. ({object_id})", id=[object_id])
        return Response(204, None)

    def merge(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        body = read_json(request)
        primary, merged = str(body.get("primaryObjectId") or ""), str(body.get("objectIdToMerge") or "")
        with self.state.lock:
            for wanted in (primary, merged):
                stored = self.state.get(object_type, wanted)
                if stored is None or stored.archived:
                    return not_found(f"Object not found. objectId are usually numeric. ({wanted})", id=[wanted])
            if primary == merged:
                raise BadRequest(validation_error("cannot merge an object into itself", id=[primary]))
            survivor = self.state.merge(object_type, primary, merged, now=self.now())
            return Response(200, render(self.state, object_type, survivor, None, always=False))

    def list_page(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        limit = int_argument(request.arg("limit"), "limit", DEFAULT_PAGE)
        with_history = request.args("propertiesWithHistory")
        cap = MAX_PAGE_WITH_HISTORY if with_history else MAX_PAGE
        if limit < 1 or limit > cap:
            raise BadRequest(
                validation_error(
                    f"limit must be between 1 and {cap}; got {limit}", limit=[str(limit)]
                )
            )
        after_raw = request.arg("after")
        after = None
        if after_raw:
            if not after_raw.isdigit():
                raise BadRequest(
                    validation_error(f"Invalid paging cursor: {after_raw!r}", after=[after_raw])
                )
            after = int(after_raw)
        archived = (request.arg("archived", "false") or "false").lower() == "true"
        properties = request.args("properties") or None
        associations = self._association_types(request)
        with self.state.lock:
            page, next_after = self.state.page(object_type, after, limit, archived)
            results = [
                self._render(object_type, stored, properties, with_history, associations)
                for stored in page
            ]
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            body["paging"] = next_page(request, str(next_after))
        return Response(200, body)

    def get_one(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        object_id = params["objectId"]
        id_property = request.arg("idProperty")
        with self.state.lock:
            stored = (
                self.state.find_unique(object_type, id_property, object_id)
                if id_property
                else self.state.get(object_type, object_id)
            )
            archived = (request.arg("archived", "false") or "false").lower() == "true"
            if stored is None or stored.archived != archived:
                return not_found(
                    f"Object not found. objectId are usually numeric. ({object_id})", id=[object_id]
                )
            body = self._render(
                object_type,
                stored,
                request.args("properties") or None,
                request.args("propertiesWithHistory"),
                self._association_types(request),
            )
        return Response(200, body)

    def _association_types(self, request: Request) -> list[str]:
        out: list[str] = []
        for raw in request.args("associations"):
            object_type = canonical_object_type(raw)
            if object_type is not None:  # unknown names are ignored, as documented
                out.append(object_type)
        return out

    def _render(
        self,
        object_type: str,
        stored: StoredObject,
        properties: list[str] | None,
        with_history: list[str],
        associations: list[str],
    ) -> dict[str, Any]:
        out = render(
            self.state, object_type, stored, properties, with_history=with_history, always=False
        )
        linked: dict[str, Any] = {}
        for to_type in associations:
            ids = self.state.associated_ids(object_type, stored.id, to_type)
            if ids:
                kind = ASSOCIATION_TYPE_NAMES.get((object_type, to_type), "association")
                linked[to_type] = {"results": [{"id": i, "type": kind} for i in ids]}
        if linked:
            out["associations"] = linked
        if stored.archived and stored.archived_at is not None:
            out["archivedAt"] = format_instant(stored.archived_at)
        return out
