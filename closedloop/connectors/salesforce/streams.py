"""The Salesforce streams, declared as data: object, fields, cursor field, parser, deletions.

Adding a stream is adding a ``StreamSpec`` here; ``source.py`` has the one loop that pulls any
of them.  Lead and Contact both land as ``ContactRecord`` (a converted Lead folded onto its
Contact); the history objects are insert-only, so they follow ``CreatedDate`` and track no
deletions (a deleted Opportunity's history goes with it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.salesforce import parse

PREFIX = "salesforce."


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    sobject: str
    fields: tuple[str, ...]
    cursor_field: str  # SystemModstamp, or CreatedDate for insert-only history
    parse: Callable[[parse.Row], Any]  # a record, or None for a row that is no record (not an error)
    deleted_kind: str | None = None  # DeletedRecord.kind; None: deletions are not tracked
    deleted_fields: tuple[str, ...] = ("Id", "SystemModstamp")
    equals: tuple[tuple[str, Any], ...] = ()  # fixed conditions, field = value


def person_fields(config: SalesforceConfig) -> tuple[str, ...]:
    f = config.fields
    named = (
        f.email,
        f.lead_source,
        f.ga_client_id,
        f.utm_source,
        f.utm_medium,
        f.utm_campaign,
        f.gclid,
        f.fbclid,
        f.msclkid,
    )
    return tuple(dict.fromkeys(n for n in named if n))


def holding(spec: StreamSpec, held: Mapping[str, str] | None) -> StreamSpec:
    """``spec`` also reading closedloop's own fields (API name -> property name) into each
    record's ``properties["crm_values"]``: what the org holds now, so the write-back sends only
    real differences.  Only fields describe shows are passed: a query naming a field the org
    lacks (or hides from this user) fails whole."""
    if not held:
        return spec
    return replace(spec, fields=(*spec.fields, *held), parse=partial(_with_held, spec.parse, dict(held)))


def _with_held(parse_row: Callable[[parse.Row], Any], held: dict[str, str], row: parse.Row) -> Any:
    record = parse_row(row)
    if record is None or not isinstance(getattr(record, "properties", None), dict):
        return record
    values = {prop: "" if row.get(name) is None else str(row.get(name)) for name, prop in held.items()}
    return replace(record, properties={**record.properties, "crm_values": values})


def build_streams(
    config: SalesforceConfig, *, multicurrency: bool, held: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[StreamSpec, ...]:
    """``held``: by sobject, closedloop fields that exist there (see ``holding``)."""
    held = held or {}
    people = person_fields(config)
    system = ("Id", "CreatedDate", "SystemModstamp")
    history: StreamSpec
    if config.stage_history == "OpportunityFieldHistory":
        history = StreamSpec(
            PREFIX + "opportunity_history",
            "OpportunityFieldHistory",
            ("Id", "OpportunityId", "Field", "NewValue", "CreatedDate"),
            "CreatedDate",
            parse.field_history,
            equals=(("Field", "StageName"),),
        )
    else:
        history = StreamSpec(
            PREFIX + "opportunity_history",
            "OpportunityHistory",
            ("Id", "OpportunityId", "StageName", "CreatedDate"),
            "CreatedDate",
            parse.stage_history,
        )
    return (
        holding(StreamSpec(
            PREFIX + "leads",
            "Lead",
            (*system, "Status", "IsConverted", "ConvertedContactId", "ConvertedDate", *people),
            "SystemModstamp",
            partial(parse.person, fields=config.fields, sobject="Lead"),
            deleted_kind="contact",
        ), held.get("Lead")),
        holding(StreamSpec(
            PREFIX + "contacts",
            "Contact",
            (*system, *people),
            "SystemModstamp",
            partial(parse.person, fields=config.fields, sobject="Contact"),
            deleted_kind="contact",
        ), held.get("Contact")),
        holding(StreamSpec(
            PREFIX + "opportunities",
            "Opportunity",
            (*system, "Name", "StageName", "Amount", "CloseDate", "IsWon", "IsClosed")
            + (("CurrencyIsoCode",) if multicurrency else ()),
            "SystemModstamp",
            parse.opportunity,
            deleted_kind="deal",
        ), held.get("Opportunity")),
        history,
        StreamSpec(
            PREFIX + "opportunity_contact_roles",
            "OpportunityContactRole",
            ("Id", "OpportunityId", "ContactId", "IsPrimary", "Role", "SystemModstamp"),
            "SystemModstamp",
            parse.contact_role,
            deleted_kind="deal_contact_role",
            deleted_fields=("Id", "OpportunityId", "ContactId", "SystemModstamp"),
        ),
        StreamSpec(
            PREFIX + "campaign_members",
            "CampaignMember",
            (
                *system,
                "CampaignId",
                "LeadId",
                "ContactId",
                "LeadOrContactId",
                "Status",
                "HasResponded",
                "FirstRespondedDate",
                "Campaign.Type",
                "Campaign.Name",
            ),
            "SystemModstamp",
            parse.campaign_response,
            deleted_kind="offline_touch",
        ),
    )
