"""Which Salesforce custom field holds which closedloop property, and which object an Id is.

closedloop's property names (``closedloop_first_touch_channel``) are the CRM-neutral names the
write-back computes; in Salesforce each becomes a custom field on Lead and Contact (contact
properties) or Opportunity (deal properties), ``Closedloop_First_Touch_Channel__c`` by default.
Only names produced here are ever written, so no field closedloop does not own is touched.
"""

from __future__ import annotations

from collections.abc import Mapping

# Key prefixes of record ids (the first three characters), as every org issues them.
SOBJECT_BY_PREFIX = {"00Q": "Lead", "003": "Contact", "006": "Opportunity"}
SOBJECTS_OF = {"contacts": ("Lead", "Contact"), "deals": ("Opportunity",)}


def sobject_of(record_id: str) -> str | None:
    return SOBJECT_BY_PREFIX.get(record_id[:3])


class FieldNames:
    """property name <-> custom field API name, both ways."""

    def __init__(self, prefix: str, template: str = "Closedloop_{name}__c", overrides: Mapping[str, str] | None = None):
        self.prefix = prefix
        self.template = template
        self.overrides = dict(overrides or {})

    def field(self, prop: str) -> str:
        if prop in self.overrides:
            return self.overrides[prop]
        if not prop.startswith(self.prefix):
            raise ValueError(f"{prop!r} is not a closedloop property (prefix {self.prefix!r})")
        bare = prop[len(self.prefix) :]
        return self.template.format(name="_".join(p[:1].upper() + p[1:] for p in bare.split("_") if p))

    def owns(self, prop: str) -> bool:
        """Only closedloop's own properties (the prefix, or an explicit override) map to a field."""
        return prop in self.overrides or prop.startswith(self.prefix)
