"""sObject Collections (``/composite/sobjects``): up to 200 records a call, one SaveResult each, in order.

The answer is 200 even when records fail; each failure carries ``statusCode`` (not
``errorCode``).  With ``allOrNone: true`` one failure rolls everything back and the records
that would have succeeded report ALL_OR_NONE_OPERATION_ROLLED_BACK.  Only a malformed request
(no records, more than 200, not JSON) is a 400 with the usual error array.
"""

from __future__ import annotations

from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError, record_error
from closedloop.sandbox.salesforce.ids import to_18
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.values import from_json
from closedloop.sandbox.salesforce.wire import DATA, Route, both, json_object, version
from closedloop.sandbox.salesforce.writes import RecordFailure, prepare_create, prepare_update
from closedloop.sandbox.server import Request, Response

MAX_RECORDS = 200
ROLLED_BACK = ("ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "Record rolled back because not all records were valid and the request was using AllOrNone header")

Outcome = tuple[str | None, dict[str, Any] | None, RecordFailure | None]  # (id, values, failure)


class Collections:
    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        base = f"{DATA}/composite/sobjects"
        return [
            *both("PATCH", base, lambda r, p: self.save(r, p, update=True)),
            *both("POST", base, lambda r, p: self.save(r, p, update=False)),
            *both("DELETE", base, self.delete),
        ]

    def _records(self, request: Request) -> tuple[list[Any], bool]:
        body = json_object(request)
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise SalesforceError(400, "INVALID_FIELD", "No records found in the request body", ["records"])
        if len(records) > MAX_RECORDS:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 "
                                  "records into this call")
        return records, bool(body.get("allOrNone", False))

    def save(self, request: Request, params: dict[str, str], *, update: bool) -> Response:
        version(params)
        records, all_or_none = self._records(request)
        with self.state.lock:
            outcomes = [self._prepare(record, update=update) for record in records]
            failed = any(failure is not None for _, _, failure in outcomes)
            results: list[dict[str, Any]] = []
            for (record_id, values, failure), record in zip(outcomes, records, strict=True):
                sobject = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
                if failure is not None:
                    results.append(_failed(record_id, [record_error(failure.code, failure.message, failure.fields)]))
                elif all_or_none and failed:
                    results.append(_failed(record_id, [record_error(*ROLLED_BACK)]))
                elif update:
                    assert record_id is not None and values is not None and sobject is not None
                    self.state.update(self.state.object_def(sobject).name, record_id, values)  # type: ignore[union-attr]
                    results.append({"id": record_id, "success": True, "errors": []})
                else:
                    obj = self.state.object_def(str(sobject))
                    assert obj is not None and values is not None
                    row = self.state.insert(obj.name, values)
                    results.append({"id": row["Id"], "success": True, "errors": []})
        return Response(200, results)

    def _prepare(self, record: Any, *, update: bool) -> Outcome:
        if not isinstance(record, dict):
            return None, None, RecordFailure("JSON_PARSER_ERROR", "each record must be a JSON object")
        raw_id = record.get("id", record.get("Id"))
        record_id = to_18(raw_id) if isinstance(raw_id, str) else None
        sobject = record.get("attributes", {}).get("type") if isinstance(record.get("attributes"), dict) else None
        obj = self.state.object_def(str(sobject)) if sobject else None
        if obj is None:
            code = "INVALID_TYPE" if sobject else "INVALID_FIELD"
            return record_id, None, RecordFailure(code, f"sObject type '{sobject}' is not supported." if sobject
                                                  else "No SObject Type defined in attributes")
        try:
            if update:
                record_id, values = prepare_update(self.state, obj, raw_id, record, from_json)
            else:
                if raw_id:
                    raise RecordFailure("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                values = prepare_create(self.state, obj, record, from_json)
        except RecordFailure as failure:
            return record_id, None, failure
        return record_id, values, None

    def delete(self, request: Request, params: dict[str, str]) -> Response:
        version(params)
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if not ids or len(ids) > MAX_RECORDS:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT" if ids else "MALFORMED_ID", "give 1 to 200 ids in ids=")
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        with self.state.lock:
            found = []
            for raw in ids:
                sobject = self.state.sobject_of(raw)
                row = self.state.get(sobject, raw) if sobject else None
                found.append((to_18(raw), sobject if row is not None else None))
            failed = any(sobject is None for _, sobject in found)
            results = []
            for record_id, sobject in found:
                if sobject is None:
                    results.append(_failed(record_id, [record_error("ENTITY_IS_DELETED", "entity is deleted")]))
                elif all_or_none and failed:
                    results.append(_failed(record_id, [record_error(*ROLLED_BACK)]))
                else:
                    self.state.delete(sobject, record_id)
                    results.append({"id": record_id, "success": True, "errors": []})
        return Response(200, results)


def _failed(record_id: str | None, errors: list[dict[str, object]]) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "errors": errors}
    if record_id is not None:
        out["id"] = record_id
    return out
