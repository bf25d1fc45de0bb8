"""sObject resources: describe (global and per object), getDeleted/getUpdated, and single rows.

Describe lists only the fields the API user can see, so a custom field created through the
Tooling API appears here only once FieldPermissions grant it, as in a real org.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError, not_found
from closedloop.sandbox.salesforce.schema import FieldDef, ObjectDef
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.values import BadValue, from_json, parse_datetime, rest_value
from closedloop.sandbox.salesforce.wire import DATA, Route, both, created, json_object, version
from closedloop.sandbox.salesforce.writes import RecordFailure, prepare_create, prepare_update
from closedloop.sandbox.server import Request, Response

GET_DELETED_DAYS = 15


def object_summary(obj: ObjectDef, ver: str, *, tooling: bool = False) -> dict[str, Any]:
    base = f"/services/data/{ver}/{'tooling/' if tooling else ''}sobjects/{obj.name}"
    return {
        "name": obj.name, "label": obj.label, "labelPlural": obj.label + "s", "keyPrefix": obj.prefix,
        "custom": False, "queryable": True, "retrieveable": True, "searchable": not tooling,
        "createable": obj.createable, "updateable": obj.updateable, "deletable": obj.deletable,
        "replicateable": True,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def field_describe(fd: FieldDef) -> dict[str, Any]:
    return {
        "name": fd.name, "label": fd.label, "type": fd.type, "soapType": _soap_type(fd), "custom": fd.custom,
        "length": fd.length, "precision": fd.precision, "scale": fd.scale, "nillable": fd.nillable,
        "createable": fd.createable, "updateable": fd.updateable, "filterable": fd.type != "anyType",
        "sortable": fd.type != "anyType", "referenceTo": [fd.reference_to] if fd.reference_to else [],
        "relationshipName": fd.relationship, "idLookup": fd.name == "Id", "externalId": False,
        "calculated": False, "defaultedOnCreate": fd.type == "boolean", "picklistValues": [],
    }


def _soap_type(fd: FieldDef) -> str:
    return {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
            "date": "xsd:date", "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
            "int": "xsd:int", "anyType": "xsd:anyType"}.get(fd.type, "xsd:string")


class SObjects:
    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        base = f"{DATA}/sobjects"
        return [
            *both("GET", base, self.describe_global),
            *both("GET", f"{base}/{{sobject}}/describe", self.describe),
            *both("GET", f"{base}/{{sobject}}/deleted", self.deleted),
            *both("GET", f"{base}/{{sobject}}/updated", self.updated),
            *both("GET", f"{base}/{{sobject}}", self.basic_info),
            *both("POST", f"{base}/{{sobject}}", self.create),
            ("GET", f"{base}/{{sobject}}/{{id}}", self.get_row),
            ("PATCH", f"{base}/{{sobject}}/{{id}}", self.update_row),
            ("DELETE", f"{base}/{{sobject}}/{{id}}", self.delete_row),
        ]

    def _object(self, params: dict[str, str]) -> ObjectDef:
        obj = self.state.object_def(params["sobject"])
        if obj is None:
            raise not_found(f"The requested resource does not exist: sObject type '{params['sobject']}'")
        return obj

    def describe_global(self, request: Request, params: dict[str, str]) -> Response:
        ver = version(params)
        objects = [object_summary(o, ver) for o in self.state.catalog.values() if not o.tooling]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    def basic_info(self, request: Request, params: dict[str, str]) -> Response:
        return Response(200, {"objectDescribe": object_summary(self._object(params), version(params)),
                              "recentItems": []})

    def describe(self, request: Request, params: dict[str, str]) -> Response:
        ver, obj = version(params), self._object(params)
        with self.state.lock:
            fields = [field_describe(f) for f in obj.fields.values() if self.state.visible(obj, f)]
        return Response(200, {**object_summary(obj, ver), "fields": fields, "childRelationships": [],
                              "recordTypeInfos": []})

    def _window(self, request: Request) -> tuple[datetime, datetime]:
        try:
            start = parse_datetime(request.arg("start") or "")
            end = parse_datetime(request.arg("end") or "")
        except (BadValue, ValueError):
            raise SalesforceError(400, "INVALID_DATE_FORMAT", "start and end must be ISO 8601 date-times "
                                  "with a time zone, e.g. 2024-01-01T00:00:00+00:00") from None
        if end < start:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        return start, end

    def deleted(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        start, end = self._window(request)
        earliest = self.state.now() - timedelta(days=GET_DELETED_DAYS)
        if start < earliest:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago")
        with self.state.lock:
            found = [{"id": row["Id"], "deletedDate": rest_value(self.state.deleted_at[row["Id"]])}
                     for row in self.state.all_rows(obj.name, include_deleted=True)
                     if row["IsDeleted"] and start <= self.state.deleted_at.get(row["Id"], start) <= end]
        return Response(200, {"deletedRecords": found, "earliestDateAvailable": rest_value(earliest),
                              "latestDateCovered": rest_value(min(end, self.state.now()))})

    def updated(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        start, end = self._window(request)
        with self.state.lock:
            ids = [row["Id"] for row in self.state.all_rows(obj.name)
                   if row.get("SystemModstamp") is not None and start <= row["SystemModstamp"] <= end]
        return Response(200, {"ids": ids, "latestDateCovered": rest_value(min(end, self.state.now()))})

    def create(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        with self.state.lock:
            try:
                values = prepare_create(self.state, obj, json_object(request), from_json)
            except RecordFailure as exc:
                raise SalesforceError(400, exc.code, exc.message, exc.fields) from None
            return created(self.state.insert(obj.name, values)["Id"])

    def get_row(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        wanted = [f for f in (request.arg("fields") or "").split(",") if f]
        with self.state.lock:
            row = self.state.get(obj.name, params["id"])
            if row is None:
                raise not_found()
            fields = [obj.field(name) for name in wanted] if wanted else list(obj.fields.values())
            url = f"/services/data/{version(params)}/sobjects/{obj.name}/{row['Id']}"
            out: dict[str, Any] = {"attributes": {"type": obj.name, "url": url}}
            for fd in fields:
                if fd is None or not self.state.visible(obj, fd):
                    raise SalesforceError(400, "INVALID_FIELD", f"No such column on entity '{obj.name}'")
                out[fd.name] = rest_value(row.get(fd.name))
        return Response(200, out)

    def update_row(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        with self.state.lock:
            try:
                record_id, values = prepare_update(self.state, obj, params["id"], json_object(request), from_json)
            except RecordFailure as exc:
                status = 404 if exc.code == "INVALID_CROSS_REFERENCE_KEY" else 400
                raise SalesforceError(status, exc.code, exc.message, exc.fields) from None
            self.state.update(obj.name, record_id, values)
        return Response(204)

    def delete_row(self, request: Request, params: dict[str, str]) -> Response:
        obj = self._object(params)
        with self.state.lock:
            row = self.state.get(obj.name, params["id"])
            if row is None or not obj.deletable:
                raise not_found()
            self.state.delete(obj.name, row["Id"])
        return Response(204)
