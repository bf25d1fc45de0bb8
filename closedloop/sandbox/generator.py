"""A seeded, believable B2B company: web journeys, leads, deals through pipelines, ad spend.

Everything flows from one ``random.Random(seed)`` and the ``now`` passed in, so the same inputs
give the same ``Company`` on every machine (no global random state, no clock, no I/O).

The shape follows what attribution needs to be tested on: multi-session journeys over weeks,
the lead created *during* a form-fill session on the device whose client id the form captured,
a second device for some people, visits after the lead (nurture, demo requests), offline leads
with no web trail, anonymous visitors whose paths never convert, and channels that differ in
deal quality so that models have a real signal to recover.
"""

from __future__ import annotations

import base64
import bisect
import functools
import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticSession,
    SyntheticSpend,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.generator_catalog import (
    BY_KEY,
    CHANNELS,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    FIRST_NAMES,
    LAST_NAMES,
    NURTURE_WEIGHTS,
    OFFLINE_SOURCES,
    OFFLINE_WIN_FACTOR,
    ChannelSpec,
)

OFFLINE_SHARE = 0.12
MULTI_DEVICE_SHARE = 0.2
DEAL_BASE_RATE = 0.2
WIN_BASE_RATE = 0.36
CO_CONTACT_SHARE = 0.15
_HOUR = 3600
_DAY = 86400

DEFAULT_PIPELINE = SyntheticPipeline("default", "Sales Pipeline", [
    SyntheticStage("appointmentscheduled", "Appointment Scheduled", 0, 0.2, False),
    SyntheticStage("qualifiedtobuy", "Qualified To Buy", 1, 0.4, False),
    SyntheticStage("presentationscheduled", "Presentation Scheduled", 2, 0.6, False),
    SyntheticStage("decisionmakerboughtin", "Decision Maker Bought-In", 3, 0.8, False),
    SyntheticStage("contractsent", "Contract Sent", 4, 0.9, False),
    SyntheticStage("closedwon", "Closed Won", 5, 1.0, True),
    SyntheticStage("closedlost", "Closed Lost", 6, 0.0, True),
])
PARTNER_PIPELINE = SyntheticPipeline("partner", "Partner Pipeline", [
    SyntheticStage("partnerreferred", "Partner Referred", 0, 0.3, False),
    SyntheticStage("partnerproposal", "Joint Proposal", 1, 0.7, False),
    SyntheticStage("partnerclosedwon", "Closed Won", 2, 1.0, True),
    SyntheticStage("partnerclosedlost", "Closed Lost", 3, 0.0, True),
])
_LIFECYCLE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer")


@dataclass(slots=True)
class _Journey:
    """What the deal step needs to know about a contact beyond the contact record itself."""

    contact: SyntheticContact
    devices: list[str]
    win_factor: float
    first_channel: str
    last_seen: int  # epoch seconds of the latest session or event
    sessions: list[SyntheticSession] = field(default_factory=list)


class _Builder:
    def __init__(self, rng: random.Random, start: int, end: int, zone: ZoneInfo) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.zone = zone
        self.sessions: list[SyntheticSession] = []
        self._channel_cum = list(itertools.accumulate(c.weight for c in CHANNELS))
        self._nurture = [BY_KEY[k] for k in NURTURE_WEIGHTS]
        self._nurture_cum = list(itertools.accumulate(NURTURE_WEIGHTS.values()))
        self._anonymous = [c for c in CHANNELS if c.key != "email"]
        self._anonymous_cum = list(itertools.accumulate(c.weight for c in self._anonymous))

    # ---- draws ------------------------------------------------------------------------------

    def _pick(self, items: Sequence[ChannelSpec], cum: Sequence[float]) -> ChannelSpec:
        """``rng.choices`` for one item without its per-call setup (this runs ~10^6 times)."""
        return items[bisect.bisect(cum, self.rng.random() * cum[-1])]

    def first_touch(self) -> ChannelSpec:
        return self._pick(CHANNELS, self._channel_cum)

    def nurture_touch(self) -> ChannelSpec:
        return self._pick(self._nurture, self._nurture_cum)

    def anonymous_touch(self) -> ChannelSpec:
        return self._pick(self._anonymous, self._anonymous_cum)

    def client_id(self, first_seen: int) -> str:
        """GA4's client id is the ``_ga`` cookie without its ``GA1.1.`` prefix: random.timestamp."""
        return f"{self.rng.randrange(100_000_000, 2_147_483_647)}.{first_seen}"

    def spelling(self, options: tuple[str, ...], alias_rate: float) -> str:
        if len(options) > 1 and self.rng.random() < alias_rate:
            return self.rng.choice(options[1:])
        return options[0]

    def gclid(self) -> str:
        return "Cj0KCQ" + base64.urlsafe_b64encode(self.rng.randbytes(24)).decode()

    # ---- sessions ---------------------------------------------------------------------------

    def session(
        self, channel: ChannelSpec, client_id: str, at: int, contact_id: str, *,
        landing_page: str | None = None, key_events: int = 0, engaged: bool | None = None,
    ) -> SyntheticSession:
        rng = self.rng
        source = self.spelling(channel.sources, channel.alias_rate)
        medium = self.spelling(channel.mediums, channel.alias_rate)
        campaign = rng.choice(channel.campaigns)
        page = landing_page or rng.choice(channel.landing_pages)
        query = ""
        click_ids: dict[str, str] = {}
        if channel.tagged:
            query = (f"utm_source={_quoted(source)}&utm_medium={_quoted(medium)}"
                     f"&utm_campaign={_quoted(campaign)}")
            if channel.google_ads:
                click_ids = {"gclid": self.gclid()}
                query += f"&gclid={click_ids['gclid']}"
        session = SyntheticSession(
            client_id=client_id,
            started_at=datetime.fromtimestamp(at, UTC),
            source=source, medium=medium, campaign=campaign, landing_page=page,
            engaged_sessions=int(rng.random() < 0.62 if engaged is None else engaged),
            key_events=key_events, click_ids=click_ids, landing_query=query, contact_id=contact_id,
            channel=channel.key,
        )
        self.sessions.append(session)
        return session

    # ---- contacts ---------------------------------------------------------------------------

    def contact(self, index: int) -> _Journey:
        rng = self.rng
        contact_id = str(1001 + index)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        org = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
        domain = org.lower().replace(" ", "") + ".com"
        contact = SyntheticContact(
            id=contact_id, email=f"{first.lower()}.{last.lower()}{index}@{domain}",
            created_at=datetime.fromtimestamp(self.start, UTC),
            updated_at=datetime.fromtimestamp(self.start, UTC),
            lifecycle_stage="lead", ga_client_ids=[],
            extra={"firstname": first, "lastname": last, "company": org},
        )
        if rng.random() < OFFLINE_SHARE:
            created = rng.randrange(self.start + _HOUR, self.end - 30 * 60)
            kind, detail = rng.choice(OFFLINE_SOURCES)
            contact.created_at = datetime.fromtimestamp(created, UTC)
            contact.original_source, contact.original_source_detail_1 = "OFFLINE", kind
            contact.original_source_detail_2 = detail
            return _Journey(contact, [], OFFLINE_WIN_FACTOR, "offline", created)
        return self._web_contact(contact)

    def _web_contact(self, contact: SyntheticContact) -> _Journey:
        rng = self.rng
        created = rng.randrange(self.start + _HOUR, self.end - 30 * 60)
        form_start = created - rng.randint(60, 15 * 60)
        visits = rng.choices(range(1, 11), weights=(30, 21, 15, 10, 8, 6, 4, 3, 2, 1))[0]
        span = min(rng.expovariate(1 / (12 * _DAY)), 75 * _DAY)
        earliest = max(self.start, int(form_start - span))
        times = [*sorted(rng.randint(earliest, form_start) for _ in range(visits - 1)), form_start]
        channels = [self.first_touch()]
        for _ in range(visits - 1):
            channels.append(channels[-1] if rng.random() < 0.35 else self.first_touch())
        two_devices = rng.random() < MULTI_DEVICE_SHARE
        if two_devices and visits == 1:
            visits = 2
            times.insert(0, rng.randint(earliest, form_start))
            channels.append(self.first_touch())
        # The first visit is on the first device; with two, each is used at least once.
        assigned = [0] + [rng.randint(0, 1) if two_devices else 0 for _ in range(visits - 1)]
        if two_devices and 1 not in assigned:
            assigned[-1] = 1
        devices = [self.client_id(times[0])]
        if two_devices:
            devices.append(self.client_id(times[assigned.index(1)]))
        journey_sessions = []
        for position, (at, channel) in enumerate(zip(times, channels, strict=True)):
            is_form = position == visits - 1
            journey_sessions.append(self.session(
                channel, devices[assigned[position]], at, contact.id,
                key_events=1 if is_form else 0, engaged=True if is_form else None,
            ))
        form = journey_sessions[-1]
        form_channel = channels[-1]
        form_device = devices[assigned[-1]]
        contact.ga_client_ids = [form_device] + [d for d in devices if d != form_device]
        contact.created_at = datetime.fromtimestamp(created, UTC)
        first_channel = channels[0]
        first = journey_sessions[0]
        contact.original_source = first_channel.hubspot_source
        contact.original_source_detail_1 = first.source.strip().lower()
        contact.original_source_detail_2 = (first.campaign if first_channel.tagged
                                            else first.landing_page)
        if form_channel.tagged:
            contact.utm_source, contact.utm_medium = form.source, form.medium
            contact.utm_campaign = form.campaign
            if form_channel.google_ads:
                contact.gclid = form.click_ids["gclid"]
        factors = [c.win_factor for c in channels]
        win_factor = (0.4 * first_channel.win_factor + 0.4 * form_channel.win_factor
                      + 0.2 * sum(factors) / len(factors))
        journey = _Journey(contact, devices, win_factor, first_channel.key, created,
                           journey_sessions)
        self._nurture_sessions(journey, created)
        return journey

    def _nurture_sessions(self, journey: _Journey, created: int) -> None:
        rng = self.rng
        if rng.random() >= 0.55:
            return
        count = rng.choices((1, 2, 3, 4, 5), weights=(40, 25, 15, 12, 8))[0]
        horizon = min(self.end, created + 90 * _DAY)
        if horizon <= created + 60:
            return
        for at in sorted(rng.randint(created + 60, horizon) for _ in range(count)):
            session = self.session(self.nurture_touch(), rng.choice(journey.devices), at,
                                   journey.contact.id)
            journey.sessions.append(session)
            journey.last_seen = max(journey.last_seen, at)

    def anonymous_visitor(self) -> None:
        rng = self.rng
        visits = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        at = rng.randrange(self.start, self.end)
        client_id = self.client_id(at)
        for _ in range(visits):
            self.session(self.anonymous_touch(), client_id, at, "", engaged=rng.random() < 0.45)
            at += rng.randint(_HOUR, 20 * _DAY)
            if at >= self.end:
                break

    # ---- deals ------------------------------------------------------------------------------

    def deal(self, deal_id: int, journey: _Journey, co_contact: SyntheticContact | None,
             created: int) -> SyntheticDeal:
        rng = self.rng
        partner_share = 0.5 if journey.first_channel == "referral" else 0.08
        pipeline = PARTNER_PIPELINE if rng.random() < partner_share else DEFAULT_PIPELINE
        open_stages = [s.id for s in pipeline.stages if not s.is_closed]
        won_stage, lost_stage = (s.id for s in pipeline.stages if s.is_closed)
        won = rng.random() < min(0.8, max(0.05, WIN_BASE_RATE * journey.win_factor))
        reached = len(open_stages) if won else rng.randint(1, len(open_stages))
        path = [*open_stages[:reached], won_stage if won else lost_stage]
        history = [SyntheticStageChange(path[0], datetime.fromtimestamp(created, UTC))]
        at = created
        closed_at = None
        for stage in path[1:]:
            at += int((rng.expovariate(1 / 6) + 0.5) * _DAY)
            if at >= self.end:
                break
            history.append(SyntheticStageChange(stage, datetime.fromtimestamp(at, UTC)))
            if stage in (won_stage, lost_stage):
                closed_at = history[-1].at
        amount = min(120_000.0, max(5_000.0, rng.lognormvariate(math.log(21_000), 0.75)))
        contact_ids = [journey.contact.id] + ([co_contact.id] if co_contact else [])
        company = journey.contact.extra["company"]
        return SyntheticDeal(
            id=str(deal_id),
            name=f"{company} - {rng.choice(('New business', 'Pilot', 'Expansion'))}",
            pipeline=pipeline.id, amount=round(amount, -1),
            created_at=history[0].at, updated_at=history[-1].at, stage_history=history,
            contact_ids=contact_ids, closed_at=closed_at,
        )

    # ---- spend ------------------------------------------------------------------------------

    def spend(self) -> list[SyntheticSpend]:
        """Daily cost per paid campaign: clicks (sessions plus untracked ones) times a noisy CPC."""
        offsets: dict[int, timedelta] = {}
        clicks: Counter[tuple[date, str, str]] = Counter()
        for session in self.sessions:
            channel = BY_KEY[session.channel]
            if channel.cost_per_click <= 0:
                continue
            hour = int(session.started_at.timestamp()) // _HOUR
            offset = offsets.get(hour)
            if offset is None:
                offset = offsets[hour] = (session.started_at.astimezone(self.zone).utcoffset()
                                          or timedelta(0))
            clicks[((session.started_at + offset).date(), channel.key, session.campaign)] += 1
        first_day = datetime.fromtimestamp(self.start, self.zone).date()
        last_day = datetime.fromtimestamp(self.end - 1, self.zone).date()
        out: list[SyntheticSpend] = []
        day = first_day
        while day <= last_day:
            for channel in CHANNELS:
                if channel.cost_per_click <= 0:
                    continue
                for campaign in channel.campaigns:
                    tracked = clicks[(day, channel.key, campaign)]
                    paid_clicks = tracked * 1.15 + self.rng.uniform(0.5, 2.0)
                    cost = paid_clicks * channel.cost_per_click * self.rng.uniform(0.85, 1.2)
                    out.append(SyntheticSpend(day, channel.key, channel.sources[0],
                                              channel.mediums[0], campaign, round(cost, 2)))
            day += timedelta(days=1)
        return out


@functools.cache
def _quoted(value: str) -> str:
    return quote(value, safe="")


def generate_company(
    *, contacts: int = 2000, seed: int = 7, now: datetime, days: int = 180,
    anonymous_per_contact: float = 2.0, time_zone: str = "America/New_York",
    property_id: str = "123456789",
) -> Company:
    """Build the company as of ``now`` (timezone-aware), covering the ``days`` before it."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if contacts < 0 or days < 1 or anonymous_per_contact < 0:
        raise ValueError("contacts and anonymous_per_contact must be >= 0 and days >= 1")
    rng = random.Random(seed)
    end = int(now.timestamp())
    builder = _Builder(rng, end - days * _DAY, end, ZoneInfo(time_zone))
    journeys = [builder.contact(i) for i in range(contacts)]
    for _ in range(round(contacts * anonymous_per_contact)):
        builder.anonymous_visitor()
    deals = _deals(builder, journeys)
    for journey in journeys:
        _settle_contact(journey, builder.rng)
    builder.sessions.sort(key=lambda s: s.started_at)
    return Company(
        contacts=[j.contact for j in journeys], deals=deals, sessions=builder.sessions,
        pipelines=[DEFAULT_PIPELINE, PARTNER_PIPELINE], ga4_property_id=property_id,
        ga4_time_zone=time_zone, spend=builder.spend(),
    )


def _deals(builder: _Builder, journeys: list[_Journey]) -> list[SyntheticDeal]:
    rng = builder.rng
    by_created = sorted(journeys, key=lambda j: j.contact.created_at)
    created_times = [j.contact.created_at for j in by_created]
    deals: list[SyntheticDeal] = []
    for journey in journeys:
        if rng.random() >= DEAL_BASE_RATE * (0.6 + 0.4 * journey.win_factor):
            continue
        created = int(journey.contact.created_at.timestamp()
                      + rng.expovariate(1 / (12 * _DAY)) + 2 * _HOUR)
        if created >= builder.end:
            continue
        co_contact = None
        if rng.random() < CO_CONTACT_SHARE:
            earlier = bisect.bisect_left(created_times, datetime.fromtimestamp(created, UTC))
            candidate = by_created[rng.randrange(earlier)].contact if earlier else None
            if candidate is not None and candidate.id != journey.contact.id:
                co_contact = candidate
        if journey.devices and rng.random() < 0.6:  # the demo request that opened the deal
            demo_at = created - rng.randint(5 * 60, 50 * 60)
            if demo_at > int(journey.contact.created_at.timestamp()):
                session = builder.session(builder.nurture_touch(), rng.choice(journey.devices),
                                          demo_at, journey.contact.id, landing_page="/demo",
                                          key_events=1, engaged=True)
                journey.sessions.append(session)
        deal = builder.deal(1_000_001 + len(deals), journey, co_contact, created)
        deals.append(deal)
        for contact in [journey.contact] + ([co_contact] if co_contact else []):
            contact.lifecycle_stage = _raise_stage(
                contact.lifecycle_stage, "customer" if _is_won(deal) else "opportunity")
            contact.updated_at = max(contact.updated_at, deal.updated_at)
    return deals


def _is_won(deal: SyntheticDeal) -> bool:
    return deal.stage_history[-1].stage in ("closedwon", "partnerclosedwon")


def _raise_stage(current: str, new: str) -> str:
    return max(current, new, key=_LIFECYCLE_ORDER.index)


def _settle_contact(journey: _Journey, rng: random.Random) -> None:
    """Pick the pre-deal lifecycle stage and make ``updated_at`` cover every recorded change."""
    contact = journey.contact
    if contact.lifecycle_stage not in ("opportunity", "customer"):
        contact.lifecycle_stage = rng.choices(_LIFECYCLE_ORDER[:4], weights=(15, 50, 25, 10))[0]
    last = max([contact.created_at, contact.updated_at] + [s.started_at for s in journey.sessions])
    contact.updated_at = last
    _lifecycle_dates(contact, last, rng)


def _lifecycle_dates(contact: SyntheticContact, last: datetime, rng: random.Random) -> None:
    """HubSpot's ``hs_lifecyclestage_<stage>_date``: when each stage up to the current one was entered.

    The lead stage is entered at creation; later stages follow days apart, never after the
    contact's last change.  Offline contacts start as subscribers or leads just the same.
    """
    reached = _LIFECYCLE_ORDER[: _LIFECYCLE_ORDER.index(contact.lifecycle_stage) + 1]
    at = contact.created_at
    for stage in reached:
        if stage not in ("subscriber", "lead"):
            at = min(last, at + timedelta(hours=rng.uniform(6, 10 * 24)))
        contact.extra[f"hs_lifecyclestage_{stage}_date"] = _hubspot_instant(at)


def _hubspot_instant(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
