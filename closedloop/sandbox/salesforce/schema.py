"""The org's object catalog: which sObjects exist, their fields, types and relationships.

Describe, SOQL validation, collections and Bulk 2.0 all read this one catalog, so an unknown
field is refused the same way everywhere.  Names are matched ignoring case (as SOQL does) and
answered in their canonical spelling.  Custom fields created through the Tooling API are added
at run time with ``needs_grant`` set: they stay invisible until FieldPermissions grant them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from closedloop.sandbox.salesforce.ids import PREFIXES

# SOAP types grouped by how SOQL compares them.
STRING_TYPES = frozenset({"id", "string", "picklist", "email", "reference", "textarea", "phone", "url"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
TOOLING_OBJECTS = frozenset({"CustomField"})
CUSTOM_TEXT_FIELDS = ("GA_Client_Id__c", "UTM_Source__c", "UTM_Medium__c", "UTM_Campaign__c", "GCLID__c")
# When the person became a marketing- / sales-qualified lead (the HubSpot lifecycle dates).
CUSTOM_DATE_FIELDS = ("MQL_Date__c", "SQL_Date__c")


def soql_kind(soap_type: str) -> str:
    if soap_type in STRING_TYPES:
        return "string"
    if soap_type in NUMBER_TYPES:
        return "number"
    return soap_type  # boolean, date, datetime, anyType


@dataclass(slots=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    updateable: bool = False
    createable: bool = False
    nillable: bool = True
    custom: bool = False
    length: int = 0
    reference_to: str | None = None
    relationship: str | None = None
    needs_grant: bool = False  # created at run time: visible only through FieldPermissions
    precision: int = 0
    scale: int = 0

    @property
    def kind(self) -> str:
        return soql_kind(self.type)


@dataclass(slots=True)
class ObjectDef:
    name: str
    label: str
    fields: dict[str, FieldDef] = field(default_factory=dict)  # lower-case name -> field
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    tooling: bool = False

    @property
    def prefix(self) -> str:
        return PREFIXES[self.name]

    def add(self, f: FieldDef) -> None:
        self.fields[f.name.lower()] = f

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship is not None and f.relationship.lower() == lowered:
                return f
        return None


def _f(name: str, soap_type: str, *, rw: bool = True, length: int = 0, ref: str | None = None,
       rel: str | None = None, nillable: bool = True, custom: bool = False) -> FieldDef:
    if soap_type in ("string", "textarea", "email", "picklist", "phone", "url") and not length:
        length = 255
    if soap_type in ("id", "reference"):
        length = 18
    label = name.removesuffix("__c").replace("_", " ")
    return FieldDef(name, soap_type, label, updateable=rw, createable=rw, nillable=nillable, custom=custom,
                    length=length, reference_to=ref, relationship=rel)


def _system(obj: ObjectDef, *, modified: bool = True, modstamp: bool = True) -> None:
    obj.add(_f("Id", "id", rw=False, nillable=False))
    obj.add(_f("IsDeleted", "boolean", rw=False, nillable=False))
    obj.add(_f("CreatedDate", "datetime", rw=False, nillable=False))
    obj.add(_f("CreatedById", "reference", rw=False, ref="User", rel="CreatedBy"))
    if modified:
        obj.add(_f("LastModifiedDate", "datetime", rw=False, nillable=False))
        obj.add(_f("LastModifiedById", "reference", rw=False, ref="User", rel="LastModifiedBy"))
    if modstamp:
        obj.add(_f("SystemModstamp", "datetime", rw=False, nillable=False))


def _object(name: str, label: str, fields: list[FieldDef], *, modified: bool = True, modstamp: bool = True,
            writable: bool = True) -> ObjectDef:
    obj = ObjectDef(name, label, createable=writable, updateable=writable, deletable=writable)
    _system(obj, modified=modified, modstamp=modstamp)
    for f in fields:
        obj.add(f)
    return obj


def _person_fields(*, lead: bool) -> list[FieldDef]:
    out = [_f("FirstName", "string"), _f("LastName", "string", nillable=False), _f("Name", "string", rw=False),
           _f("Email", "email"), _f("LeadSource", "picklist"),
           _f("OwnerId", "reference", ref="User", rel="Owner")]
    out += [_f(n, "string", custom=True) for n in CUSTOM_TEXT_FIELDS]
    out += [_f(n, "datetime", custom=True) for n in CUSTOM_DATE_FIELDS]
    if lead:
        out += [_f("Company", "string", nillable=False), _f("Status", "picklist", nillable=False),
                _f("IsConverted", "boolean", rw=False, nillable=False), _f("ConvertedDate", "date", rw=False),
                _f("ConvertedContactId", "reference", rw=False, ref="Contact", rel="ConvertedContact"),
                _f("ConvertedAccountId", "reference", rw=False, ref="Account", rel="ConvertedAccount"),
                _f("ConvertedOpportunityId", "reference", rw=False, ref="Opportunity", rel="ConvertedOpportunity")]
    else:
        out.append(_f("AccountId", "reference", ref="Account", rel="Account"))
    return out


def build_catalog(*, multicurrency: bool = False) -> dict[str, ObjectDef]:
    """Every sObject the sandbox serves, keyed by lower-case name."""
    objects = [
        _object("Lead", "Lead", _person_fields(lead=True)),
        _object("Contact", "Contact", _person_fields(lead=False)),
        _object("Account", "Account", [_f("Name", "string", nillable=False),
                                       _f("OwnerId", "reference", ref="User", rel="Owner")]),
        _object("Opportunity", "Opportunity", [
            _f("Name", "string", nillable=False), _f("AccountId", "reference", ref="Account", rel="Account"),
            _f("Amount", "currency"), _f("StageName", "picklist", nillable=False),
            _f("CloseDate", "date", nillable=False), _f("IsWon", "boolean", rw=False, nillable=False),
            _f("IsClosed", "boolean", rw=False, nillable=False), _f("Probability", "percent"),
            _f("ForecastCategory", "picklist", rw=False), _f("ForecastCategoryName", "picklist"),
            _f("LeadSource", "picklist"), _f("Type", "picklist"),
            _f("CampaignId", "reference", ref="Campaign", rel="Campaign"),
            _f("ContactId", "reference", ref="Contact", rel="Contact"),
            _f("OwnerId", "reference", ref="User", rel="Owner")]),
        _object("OpportunityHistory", "Opportunity History", [
            _f("OpportunityId", "reference", rw=False, ref="Opportunity", rel="Opportunity"),
            _f("StageName", "picklist", rw=False), _f("Amount", "currency", rw=False),
            _f("CloseDate", "date", rw=False), _f("Probability", "percent", rw=False),
            _f("ExpectedRevenue", "currency", rw=False), _f("ForecastCategory", "picklist", rw=False),
            _f("PrevAmount", "currency", rw=False), _f("PrevCloseDate", "date", rw=False)],
            modified=False, writable=False),
        _object("OpportunityFieldHistory", "Opportunity Field History", [
            _f("OpportunityId", "reference", rw=False, ref="Opportunity", rel="Opportunity"),
            _f("Field", "picklist", rw=False), _f("DataType", "picklist", rw=False),
            _f("OldValue", "anyType", rw=False), _f("NewValue", "anyType", rw=False)],
            modified=False, modstamp=False, writable=False),
        _object("OpportunityContactRole", "Opportunity Contact Role", [
            _f("OpportunityId", "reference", ref="Opportunity", rel="Opportunity", nillable=False),
            _f("ContactId", "reference", ref="Contact", rel="Contact"), _f("Role", "picklist"),
            _f("IsPrimary", "boolean", nillable=False)]),
        _object("Campaign", "Campaign", [
            _f("Name", "string", nillable=False), _f("Type", "picklist"), _f("Status", "picklist"),
            _f("StartDate", "date"), _f("EndDate", "date"), _f("IsActive", "boolean", nillable=False)]),
        _object("CampaignMember", "Campaign Member", [
            _f("CampaignId", "reference", ref="Campaign", rel="Campaign", nillable=False),
            _f("LeadId", "reference", ref="Lead", rel="Lead"),
            _f("ContactId", "reference", ref="Contact", rel="Contact"),
            _f("LeadOrContactId", "reference", rw=False), _f("Status", "picklist"),
            _f("HasResponded", "boolean", rw=False, nillable=False), _f("FirstRespondedDate", "date", rw=False)]),
        _object("User", "User", [_f("Username", "string", nillable=False), _f("Name", "string", rw=False),
                                 _f("Email", "email"), _f("IsActive", "boolean", nillable=False)], writable=False),
        _object("PermissionSet", "Permission Set", [
            _f("Name", "string", nillable=False), _f("Label", "string", nillable=False),
            _f("IsOwnedByProfile", "boolean", rw=False, nillable=False)]),
        _object("PermissionSetAssignment", "Permission Set Assignment", [
            _f("PermissionSetId", "reference", ref="PermissionSet", rel="PermissionSet", nillable=False),
            _f("AssigneeId", "reference", ref="User", rel="Assignee", nillable=False)]),
        _object("FieldPermissions", "Field Permissions", [
            _f("ParentId", "reference", ref="PermissionSet", rel="Parent", nillable=False),
            _f("SobjectType", "picklist", nillable=False), _f("Field", "picklist", nillable=False),
            _f("PermissionsRead", "boolean", nillable=False), _f("PermissionsEdit", "boolean", nillable=False)]),
    ]
    tooling = _object("CustomField", "Custom Field", [
        _f("DeveloperName", "string", rw=False), _f("TableEnumOrId", "string", rw=False),
        _f("FullName", "string"), _f("NamespacePrefix", "string", rw=False), _f("Metadata", "anyType")])
    tooling.tooling = True
    objects.append(tooling)
    if multicurrency:
        for obj in objects:
            if obj.name not in ("User", "PermissionSet", "PermissionSetAssignment", "FieldPermissions",
                                "CustomField", "OpportunityFieldHistory"):
                obj.add(_f("CurrencyIsoCode", "picklist"))
    return {obj.name.lower(): obj for obj in objects}
