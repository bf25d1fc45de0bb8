"""Admin channel rules, UTM hygiene and aliases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.config.mapping import AliasConfig, MappingConfig
from closedloop.connectors.ga4.landing import split_landing_page
from closedloop.mapping.aliases import AliasTables
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.text import normalise_value
from closedloop.mapping.utm import RawTouch, click_ids_in_url, normalise
from closedloop.records import CLICK_ID_PARAMETERS


def mapper(rules: list[dict[str, Any]], **extra: Any) -> ChannelMapper:
    config = MappingConfig.model_validate({"channel_rules": rules, **extra})
    return ChannelMapper.from_config(config)


# --- UTM hygiene ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("  Facebook ", "facebook"),
    ("Spring%20Sale", "spring sale"),
    ("spring+sale", "spring sale"),
    ("Spring%2BSale", "spring sale"),
    ("spring%2520sale", "spring sale"),
    ("a \t  b", "a b"),
    ("google+", "google+"),
    ("c++", "c++"),
    ("%E2%82%AC100", "€100"),
])
def test_normalise_value(raw: str, expected: str) -> None:
    assert normalise_value(raw) == expected


def test_raw_values_are_kept_beside_the_normalised_ones() -> None:
    raw = RawTouch(source="FB", medium="Paid+Social", campaign="Q3%20Launch")
    utm = normalise(raw, AliasTables.from_config(AliasConfig()))
    assert (utm.source, utm.medium, utm.campaign) == ("facebook", "paid social", "q3 launch")
    assert utm.raw is raw


def test_empty_source_and_medium_follow_ga4_spelling() -> None:
    assert (normalise(RawTouch()).source, normalise(RawTouch()).medium) == ("(direct)", "(none)")
    assert normalise(RawTouch(source="partner")).medium == "(not set)"


def test_click_ids_come_from_the_touch_and_the_landing_page() -> None:
    utm = normalise(RawTouch(landing_page="https://x.io/p?utm_source=a&GCLID=abc&fbclid=",
                             click_ids=frozenset({"MSCLKID"})))
    assert utm.click_ids == {"gclid", "msclkid"}  # an empty fbclid is no click
    assert click_ids_in_url("not a url") == frozenset()


# --- aliases -------------------------------------------------------------------------------

def test_alias_tables_map_spellings_to_canonical() -> None:
    aliases = AliasTables.from_config(AliasConfig(
        source={"facebook": ["fb", "facebook.com", "m.facebook.com", "*.facebook.com"]},
        medium={"cpc": ["ppc", "paidsearch"]},
    ))
    assert aliases.canonical("source", "m.facebook.com") == "facebook"
    assert aliases.canonical("source", "web.facebook.com") == "facebook"  # wildcard alias
    assert aliases.canonical("source", "facebook") == "facebook"
    assert aliases.canonical("source", "instagram") == "instagram"
    assert aliases.canonical("medium", "paidsearch") == "cpc"
    assert aliases.canonical("campaign", "fb") == "fb"  # tables are per field


def test_aliases_apply_before_rules() -> None:
    m = mapper(
        [{"name": "Meta", "channel": "Paid Social", "subchannel": "Meta",
          "when": {"all": [{"field": "source", "equals": "facebook"},
                           {"field": "medium", "equals": "cpc"}]}}],
        aliases={"source": {"facebook": ["fb", "m.facebook.com"]}, "medium": {"cpc": ["ppc"]}},
    )
    match = m.assign(RawTouch(source="M.Facebook.com", medium="PPC"))
    assert (match.channel, match.subchannel, match.rule) == (
        "Paid Social", "Meta", "channel_rules[0] 'Meta'")


# --- operators -----------------------------------------------------------------------------

@pytest.mark.parametrize(("condition", "touch", "expected"), [
    ({"field": "source", "equals": "LinkedIn"}, RawTouch(source="linkedin"), True),
    ({"field": "source", "equals": "linkedin"}, RawTouch(source="linkedin-ads"), False),
    ({"field": "source", "in": ["a", "B"]}, RawTouch(source="b"), True),
    ({"field": "campaign", "like": "webinar-*"}, RawTouch(campaign="Webinar-2024-Q3"), True),
    ({"field": "campaign", "like": "webinar-*"}, RawTouch(campaign="old-webinar-1"), False),
    ({"field": "campaign", "like": "q?-launch"}, RawTouch(campaign="q3-launch"), True),
    ({"field": "campaign", "contains": "brand"}, RawTouch(campaign="search_Brand_uk"), True),
    ({"field": "campaign", "regex": r"^(nb|nonbrand)_"}, RawTouch(campaign="NB_shoes"), True),
    ({"field": "campaign", "regex": r"^(nb|nonbrand)_"}, RawTouch(campaign="x_nb_shoes"), False),
    ({"field": "landing_page", "contains": "/pricing"},
     RawTouch(landing_page="https://acme.io/Pricing?x=1"), True),
    ({"field": "referrer", "like": "*.linkedin.com*"},
     RawTouch(referrer="https://www.linkedin.com/feed"), True),
    ({"field": "click_id", "equals": "gclid"}, RawTouch(click_ids=frozenset({"gclid"})), True),
    ({"field": "click_id", "equals": "gclid"}, RawTouch(click_ids=frozenset({"fbclid"})), False),
    ({"field": "click_id", "present": True}, RawTouch(landing_page="/?msclkid=1"), True),
    ({"field": "click_id", "present": True}, RawTouch(), False),
    ({"field": "term", "present": False}, RawTouch(term=""), True),
    ({"field": "source", "in_category": "social"}, RawTouch(source="reddit"), True),
    ({"field": "source", "equals": "x", "not": True}, RawTouch(source="y"), True),
    ({"any": [{"field": "source", "equals": "a"}, {"field": "source", "equals": "b"}]},
     RawTouch(source="b"), True),
    ({"all": [{"field": "source", "equals": "a"}, {"field": "medium", "equals": "b"}]},
     RawTouch(source="a", medium="c"), False),
    ({"all": [{"field": "source", "equals": "a"},
              {"any": [{"field": "medium", "equals": "b"}, {"field": "medium", "equals": "c"}]}]},
     RawTouch(source="a", medium="c"), True),
    ({"not": True, "any": [{"field": "source", "equals": "a"}]}, RawTouch(source="a"), False),
])
def test_condition_operators(condition: dict[str, Any], touch: RawTouch, expected: bool) -> None:
    m = mapper([{"name": "r", "channel": "Hit", "when": condition}], default_channel_group="off")
    assert (m.assign(touch).channel == "Hit") is expected


def test_first_match_wins_and_admin_rules_run_before_ga4() -> None:
    m = mapper([
        {"name": "Webinars", "channel": "Events",
         "when": {"field": "campaign", "like": "webinar*"}},
        {"name": "All LinkedIn", "channel": "LinkedIn",
         "when": {"field": "source", "equals": "linkedin"}},
    ])
    webinar = RawTouch(source="linkedin", medium="cpc", campaign="webinar-1")
    assert m.assign(webinar).channel == "Events"
    assert m.assign(RawTouch(source="linkedin", medium="cpc")).channel == "LinkedIn"
    assert m.assign(RawTouch(source="google", medium="cpc")).rule == "GA4 default: Paid Search"
    assert m.rule_names()[:2] == ["channel_rules[0] 'Webinars'", "channel_rules[1] 'All LinkedIn'"]
    assert len(m.rule_names()) == 2 + 18


def test_admin_rules_can_replace_ga4() -> None:
    m = mapper([{"name": "Paid", "channel": "Paid", "when": {"field": "medium", "equals": "cpc"}}],
               default_channel_group="off", unassigned_channel="Other")
    assert m.assign(RawTouch(source="google", medium="cpc")).channel == "Paid"
    assert m.assign(RawTouch(source="google", medium="organic")).channel == "Other"
    assert m.rule_names() == ["channel_rules[0] 'Paid'"]


def test_rule_without_conditions_catches_everything() -> None:
    m = mapper([{"name": "catch-all", "channel": "Everything"}])
    assert m.assign(RawTouch(source="(direct)", medium="(none)")).channel == "Everything"


def test_subchannel_template_fills_normalised_values() -> None:
    m = mapper([{"name": "LI", "channel": "Paid Social", "subchannel": "LinkedIn / {campaign}",
                 "when": {"field": "source", "equals": "linkedin"}}])
    touch = RawTouch(source="linkedin", campaign="Q3%20ABM")
    assert m.assign(touch).subchannel == "LinkedIn / q3 abm"


def test_assign_is_memoised_per_distinct_raw_touch() -> None:
    m = mapper([])
    first = m.assign(RawTouch(source="google", medium="cpc"))
    assert m.assign(RawTouch(source="google", medium="cpc")) is first


# --- offline sources -----------------------------------------------------------------------

@pytest.mark.parametrize(("crm_source", "channel"), [
    ("PAID_SEARCH", "Paid Search"), ("ORGANIC_SEARCH", "Organic Search"),
    ("PAID_SOCIAL", "Paid Social"), ("SOCIAL_MEDIA", "Organic Social"),
    ("EMAIL_MARKETING", "Email"), ("REFERRALS", "Referral"), ("DIRECT_TRAFFIC", "Direct"),
    ("OFFLINE", "Offline"), ("AI_REFERRALS", "AI Referral"), ("Trade Show", "Events"),
    ("partner-referral", "Referral"), ("Something Else", "Unassigned"),
])
def test_offline_sources_map_to_channels(crm_source: str, channel: str) -> None:
    assert mapper([]).offline_channel(crm_source).channel == channel


def test_offline_detail_becomes_subchannel_and_is_configurable() -> None:
    m = mapper([], offline_sources={"OFFLINE": "Import", "LinkedIn Lead Gen": "Paid Social"})
    match = m.offline_channel("OFFLINE", "IMPORT", "list-2024")
    assert (match.channel, match.subchannel, match.rule) == (
        "Import", "IMPORT", "offline_sources['OFFLINE']")
    assert m.offline_channel("linkedin lead gen").channel == "Paid Social"


# --- explain -------------------------------------------------------------------------------

def test_explain_lists_rules_in_order_and_why_they_failed() -> None:
    m = mapper([{"name": "LI Ads", "channel": "Paid Social",
                 "when": {"all": [{"field": "source", "equals": "linkedin"},
                                  {"field": "medium", "equals": "cpc"}]}}])
    explanation = m.explain(RawTouch(source="google", medium="cpc"))
    labels = [t.label for t in explanation.tried]
    assert labels[0] == "channel_rules[0] 'LI Ads'"
    assert labels[-1] == "GA4 default: Paid Search" and explanation.tried[-1].matched
    assert not any(t.matched for t in explanation.tried[:-1])
    reason = explanation.tried[0].first_failure()
    assert reason is not None and reason.description == "all of:"
    leaves = [c for c in explanation.tried[0].checks if c.depth == 1]
    assert [(c.description, c.passed) for c in leaves] == [
        ("source 'google' equals 'linkedin'", False), ("medium 'cpc' equals 'cpc'", True)]
    assert explanation.match == m.assign(RawTouch(source="google", medium="cpc"))


def test_explain_when_nothing_matches_tries_every_rule() -> None:
    m = mapper([])
    explanation = m.explain(RawTouch(source="foo", medium="bar"))
    assert len(explanation.tried) == len(m.rule_names())
    assert explanation.match.channel == "Unassigned"


# --- invariants ----------------------------------------------------------------------------

touch_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["%20", "+", "%2B", "%25", "a+b", "google+", "(direct)", "FB", "%E2%82", "?gclid=1"])
touches = st.builds(
    RawTouch, source=touch_text, medium=touch_text, campaign=touch_text, content=touch_text,
    term=touch_text, landing_page=touch_text, referrer=touch_text,
    click_ids=st.frozensets(st.sampled_from(["gclid", "FBCLID", " msclkid ", ""]), max_size=3),
)
ALIASES = AliasTables.from_config(AliasConfig())
DEFAULT_MAPPER = ChannelMapper.from_config(MappingConfig())


@settings(max_examples=300, deadline=None)
@given(touches)
def test_normalise_is_idempotent(raw: RawTouch) -> None:
    once = normalise(raw, ALIASES)
    assert normalise(once.as_raw(), ALIASES) == once


@settings(max_examples=300, deadline=None)
@given(touches)
def test_assign_never_raises_and_agrees_with_explain(raw: RawTouch) -> None:
    match = DEFAULT_MAPPER.assign(raw)
    assert match.channel
    assert DEFAULT_MAPPER.explain(raw).match == match


def _split_by_parsing_every_query(url: str) -> tuple[str, dict[str, str]]:
    from urllib.parse import parse_qsl

    path, _, query = url.partition("?")
    if not query:
        return url, {}
    ids: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in CLICK_ID_PARAMETERS and value.strip() and key.lower() not in ids:
            ids[key.lower()] = value.strip()
    return path, ids


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["gclid", "GCLID", "fbclid", "utm_source", "%67clid", "g%63lid", "x", "msclkid", "li_fat_id"]
            ),
            st.text(alphabet="abc%20+&=;", max_size=6),
        ),
        max_size=5,
    ),
    st.sampled_from(["/pricing", "", "/a?b"]),
)
def test_split_landing_page_skips_parsing_only_where_no_click_id_can_be(
    pairs: list[tuple[str, str]], path: str
) -> None:
    url = path + "?" + "&".join(f"{k}={v}" for k, v in pairs)
    assert split_landing_page(url) == _split_by_parsing_every_query(url)
