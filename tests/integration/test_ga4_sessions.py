"""The generator's sessions are the records the GA4 connector reads back: one session type end to end.

``SyntheticSession`` extends ``WebSessionRecord``; served by the GA4 emulator and pulled by the
real SDK, every session must come back as the same record (to the minute GA4 reports), with
its metrics and the click ids parsed off the landing URL.  A bug in the connector's row
parsing, the emulator's serving or the generator's click ids breaks this.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from closedloop.config.models import GA4Config
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.ga4.source import STREAM, GA4Source
from closedloop.records import WebSessionRecord
from closedloop.sandbox.company import Company
from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.generator import generate_company

# Thirty days without a clock change in the property's zone: GA4 reports local minutes with no
# offset, so a session in the hour repeated when clocks go back cannot be told from one an hour
# earlier (the connector reads such a minute as the first of the two).
NOW = datetime(2026, 7, 20, 15, 30, tzinfo=UTC)
Totals = tuple[int, int, float, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=200, seed=5, now=NOW, days=30)


@pytest.fixture(scope="module")
def sandbox(company: Company) -> Iterator[GA4Sandbox]:
    state = GA4State(property_id=company.ga4_property_id, time_zone=company.ga4_time_zone)
    state.load_company(company)
    with GA4Sandbox(state, now=lambda: NOW) as running:
        yield running


def _totals(records: list[WebSessionRecord]) -> dict[str, Totals]:
    """By key: sessions, engaged sessions, key events, click ids (two visits in one minute are one row)."""
    out: dict[str, Totals] = {}
    for r in records:
        sessions, engaged, key_events, clicks = out.get(r.key, (0, 0, 0.0, ()))
        merged = tuple(sorted({*clicks, *r.click_ids.items()}))
        out[r.key] = (sessions + r.sessions, engaged + r.engaged_sessions, key_events + r.key_events, merged)
    return out


def test_every_generated_session_comes_back_as_the_same_record(sandbox: GA4Sandbox, company: Company) -> None:
    config = GA4Config(property_id=company.ga4_property_id, base_url=sandbox.url, initial_days=60)
    pulled = [
        record
        for batch in GA4Source(config, ApiCallLog(), sleep=lambda _s: None).pull(STREAM, None, now=NOW)
        for record in batch.records
        if isinstance(record, WebSessionRecord)
    ]
    expected = [s for s in company.sessions if s.started_at <= NOW]
    assert any(s.click_ids for s in expected) and any(s.engaged_sessions for s in expected)
    got = _totals(pulled)
    assert got == _totals(expected)
    assert sum(t[0] for t in got.values()) == len(expected)
