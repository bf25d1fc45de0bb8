"""The marketing mix of the synthetic company: channels, their raw UTM spellings, and their pull.

Raw values are deliberately messy where real ones are (Facebook's aliases, stray case and
spaces, a junk medium) so that UTM hygiene and ordered channel rules have something to do.
``win_factor`` makes channels differ in deal quality, so attribution models have a signal to find.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    key: str
    hubspot_source: str  # HubSpot hs_analytics_source category of a lead whose first touch is this
    weight: float  # share of first touches
    sources: tuple[str, ...]  # raw utm_source spellings, the first is canonical
    mediums: tuple[str, ...]  # raw utm_medium spellings, the first is canonical
    campaigns: tuple[str, ...]
    landing_pages: tuple[str, ...]
    win_factor: float = 1.0
    cost_per_click: float = 0.0  # > 0 marks a paid channel that has daily spend
    google_ads: bool = False  # sessions carry a gclid and a Google Ads campaign name
    tagged: bool = True  # landing URLs carry utm_* parameters
    alias_rate: float = 0.0  # how often a non-canonical spelling is used


_CONTENT = ("/", "/product", "/pricing", "/blog/multi-touch-attribution", "/blog/utm-hygiene",
            "/blog/closed-loop-reporting", "/customers", "/integrations/hubspot")

CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec("google_cpc_brand", "PAID_SEARCH", 7, ("google",), ("cpc",),
                ("brand_search_us", "brand_search_emea"), ("/", "/pricing", "/demo"),
                win_factor=1.35, cost_per_click=2.1, google_ads=True),
    ChannelSpec("google_cpc_nonbrand", "PAID_SEARCH", 10, ("google",), ("cpc",),
                ("nb_marketing_attribution", "nb_crm_analytics", "competitor_conquest"),
                ("/lp/attribution", "/lp/crm-analytics", "/lp/compare"),
                win_factor=0.8, cost_per_click=7.5, google_ads=True),
    ChannelSpec("bing_cpc", "PAID_SEARCH", 3, ("bing",), ("cpc",),
                ("brand_search_bing", "nb_attribution_bing"), ("/", "/lp/attribution"),
                win_factor=1.0, cost_per_click=3.2),
    ChannelSpec("google_organic", "ORGANIC_SEARCH", 17, ("google",), ("organic",), ("(organic)",),
                _CONTENT, win_factor=1.1, tagged=False),
    ChannelSpec("bing_organic", "ORGANIC_SEARCH", 3, ("bing",), ("organic",), ("(organic)",),
                _CONTENT, win_factor=1.0, tagged=False),
    ChannelSpec("linkedin_paid", "PAID_SOCIAL", 8, ("linkedin", "LinkedIn", "linkedin.com"),
                ("paid_social", "cpc"), ("abm_enterprise", "thought_leadership", "retargeting_li"),
                ("/lp/enterprise", "/lp/guide-attribution"), win_factor=1.25,
                cost_per_click=9.0, alias_rate=0.25),
    ChannelSpec("facebook_paid", "PAID_SOCIAL", 5,
                ("facebook", "fb", "m.facebook.com", "Facebook ", " FACEBOOK"),
                ("paid_social", "paid social", "Paid_Social", "cpc"),
                ("lookalike_saas", "retargeting_fb"), ("/lp/guide-attribution", "/"),
                win_factor=0.55, cost_per_click=1.4, alias_rate=0.35),
    ChannelSpec("social_organic", "SOCIAL_MEDIA", 3, ("linkedin.com", "t.co", "reddit.com"),
                ("referral",), ("(referral)",), _CONTENT, win_factor=0.9, tagged=False,
                alias_rate=0.5),
    ChannelSpec("email", "EMAIL_MARKETING", 2, ("newsletter", "hubspot"), ("email", "hs_email"),
                ("monthly_newsletter", "product_update", "nurture_sequence"),
                ("/blog/closed-loop-reporting", "/webinar/attribution-101", "/pricing"),
                win_factor=1.2, alias_rate=0.4),
    ChannelSpec("referral", "REFERRALS", 6,
                ("g2.com", "capterra.com", "partner-consulting.com", "revopsagency.io"),
                ("referral",), ("(referral)",), ("/", "/customers", "/pricing"),
                win_factor=1.45, tagged=False, alias_rate=0.7),
    ChannelSpec("direct", "DIRECT_TRAFFIC", 12, ("(direct)",), ("(none)",), ("(direct)",),
                ("/", "/pricing", "/login", "/demo"), win_factor=1.0, tagged=False),
    ChannelSpec("webinar", "OTHER_CAMPAIGNS", 1.5, ("webinar-platform", "zoom"), ("webinar",),
                ("attribution_101_webinar",), ("/webinar/attribution-101",), win_factor=1.3,
                alias_rate=0.3),
    ChannelSpec("junk", "OTHER_CAMPAIGNS", 1.5, ("adnetwork-x", "partner_promo"),
                ("banner123", "display-test"), ("spring_promo",), ("/", "/lp/compare"),
                win_factor=0.5, alias_rate=0.5),
)

BY_KEY = {channel.key: channel for channel in CHANNELS}

# Later visits of someone already known lean on email and direct: they get newsletters.
NURTURE_WEIGHTS = {"email": 45, "direct": 25, "google_organic": 15, "linkedin_paid": 8,
                   "google_cpc_brand": 7}

OFFLINE_SOURCES = (
    ("IMPORT", "saastr_2024_booth_scans"),
    ("IMPORT", "partner_webinar_registrants"),
    ("CRM_UI", "field_event_nyc"),
    ("INTEGRATION", "zoom_webinar_sync"),
)
OFFLINE_WIN_FACTOR = 1.15

FIRST_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
               "Kira", "Liam", "Maya", "Noor", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
LAST_NAMES = ("Adler", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Gupta", "Hansen", "Ito",
              "Jones", "Khan", "Lopez", "Meyer", "Nakamura", "Okafor", "Patel", "Rossi", "Silva")
COMPANY_WORDS = ("Acme", "Blue", "Cloud", "Data", "Ever", "Forge", "Grid", "Helio", "Iron",
                 "Juniper", "Kite", "Lumen", "Metro", "Nova", "Orbit", "Pine", "Quartz", "River")
COMPANY_SUFFIXES = ("Labs", "Systems", "Analytics", "Software", "Group", "Health", "Logistics")
