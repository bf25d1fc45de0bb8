"""Ordered channel rules, first match wins: the admin's rules, then GA4's default channel group.

Sessions number in the millions but distinct (source, medium, campaign, ...) combinations in
the thousands, so ``assign`` memoises per distinct raw touch.  Everything is pure: the mapper is
built from config and never touches the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from closedloop.config.mapping import ChannelRule, MappingConfig
from closedloop.mapping.aliases import AliasTables
from closedloop.mapping.explain import Explanation, RuleTrace
from closedloop.mapping.ga4_default import default_channel_rules, source_categories
from closedloop.mapping.rules import Check, CompiledCondition, SourceCategories, compile_condition
from closedloop.mapping.utm import NormalisedUTM, RawTouch, normalise

RuleOrigin = Literal["admin", "ga4"]
CACHE_LIMIT = 200_000
_OFFLINE_KEY = re.compile(r"[\s\-/]+")


@dataclass(frozen=True, slots=True)
class ChannelMatch:
    channel: str
    subchannel: str | None
    rule: str  # e.g. "channel_rules[2] 'LinkedIn Ads'" or "GA4 default: Paid Social"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    label: str
    origin: RuleOrigin
    channel: str
    subchannel: str | None
    condition: CompiledCondition

    def subchannel_for(self, utm: NormalisedUTM) -> str | None:
        if self.subchannel is None:
            return None
        text = self.subchannel.format_map({
            "source": utm.source, "medium": utm.medium, "campaign": utm.campaign,
            "content": utm.content, "term": utm.term, "landing_page": utm.landing_page,
            "referrer": utm.referrer,
        }).strip()
        return text or None


def offline_key(value: str) -> str:
    """'Trade Show', 'trade-show' and 'TRADE_SHOW' are one CRM source."""
    return _OFFLINE_KEY.sub("_", value.strip()).upper()


class ChannelMapper:
    def __init__(
        self,
        rules: Sequence[CompiledRule],
        aliases: AliasTables,
        *,
        unassigned: str = "Unassigned",
        offline_sources: Mapping[str, str] | None = None,
    ):
        self._rules = tuple(rules)
        self._aliases = aliases
        self._unassigned = unassigned
        self._offline = {offline_key(k): v for k, v in (offline_sources or {}).items()}
        self._cache: dict[RawTouch, ChannelMatch] = {}

    @classmethod
    def from_config(
        cls, config: MappingConfig, *, categories: SourceCategories | None = None,
    ) -> ChannelMapper:
        cats = source_categories() if categories is None else categories
        rules = [
            _compile(rule, f"channel_rules[{i}] {rule.name!r}", "admin", cats)
            for i, rule in enumerate(config.channel_rules)
        ]
        if config.default_channel_group == "after_rules":
            rules += [
                _compile(rule, f"GA4 default: {rule.name}", "ga4", cats)
                for rule in default_channel_rules()
            ]
        return cls(
            rules, AliasTables.from_config(config.aliases),
            unassigned=config.unassigned_channel, offline_sources=config.offline_sources,
        )

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        return self._rules

    def rule_names(self) -> list[str]:
        return [rule.label for rule in self._rules]

    def normalise(self, raw: RawTouch) -> NormalisedUTM:
        return normalise(raw, self._aliases)

    def assign(self, raw: RawTouch) -> ChannelMatch:
        hit = self._cache.get(raw)
        if hit is not None:
            return hit
        match = self.match(self.normalise(raw))
        if len(self._cache) >= CACHE_LIMIT:
            # Landing pages with unique query strings must not grow memory without bound.
            self._cache.clear()
        self._cache[raw] = match
        return match

    def match(self, utm: NormalisedUTM) -> ChannelMatch:
        for rule in self._rules:
            if rule.condition.test(utm):
                return ChannelMatch(rule.channel, rule.subchannel_for(utm), rule.label)
        return ChannelMatch(self._unassigned, None, "no rule matched")

    def explain(self, raw: RawTouch) -> Explanation:
        utm = self.normalise(raw)
        tried: list[RuleTrace] = []
        for rule in self._rules:
            checks: list[Check] = []
            matched = rule.condition.trace(utm, 0, checks)
            tried.append(RuleTrace(rule.label, rule.channel, matched, tuple(checks)))
            if matched:
                break
        return Explanation(raw, utm, self.match(utm), tuple(tried))

    def offline_channel(
        self, crm_source: str, detail_1: str = "", detail_2: str = "",
    ) -> ChannelMatch:
        """Channel of a contact's CRM original source (HubSpot category or Salesforce LeadSource).

        The first detail (HubSpot's hs_analytics_source_data_1: the search engine, the social
        network, the import name) becomes the subchannel, so offline touches are not a blur.
        """
        key = offline_key(crm_source)
        subchannel = detail_1.strip() or detail_2.strip() or None
        channel = self._offline.get(key)
        if channel is None:
            return ChannelMatch(
                self._unassigned, subchannel, f"offline_sources: no entry for {key!r}"
            )
        return ChannelMatch(channel, subchannel, f"offline_sources[{key!r}]")


def _compile(
    rule: ChannelRule, label: str, origin: RuleOrigin, categories: SourceCategories,
) -> CompiledRule:
    return CompiledRule(
        label=label, origin=origin, channel=rule.channel, subchannel=rule.subchannel,
        condition=compile_condition(rule.when, categories),
    )
