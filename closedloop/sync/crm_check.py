"""``closedloop crm check``: are closedloop's properties (HubSpot) or fields (Salesforce) there?

Write-back creates what is missing on its first run; this answers the question before a run
(and for Salesforce, where a field the API user may not see is as good as missing, it names
the permission set an admin must grant, unless the grant is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from closedloop.config.models import Config
from closedloop.connectors.calls import ApiCallLog
from closedloop.sync.properties import property_specs


@dataclass(slots=True)
class CrmCheck:
    crm: str
    expected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # still missing (or invisible) after the check
    created: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    needs_grant: list[str] = field(default_factory=list)
    message: str = ""
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "ok": self.ok,
            "expected": self.expected,
            "missing": self.missing,
            "created": self.created,
            "granted": self.granted,
            "needs_grant": self.needs_grant,
            "message": self.message,
            "api_calls": self.api_calls,
        }


def crm_check(config: Config, *, create: bool, grant: bool = False) -> CrmCheck:
    """``create``: make what is missing; ``grant`` (Salesforce): also create the FieldPermissions."""
    specs = property_specs(config.writeback.property_prefix, config.attribution.primary_model)
    log = ApiCallLog()
    if config.crm == "salesforce" and config.salesforce is not None:
        from closedloop.connectors.salesforce.build import build_salesforce, check_fields

        parts = build_salesforce(config.salesforce, log=log, property_prefix=config.writeback.property_prefix)
        report = check_fields(parts, specs, create=create, grant=grant)
        return CrmCheck(
            "salesforce",
            expected=list(report.expected),
            missing=list(report.missing),
            created=list(report.created),
            granted=list(report.granted),
            needs_grant=list(report.needs_grant),
            message=report.message(),
            api_calls=log.by_endpoint(),
        )
    if config.crm == "hubspot" and config.hubspot is not None:
        from closedloop.connectors.hubspot import HubSpotWriter
        from closedloop.sync.factory import build_connectors

        wb = config.writeback
        connectors = build_connectors(config)
        writer, log = connectors.writer, connectors.log
        if not isinstance(writer, HubSpotWriter):
            raise TypeError("the factory built no HubSpot writer for crm: hubspot")
        missing, created = writer.check_properties(
            specs, group_name=wb.group_name, group_label=wb.group_label, create=create
        )
        expected = [f"{s.object_type}.{s.name}" for s in specs]
        if missing:
            message = (
                f"{len(missing)} of {len(expected)} closedloop properties are missing: {', '.join(missing)}. "
                "Run 'closedloop crm check --create' (the private app needs the crm.schemas.*.write scopes)."
            )
        elif created:
            message = f"created {len(created)} closedloop properties; all {len(expected)} exist"
        else:
            message = f"all {len(expected)} closedloop properties exist"
        return CrmCheck(
            "hubspot", expected=expected, missing=missing, created=created, message=message,
            api_calls=log.by_endpoint(),
        )
    raise ValueError(f"crm is {config.crm} but its section is missing")  # the config validator prevents it
