"""GA4's default channel group against Google's published definitions, one row per case.

Expectations are read off support.google.com/analytics/answer/9756891: each row names the
definition (and, for ordering traps, the earlier rule that must win).  The mapper runs with no
aliases and Google's source list only, so what is tested is GA4's behaviour, not ours.
"""

from __future__ import annotations

import pytest

from closedloop.config.mapping import AliasConfig, MappingConfig
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.ga4_default import default_channel_rules, source_categories
from closedloop.mapping.utm import RawTouch

GA4_ONLY = ChannelMapper.from_config(
    MappingConfig(aliases=AliasConfig(source={}, medium={})),
    categories=source_categories(include_additions=False),
)

# (source, medium, campaign, expected channel, why)
CASES: list[tuple[str, str, str, str, str]] = [
    ("(direct)", "(none)", "", "Direct", "source (direct), medium (none)"),
    ("(direct)", "(not set)", "", "Direct", "source (direct), medium (not set)"),
    ("", "", "", "Direct", "no source and no medium is direct traffic"),
    ("google", "cpc", "PMax cross-network", "Cross-network",
     "campaign contains cross-network, before Paid Search"),
    ("facebook", "(none)", "brand-cross-network", "Cross-network",
     "medium irrelevant for Cross-network"),
    ("amazon", "cpc", "", "Paid Shopping", "shopping site + paid medium"),
    ("google shopping", "cpc", "", "Paid Shopping", "'Google Shopping' is on the shopping list"),
    ("google", "cpc", "Shopping - Brand", "Paid Shopping",
     "shopping campaign wins over Paid Search"),
    ("bing", "ppc", "eshop-spring", "Paid Shopping", "'eshop': 'e' is allowed before shop"),
    ("google", "cpc", "workshop-q3", "Paid Search",
     "'workshop': 'k' before shop is excluded by [^a-df-z]"),
    ("google", "cpc", "", "Paid Search", "search site + cpc"),
    ("bing", "paidsearch", "", "Paid Search", "paid.* medium"),
    ("duckduckgo", "retargeting", "", "Paid Search", "retargeting medium"),
    ("google", "cpm", "", "Paid Search", "cpm matches .*cp.* and Paid Search comes before Display"),
    ("facebook", "cpc", "", "Paid Social",
     "social site + paid medium: Paid Social before Organic Social"),
    ("linkedin", "paid-social", "", "Paid Social", "paid.* medium"),
    ("t.co", "ppc", "", "Paid Social", "t.co is on the social list"),
    ("youtube", "cpc", "", "Paid Video", "video site + paid medium"),
    ("vimeo", "cpv", "", "Paid Video", "cpv matches .*cp.*"),
    ("outbrain", "display", "", "Display", "medium display"),
    ("criteo", "banner", "", "Display", "medium banner"),
    ("adnetwork", "interstitial", "", "Display", "medium interstitial"),
    ("adnetwork", "cpm", "", "Display", "cpm on a site on no list: Display before Paid Other"),
    ("partner", "cpa", "", "Paid Other", "paid medium, source on no list"),
    ("taboola", "paid", "", "Paid Other", "paid.* medium"),
    ("etsy", "referral", "", "Organic Shopping", "shopping site, unpaid"),
    ("newsletter", "(not set)", "summer_shop", "Organic Shopping",
     "campaign '_shop' matches the shopping regex"),
    ("amazon", "organic", "", "Organic Shopping", "Organic Shopping comes before Organic Search"),
    ("facebook", "referral", "", "Organic Social", "social site before Referral"),
    ("newsletter", "social", "", "Organic Social", "medium social"),
    ("blog", "social media", "", "Organic Social", "medium 'social media'"),
    ("partner", "sm", "", "Organic Social", "medium sm"),
    ("youtube", "referral", "", "Organic Video", "video site, unpaid"),
    ("youtube", "organic", "", "Organic Video", "Organic Video comes before Organic Search"),
    ("partner", "video-promo", "", "Organic Video", "medium contains video"),
    ("google", "organic", "", "Organic Search", "search site"),
    ("bing", "referral", "", "Organic Search", "search site before Referral"),
    ("intranet", "organic", "", "Organic Search", "medium organic"),
    ("google", "email", "", "Organic Search", "search site before Email"),
    ("example.com", "referral", "", "Referral", "medium referral"),
    ("partner", "app", "", "Referral", "medium app"),
    ("partner", "link", "", "Referral", "medium link"),
    ("newsletter", "email", "", "Email", "medium email"),
    ("mailchimp", "e-mail", "", "Email", "medium e-mail"),
    ("email", "blast", "", "Email", "source email"),
    ("partner", "affiliate", "", "Affiliates", "medium affiliate"),
    ("spotify", "audio", "", "Audio", "medium audio"),
    ("sms", "blast", "", "SMS", "source sms"),
    ("twilio", "sms", "", "SMS", "medium sms"),
    ("app", "web-push", "", "Mobile Push Notifications", "medium ends with push"),
    ("app", "mobile", "", "Mobile Push Notifications", "medium contains mobile"),
    ("app", "notification-daily", "", "Mobile Push Notifications", "medium contains notification"),
    ("firebase", "blast", "", "Mobile Push Notifications", "source firebase"),
    ("foo", "bar", "", "Unassigned", "nothing matches"),
    ("newsletter", "(not set)", "", "Unassigned", "a source with no medium and no list entry"),
    ("Google", "CPC", "", "Paid Search", "matching ignores case"),
    ("Facebook", " Referral ", "", "Organic Social", "matching ignores spacing"),
]


@pytest.mark.parametrize(("source", "medium", "campaign", "expected", "why"), CASES,
                         ids=[f"{c[0]}/{c[1]}/{c[2]}" for c in CASES])
def test_channel_matches_google_definition(
    source: str, medium: str, campaign: str, expected: str, why: str,
) -> None:
    match = GA4_ONLY.assign(RawTouch(source=source, medium=medium, campaign=campaign))
    assert match.channel == expected, why


def test_every_published_channel_is_covered_by_the_table() -> None:
    published = {rule.channel for rule in default_channel_rules()} | {"Unassigned"}
    assert published == {case[3] for case in CASES}
    assert len(published) == 19


def test_rules_are_in_googles_order() -> None:
    assert [rule.name for rule in default_channel_rules()] == [
        "Direct", "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video",
        "Display", "Paid Other", "Organic Shopping", "Organic Social", "Organic Video",
        "Organic Search", "Referral", "Email", "Affiliates", "Audio", "SMS",
        "Mobile Push Notifications",
    ]


@pytest.mark.parametrize(("site", "category"), [
    ("google", "search"), ("bing", "search"), ("baidu", "search"), ("yandex.ru", "search"),
    ("facebook", "social"), ("instagram", "social"), ("linkedin", "social"), ("t.co", "social"),
    ("reddit", "social"), ("tiktok", "social"), ("amazon", "shopping"), ("ebay", "shopping"),
    ("igshopping", "shopping"), ("youtube", "video"), ("vimeo", "video"), ("twitch", "video"),
    ("google+", "social"),
])
def test_well_known_sites_are_in_their_category(site: str, category: str) -> None:
    assert site in source_categories(include_additions=False)[category]


def test_source_lists_are_disjoint_and_complete() -> None:
    cats = source_categories(include_additions=False)
    sizes = {name: len(sites) for name, sites in cats.items()}
    assert sizes == {"search": 131, "social": 590, "shopping": 52, "video": 46}
    names = list(cats)
    for i, left in enumerate(names):
        for right in names[i + 1:]:
            assert not cats[left] & cats[right], (left, right)


def test_subchannel_is_the_source() -> None:
    match = GA4_ONLY.assign(RawTouch(source="LinkedIn", medium="cpc"))
    assert (match.channel, match.subchannel, match.rule) == (
        "Paid Social", "linkedin", "GA4 default: Paid Social")
