"""The synthetic company: deterministic, and shaped the way attribution needs (see generator.py)."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.sandbox.company import Company, SyntheticSession
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.generator_catalog import BY_KEY

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
WON = {"closedwon", "partnerclosedwon"}
LOST = {"closedlost", "partnerclosedlost"}


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=2000, seed=7, now=NOW)


def sessions_by_contact(company: Company) -> dict[str, list[SyntheticSession]]:
    out: dict[str, list[SyntheticSession]] = defaultdict(list)
    for session in company.sessions:
        if session.contact_id:
            out[session.contact_id].append(session)
    for sessions in out.values():
        sessions.sort(key=lambda s: s.started_at)
    return out


def check_invariants(company: Company, now: datetime, days: int) -> None:
    start = now - timedelta(days=days)
    by_contact = sessions_by_contact(company)
    contacts = {c.id: c for c in company.contacts}
    assert len(contacts) == len(company.contacts), "contact ids are unique"
    assert all(c.id.isdigit() for c in company.contacts)
    for session in company.sessions:
        assert start <= session.started_at <= now
        assert session.started_at.tzinfo is not None
    for contact in company.contacts:
        assert start <= contact.created_at <= contact.updated_at <= now
        sessions = by_contact.get(contact.id, [])
        if contact.original_source == "OFFLINE":
            assert contact.ga_client_ids == [] and sessions == []
            continue
        # The lead was created during a form-fill session on the device its form captured.
        form = [s for s in sessions if s.started_at <= contact.created_at]
        assert form, "a web lead has sessions up to its creation"
        last = form[-1]
        assert last.key_events >= 1
        assert last.client_id == contact.ga_client_ids[0]
        assert timedelta(0) < contact.created_at - last.started_at <= timedelta(minutes=15)
        assert {s.client_id for s in sessions} == set(contact.ga_client_ids)
        # Original source is the first session's channel.
        assert contact.original_source == BY_KEY[form[0].channel].hubspot_source
    for deal in company.deals:
        times = [change.at for change in deal.stage_history]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert deal.created_at == times[0] and deal.updated_at == times[-1] <= now
        for contact_id in deal.contact_ids:
            assert contacts[contact_id].created_at <= deal.created_at
        stages = [change.stage for change in deal.stage_history]
        closed = [s for s in stages if s in WON | LOST]
        assert closed in ([], [stages[-1]]), "a closed stage is only ever the last one"
        assert (deal.closed_at is not None) == bool(closed)
        if deal.closed_at is not None:
            assert deal.closed_at == times[-1]
        assert 5_000 <= deal.amount <= 120_000


def test_same_seed_and_now_give_the_same_company() -> None:
    first = generate_company(contacts=300, seed=11, now=NOW)
    second = generate_company(contacts=300, seed=11, now=NOW)
    other = generate_company(contacts=300, seed=12, now=NOW)
    assert first == second
    assert first.sessions != other.sessions


def test_counts_and_shares(company: Company) -> None:
    contacts = company.contacts
    assert len(contacts) == 2000
    web = [c for c in contacts if c.original_source != "OFFLINE"]
    assert 0.07 < 1 - len(web) / len(contacts) < 0.18  # offline leads
    multi_device = sum(len(c.ga_client_ids) == 2 for c in web) / len(web)
    assert 0.15 < multi_device < 0.25
    anonymous = {s.client_id for s in company.sessions if not s.contact_id}
    assert len(anonymous) > len(contacts)  # visitors who never convert
    primary = {d.contact_ids[0] for d in company.deals}
    assert 0.14 < len(primary) / len(contacts) < 0.24
    assert any(len(d.contact_ids) == 2 for d in company.deals)
    assert {s.original_source for s in contacts} >= {
        "PAID_SEARCH", "ORGANIC_SEARCH", "PAID_SOCIAL", "SOCIAL_MEDIA", "EMAIL_MARKETING",
        "REFERRALS", "DIRECT_TRAFFIC", "OTHER_CAMPAIGNS", "OFFLINE"}
    assert any(c.gclid for c in contacts)


def test_time_ordering_invariants(company: Company) -> None:
    check_invariants(company, NOW, 180)


def test_sessions_continue_after_the_lead(company: Company) -> None:
    by_contact = sessions_by_contact(company)
    after = [c for c in company.contacts
             if any(s.started_at > c.created_at for s in by_contact.get(c.id, []))]
    assert len(after) > len(company.contacts) // 4


def test_won_lost_open_mix_and_channel_signal() -> None:
    won = lost = 0
    wins: dict[bool, list[bool]] = {True: [], False: []}
    for seed in (1, 2, 3):
        company = generate_company(contacts=3000, seed=seed, now=NOW)
        first_channel = {cid: s[0].channel for cid, s in sessions_by_contact(company).items()}
        for deal in company.deals:
            stage = deal.stage_history[-1].stage
            if stage in WON | LOST:
                won += stage in WON
                lost += stage in LOST
                channel = first_channel.get(deal.contact_ids[0])
                factor = BY_KEY[channel].win_factor if channel in BY_KEY else 1.0
                if factor >= 1.3 or factor <= 0.6:  # best (brand, referral) vs worst (fb, junk)
                    wins[factor >= 1.3].append(stage in WON)
        assert any(d.closed_at is None for d in company.deals), "some deals are still open"
        customers = {c.id for c in company.contacts if c.lifecycle_stage == "customer"}
        won_contacts = {i for d in company.deals if d.stage_history[-1].stage in WON
                        for i in d.contact_ids}
        assert customers == won_contacts
    assert 0.28 < won / (won + lost) < 0.45
    rate = {k: sum(v) / len(v) for k, v in wins.items()}
    assert rate[True] > rate[False] + 0.1


def test_spend_covers_every_paid_campaign_every_day(company: Company) -> None:
    zone = ZoneInfo(company.ga4_time_zone)
    first = (NOW - timedelta(days=180)).astimezone(zone).date()
    last = NOW.astimezone(zone).date()
    days = {s.day for s in company.spend}
    assert min(days) == first and max(days) == last and len(days) == (last - first).days + 1
    keys = [(s.day, s.source, s.medium, s.campaign) for s in company.spend]
    assert len(keys) == len(set(keys))
    assert all(s.cost > 0 and BY_KEY[s.channel].cost_per_click > 0 for s in company.spend)
    paid_campaigns = {s.campaign for s in company.sessions if BY_KEY[s.channel].cost_per_click}
    assert paid_campaigns <= {s.campaign for s in company.spend}


def test_messy_utms_exist(company: Company) -> None:
    sources = {s.source for s in company.sessions}
    mediums = {s.medium for s in company.sessions}
    assert {"fb", "m.facebook.com"} & sources
    assert any(s != s.strip() or s != s.lower() for s in sources if "facebook" in s.lower())
    assert {"hs_email", "email", "banner123", "(none)"} <= mediums


def test_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_company(contacts=5, now=datetime(2025, 1, 1))


def test_two_thousand_contacts_generate_quickly() -> None:
    started = time.perf_counter()
    generate_company(contacts=2000, seed=3, now=NOW)
    assert time.perf_counter() - started < 2.0


@settings(max_examples=25, deadline=None)
@given(
    contacts=st.integers(0, 40),
    seed=st.integers(0, 2**32),
    days=st.integers(1, 90),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.just(UTC)),
)
def test_invariants_hold_for_any_small_company(
    contacts: int, seed: int, days: int, now: datetime,
) -> None:
    company = generate_company(contacts=contacts, seed=seed, now=now, days=days)
    assert len(company.contacts) == contacts
    check_invariants(company, now, days)
    assert company == generate_company(contacts=contacts, seed=seed, now=now, days=days)
