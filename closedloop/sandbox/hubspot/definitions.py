"""The built-in property definitions and groups a fresh HubSpot portal has for contacts and deals.

Only the properties closedloop reads or writes are defined, with the types, field types and
groups HubSpot uses, so GET /crm/v3/properties answers like a real portal and writes are checked
against real types.  ``ga_client_id`` and the ``utm_*`` fields are the custom properties a site's
forms fill; they are defined here because every demo portal has them.
"""

from __future__ import annotations

from typing import Any

EPOCH_ISO = "1970-01-01T00:00:00.000Z"

LIFECYCLE_STAGES = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]
ANALYTICS_SOURCES = [
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
    "AI_REFERRALS",
]

_FIELD_TYPE = {
    "string": "text",
    "number": "number",
    "datetime": "date",
    "date": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
}


def options(values: list[str]) -> list[dict[str, Any]]:
    return [
        {"label": value, "value": value, "displayOrder": order, "hidden": False, "description": ""}
        for order, value in enumerate(values)
    ]


def definition(
    name: str,
    kind: str,
    group: str,
    *,
    label: str | None = None,
    field_type: str | None = None,
    read_only: bool = False,
    unique: bool = False,
    hubspot_defined: bool = True,
    choices: list[str] | None = None,
    display_order: int = -1,
    description: str = "",
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label or name.replace("_", " ").strip().title(),
        "type": kind,
        "fieldType": field_type or _FIELD_TYPE.get(kind, "text"),
        "groupName": group,
        "description": description,
        "options": options(choices or []),
        "displayOrder": display_order,
        "hidden": False,
        "hasUniqueValue": unique,
        "formField": not read_only,
        "hubspotDefined": hubspot_defined,
        "calculated": read_only and hubspot_defined,
        "externalOptions": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "createdAt": EPOCH_ISO,
        "updatedAt": EPOCH_ISO,
        "archived": False,
    }


def group(name: str, label: str, display_order: int = -1) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": display_order, "archived": False}


def _contact_definitions() -> list[dict[str, Any]]:
    info, analytics = "contactinformation", "analyticsinformation"
    return [
        definition("hs_object_id", "number", info, label="Record ID", read_only=True, unique=True),
        definition("email", "string", info, label="Email", unique=True),
        definition("firstname", "string", info, label="First Name"),
        definition("lastname", "string", info, label="Last Name"),
        definition("createdate", "datetime", info, label="Create Date"),
        definition(
            "lastmodifieddate", "datetime", info, label="Last Modified Date", read_only=True
        ),
        definition(
            "hs_lastmodifieddate",
            "datetime",
            info,
            label="Object last modified date/time",
            read_only=True,
        ),
        definition(
            "lifecyclestage",
            "enumeration",
            info,
            label="Lifecycle Stage",
            field_type="radio",
            choices=LIFECYCLE_STAGES,
        ),
        definition("ga_client_id", "string", info, label="GA Client ID", hubspot_defined=False),
        definition("utm_source", "string", info, label="UTM Source", hubspot_defined=False),
        definition("utm_medium", "string", info, label="UTM Medium", hubspot_defined=False),
        definition("utm_campaign", "string", info, label="UTM Campaign", hubspot_defined=False),
        definition(
            "hs_analytics_source",
            "enumeration",
            analytics,
            label="Original Source",
            choices=ANALYTICS_SOURCES,
            read_only=True,
        ),
        definition(
            "hs_analytics_source_data_1",
            "string",
            analytics,
            label="Original Source Drill-Down 1",
            read_only=True,
        ),
        definition(
            "hs_analytics_source_data_2",
            "string",
            analytics,
            label="Original Source Drill-Down 2",
            read_only=True,
        ),
        definition("hs_google_click_id", "string", analytics, label="Google ad click id"),
    ]


def _deal_definitions() -> list[dict[str, Any]]:
    info = "dealinformation"
    return [
        definition("hs_object_id", "number", info, label="Record ID", read_only=True, unique=True),
        definition("dealname", "string", info, label="Deal Name"),
        definition("amount", "number", info, label="Amount"),
        definition("dealstage", "enumeration", info, label="Deal Stage", field_type="radio"),
        definition("pipeline", "enumeration", info, label="Pipeline", field_type="select"),
        definition("createdate", "datetime", info, label="Create Date"),
        definition("closedate", "datetime", info, label="Close Date"),
        definition(
            "hs_lastmodifieddate", "datetime", info, label="Last Modified Date", read_only=True
        ),
        definition("hs_is_closed", "bool", info, label="Is Deal Closed?", read_only=True),
        definition("hs_is_closed_won", "bool", info, label="Is Closed Won", read_only=True),
        definition("deal_currency_code", "enumeration", info, label="Currency", field_type="select"),
        definition(
            "amount_in_home_currency", "number", info, label="Amount in company currency", read_only=True
        ),
    ]


def builtin_definitions() -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for object_type, defs in (("contacts", _contact_definitions()), ("deals", _deal_definitions())):
        out[object_type] = {}
        for order, item in enumerate(defs):
            item["displayOrder"] = order
            out[object_type][item["name"]] = item
    return out


def builtin_groups() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "contacts": {
            "contactinformation": group("contactinformation", "Contact information", 0),
            "analyticsinformation": group("analyticsinformation", "Web analytics history", 1),
        },
        "deals": {"dealinformation": group("dealinformation", "Deal information", 0)},
    }


# The properties list/get/search return when the request names none.
DEFAULT_PROPERTIES = {
    "contacts": [
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ],
    "deals": [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ],
}
# Always present in batch results whatever was asked.
ALWAYS_RETURNED = {
    "contacts": ["createdate", "hs_object_id", "lastmodifieddate"],
    "deals": ["createdate", "hs_lastmodifieddate", "hs_object_id"],
}
MODIFIED_DATE_PROPERTIES = {
    "contacts": ("lastmodifieddate", "hs_lastmodifieddate"),
    "deals": ("hs_lastmodifieddate",),
}
