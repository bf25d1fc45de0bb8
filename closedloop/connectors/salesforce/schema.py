"""``crm check`` for Salesforce: which closedloop fields are missing, create them, grant access.

A custom field is created through the Tooling API (``CustomField``), but the API user sees it
(in describe, in queries, in writes) only once field-level security grants it: a
``FieldPermissions`` row on a permission set assigned to that user.  Creating that grant
through the REST API changes who may read what in the org, so it happens only when the config
says so (``grant_field_permissions``); otherwise the report names the permission set and the
fields an admin must grant.  A field created earlier but never granted is invisible to
describe; creating it again answers DUPLICATE_DEVELOPER_NAME, which is read as "exists".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.format import format_soql

from closedloop.connectors.base import PropertySpec
from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.connectors.salesforce.fields import SOBJECTS_OF, FieldNames, sobject_of
from closedloop.errors import FatalAPIError

IDS_PER_QUERY = 300  # 18-character ids quoted: keeps a query URL far under 16,384 bytes


@dataclass(slots=True)
class FieldReport:
    """What ``crm check`` found and did; ``missing`` is what the API user still cannot see."""

    permission_set: str
    expected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    needs_grant: list[str] = field(default_factory=list)

    def message(self) -> str:
        if not self.missing:
            return f"all {len(self.expected)} closedloop fields are visible to the API user"
        lines = [f"{len(self.missing)} closedloop field(s) are not visible to the API user: {', '.join(self.missing)}."]
        if self.needs_grant:
            lines.append(
                f"Grant Read and Edit on {', '.join(self.needs_grant)} in permission set {self.permission_set!r} "
                "(assigned to the API user), or set salesforce.grant_field_permissions: true to let closedloop "
                "create the FieldPermissions."
            )
        unknown = [f for f in self.missing if f not in self.needs_grant]
        if unknown:
            lines.append(
                f"Create {', '.join(unknown)} (salesforce.create_fields: true, or in Setup) and grant Read and "
                f"Edit on them in permission set {self.permission_set!r}."
            )
        return " ".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "permission_set": self.permission_set,
            "expected": self.expected,
            "missing": self.missing,
            "created": self.created,
            "granted": self.granted,
            "needs_grant": self.needs_grant,
            "message": self.message(),
        }


def metadata(spec: PropertySpec) -> dict[str, Any]:
    """CustomFieldMetadata for a property: Number(18,2), LongTextArea, or Text(255)."""
    label = f"CL {spec.label}"[:40]
    if spec.type == "number":
        return {"label": label, "type": "Number", "precision": 18, "scale": 2, "description": spec.description}
    if spec.field_type == "textarea":
        return {
            "label": label,
            "type": "LongTextArea",
            "length": 32768,
            "visibleLines": 3,
            "description": spec.description,
        }
    return {"label": label, "type": "Text", "length": 255, "description": spec.description}


def wanted_fields(specs: Sequence[PropertySpec], names: FieldNames) -> dict[str, PropertySpec]:
    """``Lead.Closedloop_X__c`` -> its spec, for every object the spec's type spans."""
    return {f"{sobject}.{names.field(s.name)}": s for s in specs for sobject in SOBJECTS_OF[s.object_type]}


def visible_fields(client: SalesforceClient, sobject: str) -> set[str]:
    described = client.describe(sobject)
    return {str(f.get("name")) for f in (described or {}).get("fields") or []}


def ensure_fields(
    client: SalesforceClient,
    specs: Sequence[PropertySpec],
    names: FieldNames,
    *,
    create: bool,
    grant: bool,
    permission_set: str,
) -> FieldReport:
    wanted = wanted_fields(specs, names)
    report = FieldReport(permission_set, expected=sorted(wanted))
    visible: dict[str, set[str]] = {}
    exists_hidden: list[str] = []
    for full in sorted(wanted):
        sobject, name = full.split(".", 1)
        if sobject not in visible:
            visible[sobject] = visible_fields(client, sobject)
        if name in visible[sobject] or not create:
            continue
        if _create(client, full, wanted[full]):
            report.created.append(full)
        exists_hidden.append(full)
    if exists_hidden and grant:
        parent = permission_set_id(client, permission_set)
        for full in exists_hidden:
            _grant(client, parent, full)
            report.granted.append(full)
    # Describe again where something changed: what it still lacks, the API user cannot use.
    for sobject in {f.split(".", 1)[0] for f in exists_hidden}:
        client.forget_describe(sobject)
        visible[sobject] = visible_fields(client, sobject)
    report.missing = [f for f in sorted(wanted) if f.split(".", 1)[1] not in visible[f.split(".", 1)[0]]]
    report.needs_grant = [f for f in exists_hidden if f in report.missing]
    return report


def _create(client: SalesforceClient, full: str, spec: PropertySpec) -> bool:
    """True when created; False when it already existed (invisible: created but never granted)."""
    body = {"FullName": full, "Metadata": metadata(spec)}
    try:
        client.call(
            "POST tooling/sobjects/CustomField",
            lambda sf: sf.toolingexecute("sobjects/CustomField", method="POST", data=body),
        )
    except FatalAPIError as exc:
        if "DUPLICATE_DEVELOPER_NAME" in str(exc) or "DUPLICATE_VALUE" in str(exc):
            return False
        raise
    return True


def permission_set_id(client: SalesforceClient, name: str) -> str:
    soql = format_soql("SELECT Id, Name FROM PermissionSet WHERE Name = {}", name)
    answer = client.call("GET query PermissionSet", lambda sf: sf.query(soql))
    records = (answer or {}).get("records") or []
    if not records:
        raise FatalAPIError(
            f"permission set {name!r} does not exist: create it, assign it to the API user, and name it in "
            "salesforce.permission_set"
        )
    return str(records[0]["Id"])


def _grant(client: SalesforceClient, parent: str, full: str) -> None:
    sobject = full.split(".", 1)[0]
    body = {"ParentId": parent, "SobjectType": sobject, "Field": full, "PermissionsRead": True, "PermissionsEdit": True}
    try:
        client.call(
            "POST sobjects/FieldPermissions",
            lambda sf: sf.restful("sobjects/FieldPermissions", method="POST", json=body),
        )
    except FatalAPIError as exc:
        if "DUPLICATE_VALUE" not in str(exc):
            raise


def read_values(
    client: SalesforceClient, object_ids: Sequence[str], fields: Mapping[str, str], *, numeric: set[str]
) -> dict[str, dict[str, str | None]]:
    """Current values of closedloop fields, as the text the write-back compares; unknown ids absent."""
    by_sobject: dict[str, list[str]] = {}
    for record_id in object_ids:
        if (sobject := sobject_of(record_id)) is not None:
            by_sobject.setdefault(sobject, []).append(record_id)
    out: dict[str, dict[str, str | None]] = {}
    for sobject, ids in by_sobject.items():
        for start in range(0, len(ids), IDS_PER_QUERY):
            soql = format_soql(
                "SELECT Id, {:literal} FROM {:literal} WHERE Id IN {}",
                ", ".join(fields.values()),
                sobject,
                ids[start : start + IDS_PER_QUERY],
            )
            rows = client.call(f"GET query {sobject}", lambda sf, q=soql: list(sf.query_all_iter(q)))  # type: ignore[misc]
            for row in rows:
                out[str(row["Id"])] = {p: _as_text(row.get(f), p in numeric) for p, f in fields.items()}
    return out


def _as_text(value: Any, numeric: bool) -> str | None:
    if value is None:
        return ""
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)
