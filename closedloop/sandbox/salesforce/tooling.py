"""Tooling API ``CustomField``: create a field, read it back; Tooling query runs through query.py.

A created field exists at once (Tooling query and GET find it) but the API user cannot see or
write it until a FieldPermissions row on a permission set assigned to the user grants it: that
is the step a real admin forgets, and the one ``closedloop crm check`` names.
"""

from __future__ import annotations

import re
from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError, not_found
from closedloop.sandbox.salesforce.schema import FieldDef
from closedloop.sandbox.salesforce.sobjects import object_summary
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.values import rest_value
from closedloop.sandbox.salesforce.wire import DATA, Route, both, json_object, version
from closedloop.sandbox.server import Request, Response

_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*__c$")
_TYPES = {"Text": "string", "Number": "double", "Currency": "currency", "Percent": "percent", "Checkbox": "boolean",
          "Date": "date", "DateTime": "datetime", "LongTextArea": "textarea", "Email": "email", "Url": "url"}


class Tooling:
    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        base = f"{DATA}/tooling/sobjects"
        return [
            *both("GET", base, self.describe_global),
            *both("POST", f"{base}/CustomField", self.create_field),
            ("GET", f"{base}/CustomField/{{id}}", self.get_field),
        ]

    def describe_global(self, request: Request, params: dict[str, str]) -> Response:
        ver = version(params)
        objects = [object_summary(o, ver, tooling=True) for o in self.state.catalog.values() if o.tooling]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    def create_field(self, request: Request, params: dict[str, str]) -> Response:
        version(params)
        body = json_object(request)
        full_name = str(body.get("FullName") or "")
        metadata = body.get("Metadata")
        sobject, _, name = full_name.partition(".")
        if not isinstance(metadata, dict):
            raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]",
                                  ["Metadata"])
        with self.state.lock:
            obj = self.state.object_def(sobject)
            if obj is None or obj.name in ("User", "PermissionSet", "PermissionSetAssignment", "FieldPermissions"):
                raise SalesforceError(400, "INVALID_TYPE", f"Cannot create a custom field on '{sobject}'", ["FullName"])
            if not _NAME.match(name):
                raise SalesforceError(400, "INVALID_FIELD", f"The API name '{name}' is not valid: it must begin "
                                      "with a letter, use letters, digits and single underscores, and end with __c",
                                      ["FullName"])
            if obj.field(name) is not None:
                raise SalesforceError(400, "DUPLICATE_DEVELOPER_NAME", "This field name is already in use on "
                                      f"{obj.name}: {name}", ["FullName"])
            fd = _field(name, metadata)
            row = self.state.add_custom_field(obj, fd, metadata)
        return Response(201, {"id": row["Id"], "success": True, "errors": [], "warnings": [], "infos": []})

    def get_field(self, request: Request, params: dict[str, str]) -> Response:
        ver = version(params)
        row = self.state.get("CustomField", params["id"])
        if row is None:
            raise not_found()
        out: dict[str, Any] = {"attributes": {"type": "CustomField",
                                              "url": f"/services/data/{ver}/tooling/sobjects/CustomField/{row['Id']}"}}
        out.update({k: rest_value(v) for k, v in row.items()})
        return Response(200, out)


def _field(name: str, metadata: dict[str, Any]) -> FieldDef:
    kind = metadata.get("type")
    label = metadata.get("label")
    if kind not in _TYPES:
        raise SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", f"Unsupported field type: {kind}", ["type"])
    if not isinstance(label, str) or not label:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [label]", ["label"])
    fd = FieldDef(name, _TYPES[kind], label, updateable=kind != "Formula", createable=True, custom=True,
                  needs_grant=True)
    if kind in ("Text", "Email", "Url", "LongTextArea"):
        length = metadata.get("length", 255 if kind != "Text" else None)
        limit = 131_072 if kind == "LongTextArea" else 255
        if not isinstance(length, int) or not 1 <= length <= limit:
            raise SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", f"Length must be between 1 and {limit}", ["length"])
        fd.length = length
    if kind in ("Number", "Currency", "Percent"):
        precision, scale = metadata.get("precision", 18), metadata.get("scale", 0)
        if not isinstance(precision, int) or not isinstance(scale, int) or not 0 <= scale <= precision <= 18:
            raise SalesforceError(400, "FIELD_INTEGRITY_EXCEPTION", "precision must be 1..18 and scale 0..precision",
                                  ["precision"])
        fd.precision, fd.scale = precision, scale
    return fd
