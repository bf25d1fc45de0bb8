"""What the GA4 emulator serves: one property's sessions and imported cost as fact tables.

Loading a ``Company`` turns its sessions (``WebSessionRecord``s with ground truth) and spend
into columns of report dimensions and metrics, in the property's time zone, once; the server
in ``sandbox.ga4`` only answers reports over them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from closedloop.sandbox.company import Company, SyntheticSession, SyntheticSpend
from closedloop.sandbox.ga4_report import METRIC_TYPES, SESSION_DIMENSIONS, FactTable

_SEARCH_ENGINES = frozenset({"google", "bing", "yahoo", "baidu", "duckduckgo", "ecosia", "yandex"})
_SOCIAL_SITES = frozenset({"facebook", "fb", "m.facebook.com", "facebook.com", "l.facebook.com",
                           "linkedin", "linkedin.com", "lnkd.in", "t.co", "twitter", "x.com",
                           "instagram", "reddit", "reddit.com", "youtube"})


def default_channel_group(source: str, medium: str) -> str:
    """A compact version of GA4's default channel group rules (first match wins)."""
    source, medium = source.strip().lower(), medium.strip().lower()
    if source == "(direct)" and medium in ("(none)", "(not set)"):
        return "Direct"
    paid = medium.startswith("paid") or "cp" in medium or medium in ("ppc", "retargeting")
    if paid and source in _SEARCH_ENGINES:
        return "Paid Search"
    if paid and source in _SOCIAL_SITES:
        return "Paid Social"
    if paid:
        return "Paid Other"
    if medium == "organic" or source in _SEARCH_ENGINES:
        return "Organic Search"
    if source in _SOCIAL_SITES or medium in ("social", "social-network", "social-media", "sm"):
        return "Organic Social"
    if medium in ("email", "e-mail", "e_mail", "e mail") or source in ("email", "e-mail"):
        return "Email"
    if medium == "referral":
        return "Referral"
    if medium in ("display", "banner", "expandable", "interstitial", "cpm"):
        return "Display"
    return "Unassigned"


class GA4State:
    """One GA4 property's data, indexed for reports: sessions and imported cost as fact tables."""

    def __init__(
        self, *, property_id: str = "123456789", time_zone: str = "America/New_York",
        client_id_dimension: str = "customUser:ga_client_id", currency_code: str = "USD",
    ) -> None:
        self.property_id = property_id
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self.client_id_dimension = client_id_dimension
        self.currency_code = currency_code
        # Extra ResponseMetaData every report answers with, to make GA4's warnings happen:
        # {"subjectToThresholding": True, "dataLossFromOtherRow": True,
        #  "samplingMetadatas": [{"samplesReadCount": "5000", "samplingSpaceSize": "20000"}]}.
        self.report_metadata: dict[str, Any] = {}
        self.version = 0
        self.lock = threading.Lock()
        self.sessions = _session_table([], self.zone, client_id_dimension)
        self.spend = _spend_table([], client_id_dimension)

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset((*SESSION_DIMENSIONS, self.client_id_dimension))

    def load_company(self, company: Company) -> None:
        """Serve this company's sessions and spend (replacing what was loaded before)."""
        sessions = _session_table(company.sessions, self.zone, self.client_id_dimension)
        spend = _spend_table(company.spend, self.client_id_dimension)
        with self.lock:
            self.sessions, self.spend = sessions, spend
            self.currency_code = company.currency_code
            self.version += 1

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


def _session_table(sessions: list[SyntheticSession], zone: ZoneInfo, client_dim: str) -> FactTable:
    """Columns of session facts, sorted by local start; repeated strings are shared, not copied."""
    offsets: dict[int, timedelta] = {}
    minute_text: dict[datetime, tuple[str, str, str]] = {}
    interned: dict[str, str] = {}
    facts = []
    for s in sessions:
        hour = int(s.started_at.timestamp()) // 3600
        offset = offsets.get(hour)
        if offset is None:
            offset = offsets[hour] = s.started_at.astimezone(zone).utcoffset() or timedelta(0)
        local = (s.started_at.astimezone(UTC) + offset).replace(
            second=0, microsecond=0, tzinfo=None)
        texts = minute_text.get(local)
        if texts is None:
            day = f"{local.year:04d}{local.month:02d}{local.day:02d}"
            texts = minute_text[local] = (day, f"{day}{local.hour:02d}",
                                          f"{day}{local.hour:02d}{local.minute:02d}")
        facts.append((texts[2], s.client_id, texts, s))
    facts.sort(key=lambda f: (f[0], f[1]))
    columns: dict[str, list[str]] = {name: [] for name in (*SESSION_DIMENSIONS, client_dim)}
    metrics: dict[str, list[float]] = {name: [] for name in METRIC_TYPES}

    def share(text: str) -> str:
        return interned.setdefault(text, text)

    for _, client_id, (day, day_hour, day_minute), s in facts:
        columns["date"].append(day)
        columns["dateHour"].append(day_hour)
        columns["dateHourMinute"].append(day_minute)
        columns[client_dim].append(client_id)
        _append_source_columns(columns, share, s.source, s.medium, s.campaign,
                               google_ads="gclid=" in s.landing_query)
        columns["landingPage"].append(share(s.landing_page))
        columns["landingPagePlusQueryString"].append(
            f"{s.landing_page}?{s.landing_query}" if s.landing_query else share(s.landing_page))
        metrics["sessions"].append(1.0)
        metrics["engagedSessions"].append(float(s.engaged_sessions))
        metrics["keyEvents"].append(float(s.key_events))
        metrics["advertiserAdCost"].append(0.0)
    return FactTable(columns, metrics)


def _append_source_columns(
    columns: dict[str, list[str]], share: Callable[[str], str], source: str, medium: str,
    campaign: str, *, google_ads: bool,
) -> None:
    columns["sessionSource"].append(source)
    columns["sessionMedium"].append(medium)
    columns["sessionSourceMedium"].append(share(f"{source} / {medium}"))
    columns["sessionCampaignName"].append(campaign)
    columns["sessionDefaultChannelGroup"].append(share(default_channel_group(source, medium)))
    columns["sessionGoogleAdsCampaignName"].append(campaign if google_ads else "(not set)")


def _spend_table(spend: list[SyntheticSpend], client_dim: str) -> FactTable:
    """Imported cost: one fact per campaign and day; session-only dimensions are (not set)."""
    interned: dict[str, str] = {}
    columns: dict[str, list[str]] = {name: [] for name in (*SESSION_DIMENSIONS, client_dim)}
    metrics: dict[str, list[float]] = {name: [] for name in METRIC_TYPES}
    for item in sorted(spend, key=lambda x: (x.day, x.source, x.medium, x.campaign)):
        day = item.day.strftime("%Y%m%d")
        for name in ("dateHour", "dateHourMinute", "landingPage", "landingPagePlusQueryString",
                     client_dim):
            columns[name].append("(not set)")
        columns["date"].append(day)
        google_ads = item.source == "google" and item.medium == "cpc"
        _append_source_columns(columns, lambda t: interned.setdefault(t, t), item.source,
                               item.medium, item.campaign, google_ads=google_ads)
        for name in ("sessions", "engagedSessions", "keyEvents"):
            metrics[name].append(0.0)
        metrics["advertiserAdCost"].append(item.cost)
    return FactTable(columns, metrics)
