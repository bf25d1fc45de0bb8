"""Checking one record's write the way Salesforce does, shared by REST, collections and Bulk 2.0.

``prepare_update`` / ``prepare_create`` turn what a client sent into stored values or raise
``RecordFailure`` with Salesforce's status code: an unknown or ungranted field is INVALID_FIELD,
a read-only one INVALID_FIELD_FOR_INSERT_UPDATE, a bad value INVALID_TYPE_ON_FIELD_IN_RECORD or
STRING_TOO_LONG, a converted Lead CANNOT_UPDATE_CONVERTED_LEAD.  Injected failures (a
validation rule, a locked row) are taken here too, so every write path honours them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from closedloop.sandbox.salesforce.ids import is_id, to_18
from closedloop.sandbox.salesforce.schema import FieldDef, ObjectDef
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.values import BadValue

Convert = Callable[[FieldDef, Any], Any]
_SKIP = frozenset({"attributes", "id"})


class RecordFailure(Exception):
    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = list(fields or [])


def _values(state: SalesforceState, obj: ObjectDef, raw: dict[str, Any], convert: Convert,
            *, creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name.lower() in _SKIP:
            continue
        fd = obj.field(name)
        if fd is None or not state.visible(obj, fd):
            raise RecordFailure("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", [name])
        allowed = fd.createable if creating else fd.updateable
        if not allowed or (fd.needs_grant and not state.editable(obj, fd)):
            raise RecordFailure("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {fd.name}. "
                                "Please check the security settings of this field and verify that it is read/write "
                                "for your profile or permission set.", [fd.name])
        try:
            out[fd.name] = convert(fd, value)
        except BadValue as exc:
            code = "STRING_TOO_LONG" if "too large" in str(exc) else "INVALID_TYPE_ON_FIELD_IN_RECORD"
            raise RecordFailure(code, str(exc), [fd.name]) from None
    return out


def prepare_update(state: SalesforceState, obj: ObjectDef, record_id: Any, raw: dict[str, Any],
                   convert: Convert) -> tuple[str, dict[str, Any]]:
    if not record_id:
        raise RecordFailure("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
    if not isinstance(record_id, str) or not is_id(record_id):
        raise RecordFailure("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ["Id"])
    full = to_18(record_id)
    row = state.rows[obj.name].get(full)
    if row is None:
        raise RecordFailure("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
    if row["IsDeleted"]:
        raise RecordFailure("ENTITY_IS_DELETED", "entity is deleted", [])
    if obj.name == "Lead" and row["IsConverted"]:
        raise RecordFailure("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
    values = _values(state, obj, raw, convert, creating=False)
    injected = state.take_failure(full)
    if injected is not None:
        raise RecordFailure(*injected)
    return full, values


def prepare_create(state: SalesforceState, obj: ObjectDef, raw: dict[str, Any], convert: Convert) -> dict[str, Any]:
    if not obj.createable:
        raise RecordFailure("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type {obj.name} does not support insert")
    values = _values(state, obj, raw, convert, creating=True)
    missing = [f.name for f in obj.fields.values()
               if f.createable and not f.nillable and f.type != "boolean" and values.get(f.name) is None]
    if missing:
        raise RecordFailure("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    if obj.name == "FieldPermissions":
        _check_field_permission(state, values)
    return values


def _check_field_permission(state: SalesforceState, values: dict[str, Any]) -> None:
    parent = state.get("PermissionSet", str(values.get("ParentId") or ""))
    if parent is None:
        raise RecordFailure("FIELD_INTEGRITY_EXCEPTION", "Parent ID: id value of incorrect type", ["ParentId"])
    sobject, _, field_name = str(values.get("Field") or "").partition(".")
    obj = state.object_def(sobject)
    fd = obj.field(field_name) if obj is not None else None
    if obj is None or fd is None or not fd.custom or obj.name.lower() != str(values.get("SobjectType", "")).lower():
        raise RecordFailure("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                            f"Field Name: bad value for restricted picklist field: {values.get('Field')}", ["Field"])
    if values.get("PermissionsEdit") and not values.get("PermissionsRead"):
        raise RecordFailure("FIELD_INTEGRITY_EXCEPTION", "Permission Read is required when Edit is enabled",
                            ["PermissionsRead"])
    for row in state.all_rows("FieldPermissions"):
        if row["ParentId"] == parent["Id"] and str(row["Field"]).lower() == str(values["Field"]).lower():
            raise RecordFailure("DUPLICATE_VALUE", f"duplicate value found: <unknown> duplicates value on record "
                                f"with id: {row['Id']}", [])
    values["Field"] = f"{obj.name}.{fd.name}"
    values["SobjectType"] = obj.name
