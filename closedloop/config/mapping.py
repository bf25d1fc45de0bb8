"""Config of the mapping layer: channel rules, UTM aliases, identity keys, milestones.

This section belongs to the marketing-ops admin, so every mistake must be caught here, with the
path of the offending field: a regex that does not compile, a condition with no operator or two,
an alias that points at two channels' names.  The matching itself lives in
``closedloop.mapping``; these models only describe and check what the admin wrote.

A rule in YAML::

    channel_rules:
      - name: LinkedIn Ads
        channel: Paid Social
        subchannel: "LinkedIn / {campaign}"
        when:
          all:
            - {field: source, in: [linkedin, lnkd.in]}
            - {field: medium, regex: "^(cpc|paid.*)$"}
"""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from closedloop.config.base import Strict

ConditionField = Literal[
    "source", "medium", "campaign", "content", "term", "landing_page", "referrer", "click_id",
]
UTMField = Literal["source", "medium", "campaign", "content", "term"]
SourceCategory = Literal["search", "social", "shopping", "video"]
Milestone = Literal["lead", "mql", "sql", "opportunity", "closed_won", "closed_lost"]
IdentityKind = Literal["ga_client_id", "email_hash", "gclid", "fbclid", "msclkid"]
DefaultChannelGroup = Literal["after_rules", "off"]

TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {"source", "medium", "campaign", "content", "term", "landing_page", "referrer"}
)
_OPERATORS = ("equals", "in_", "like", "contains", "regex", "in_category", "present")


class Condition(Strict):
    """One test on one field, or a group of conditions joined by ``all`` / ``any``.

    A single model rather than a union keeps error paths short: the admin sees
    ``channel_rules[0].when.all[1].regex``, not the name of a union member.
    """

    field: ConditionField | None = Field(
        None,
        description="Which normalised value to test. click_id tests the kinds of click ids "
        "present (gclid, fbclid, msclkid, ...) and holds if any of them passes.",
    )
    equals: str | None = Field(None, description="Exact value (case-insensitive)")
    in_: list[str] | None = Field(None, alias="in", description="One of these exact values")
    like: str | None = Field(
        None, description="Whole-value pattern with * (any run of characters) and ? (one character)"
    )
    contains: str | None = Field(None, description="Substring (case-insensitive)")
    regex: str | None = Field(
        None,
        description="Python regular expression searched anywhere in the value, case-insensitive; "
        "anchor it with ^...$ to match the whole value",
    )
    in_category: SourceCategory | None = Field(
        None, description="The value is on GA4's list of search/social/shopping/video sites"
    )
    present: bool | None = Field(
        None, description="true: the value is not empty; false: it is empty"
    )
    not_: bool = Field(False, alias="not", description="Invert the result of this condition")
    all: list[Condition] | None = Field(None, description="Holds when every condition holds")
    any: list[Condition] | None = Field(None, description="Holds when at least one holds")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"regular expression does not compile: {exc}") from None
        return value

    @field_validator("in_")
    @classmethod
    def _list_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list never matches; remove the condition or add values")
        return value

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        groups = [name for name in ("all", "any") if getattr(self, name) is not None]
        operators = [name.rstrip("_") for name in _OPERATORS if getattr(self, name) is not None]
        if groups:
            if len(groups) > 1 or operators or self.field is not None:
                raise ValueError(
                    "a group has exactly one of all: or any: and no field or operator; "
                    "nest a second group to combine them"
                )
            if not getattr(self, groups[0]):
                raise ValueError(f"{groups[0]}: needs at least one condition")
            return self
        if self.field is None:
            raise ValueError(
                "give field: plus one operator (equals, in, like, contains, regex, in_category, "
                "present), or a group with all: / any:"
            )
        if len(operators) != 1:
            found = ", ".join(operators) if operators else "none"
            raise ValueError(
                "give exactly one operator of equals, in, like, contains, regex, in_category, "
                f"present (found: {found})"
            )
        if self.in_category is not None and self.field != "source":
            raise ValueError("in_category applies to field: source only")
        return self

    def operator(self) -> str:
        """The name of the test this condition applies ('all'/'any' for groups)."""
        for name in ("all", "any", *_OPERATORS):
            if getattr(self, name) is not None:
                return name.rstrip("_")
        return "none"


class ChannelRule(Strict):
    name: str = Field(..., min_length=1, max_length=200)
    channel: str = Field(..., min_length=1, max_length=128)
    subchannel: str | None = Field(
        None,
        max_length=128,
        description="Fixed text or a template such as '{source}' or 'LinkedIn / {campaign}' "
        "filled from the normalised values",
    )
    when: Condition | None = Field(None, description="No condition: the rule matches everything")

    @field_validator("subchannel")
    @classmethod
    def _template_fields_exist(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"subchannel template is malformed: {exc}") from None
        unknown = [name for name in names if name not in TEMPLATE_FIELDS]
        if unknown:
            raise ValueError(
                f"subchannel template uses unknown field(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(sorted(TEMPLATE_FIELDS))}"
            )
        return value


class AliasConfig(Strict):
    """Canonical value -> raw values that mean it; patterns may use * wildcards."""

    source: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "facebook": ["fb", "facebook.com", "m.facebook.com", "l.facebook.com",
                         "lm.facebook.com", "web.facebook.com"],
            "instagram": ["ig", "instagram.com", "l.instagram.com"],
            "linkedin": ["linkedin.com", "lnkd.in", "www.linkedin.com"],
            "twitter": ["twitter.com", "t.co", "x.com"],
            "google": ["google.com", "www.google.com"],
            "bing": ["bing.com", "www.bing.com"],
        }
    )
    medium: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "cpc": ["ppc", "paidsearch", "paid-search", "paid_search"],
            "email": ["e-mail", "e_mail", "newsletter"],
            "paid_social": ["paidsocial", "paid-social"],
        }
    )
    campaign: dict[str, list[str]] = Field(default_factory=dict)
    content: dict[str, list[str]] = Field(default_factory=dict)
    term: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unambiguous(self) -> AliasConfig:
        for name in ("source", "medium", "campaign", "content", "term"):
            table: dict[str, list[str]] = getattr(self, name)
            owner: dict[str, str] = {}
            for canonical, aliases in table.items():
                if not canonical.strip():
                    raise ValueError(f"{name}: an alias target must not be empty")
                for alias in aliases:
                    key = alias.strip().lower()
                    if key in owner and owner[key] != canonical:
                        raise ValueError(
                            f"{name}: {alias!r} is an alias of both {owner[key]!r} "
                            f"and {canonical!r}"
                        )
                    if key in {c.strip().lower() for c in table} and key != canonical.lower():
                        raise ValueError(
                            f"{name}: {alias!r} is itself a canonical value; aliases do not chain"
                        )
                    owner[key] = canonical
        return self


def _all_identity_kinds() -> list[IdentityKind]:
    return ["ga_client_id", "email_hash", "gclid", "fbclid", "msclkid"]


class IdentityConfig(Strict):
    """Which identity keys tie sessions to contacts (property names live per CRM section)."""

    keys: list[IdentityKind] = Field(default_factory=_all_identity_kinds, min_length=1)
    multi_value_separator: str = Field(
        ";", min_length=1, max_length=4,
        description="Separator of several values in one CRM property (one client id per device)",
    )


def _hubspot_lifecycle() -> dict[str, Milestone]:
    return {
        "lead": "lead",
        "marketingqualifiedlead": "mql",
        "salesqualifiedlead": "sql",
        "opportunity": "opportunity",
        "customer": "closed_won",
    }


def _default_pipelines() -> dict[str, dict[str, Milestone]]:
    return {
        "default": {
            "appointmentscheduled": "opportunity",
            "qualifiedtobuy": "opportunity",
            "presentationscheduled": "opportunity",
            "decisionmakerboughtin": "opportunity",
            "contractsent": "opportunity",
            "closedwon": "closed_won",
            "closedlost": "closed_lost",
        },
        # Salesforce's standard Opportunity StageName values; used for any pipeline not listed.
        "*": {
            "prospecting": "opportunity",
            "qualification": "opportunity",
            "needs analysis": "opportunity",
            "value proposition": "opportunity",
            "id. decision makers": "opportunity",
            "perception analysis": "opportunity",
            "proposal/price quote": "opportunity",
            "negotiation/review": "opportunity",
            "closed won": "closed_won",
            "closed lost": "closed_lost",
            "closedwon": "closed_won",
            "closedlost": "closed_lost",
        },
    }


class MilestoneConfig(Strict):
    lifecycle_stages: dict[str, Milestone] = Field(
        default_factory=_hubspot_lifecycle,
        description="CRM lifecycle stage (or Salesforce lead status) -> milestone",
    )
    pipelines: dict[str, dict[str, Milestone]] = Field(
        default_factory=_default_pipelines,
        description="Pipeline id -> {stage id -> milestone}; '*' applies to pipelines not listed",
    )


def _default_offline_sources() -> dict[str, str]:
    return {
        # HubSpot hs_analytics_source categories
        "ORGANIC_SEARCH": "Organic Search",
        "PAID_SEARCH": "Paid Search",
        "EMAIL_MARKETING": "Email",
        "SOCIAL_MEDIA": "Organic Social",
        "PAID_SOCIAL": "Paid Social",
        "REFERRALS": "Referral",
        "DIRECT_TRAFFIC": "Direct",
        "OTHER_CAMPAIGNS": "Other Campaigns",
        "OFFLINE": "Offline",
        "AI_REFERRALS": "AI Referral",
        # Salesforce LeadSource picklist values (standard and common)
        "WEB": "Unassigned",
        "PHONE_INQUIRY": "Offline",
        "PARTNER_REFERRAL": "Referral",
        "PURCHASED_LIST": "Offline",
        "OTHER": "Offline",
        "ADVERTISEMENT": "Paid Other",
        "EMPLOYEE_REFERRAL": "Referral",
        "EXTERNAL_REFERRAL": "Referral",
        "PARTNER": "Referral",
        "PUBLIC_RELATIONS": "Offline",
        "SEMINAR_INTERNAL": "Events",
        "SEMINAR_PARTNER": "Events",
        "TRADE_SHOW": "Events",
        "WEBINAR": "Events",
        "WORD_OF_MOUTH": "Referral",
    }


class MappingConfig(Strict):
    """The admin's mapping: what channel a touch belongs to and what a stage means."""

    channel_rules: list[ChannelRule] = Field(
        default_factory=list,
        description="Ordered; the first rule whose conditions hold gives the channel",
    )
    default_channel_group: DefaultChannelGroup = Field(
        "after_rules",
        description="after_rules: GA4's default channel group decides what no rule matched; "
        "off: only channel_rules apply (your rules replace GA4's)",
    )
    unassigned_channel: str = Field("Unassigned", min_length=1, max_length=128)
    aliases: AliasConfig = AliasConfig()
    identity: IdentityConfig = IdentityConfig()
    milestones: MilestoneConfig = MilestoneConfig()
    offline_sources: dict[str, str] = Field(
        default_factory=_default_offline_sources,
        description="CRM original-source value -> channel (matched ignoring case, spaces, '-')",
    )

    @field_validator("default_channel_group", mode="before")
    @classmethod
    def _yaml_off_is_off(cls, value: object) -> object:
        # Unquoted `off` / `on` reach us as YAML 1.1 booleans.
        if isinstance(value, bool):
            return "after_rules" if value else "off"
        return value

    @field_validator("channel_rules")
    @classmethod
    def _names_unique(cls, rules: list[ChannelRule]) -> list[ChannelRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two channel rules are named {rule.name!r}; names must be unique")
            seen.add(rule.name)
        return rules
