"""A session on a device the forms never saw still reaches its contact through a click id on the URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from closedloop.sandbox.company import Company, SyntheticContact, SyntheticSession
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=20)


def test_gclid_on_the_landing_url_ties_a_second_device(tmp_path: Path) -> None:
    contact = SyntheticContact(
        id="501", email="ada@example.com", created_at=T0 + timedelta(days=2), updated_at=T0 + timedelta(days=2),
        lifecycle_stage="lead", ga_client_ids=["111.222"], original_source="PAID_SEARCH", gclid="Cj0KCQ-ada",
    )
    sessions = [
        # The ad click on a phone: its client id never reached a form, the gclid did.
        SyntheticSession("999.888", T0, "google", "cpc", "brand", "/pricing",
                         landing_query="utm_source=google&gclid=Cj0KCQ-ada&email=ada%40example.com"),
        SyntheticSession("111.222", T0 + timedelta(days=2), "(direct)", "(none)", "(not set)", "/signup"),
        # Someone else entirely.
        SyntheticSession("777.666", T0 + timedelta(days=1), "google", "cpc", "brand", "/pricing",
                         landing_query="gclid=Cj0KCQ-other"),
    ]
    company = Company(contacts=[contact], sessions=sessions)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'ids.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        report = run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                          log=connectors.log, now=NOW)
        crm = sandbox.hubspot.state.get_properties("contacts", "501")
    assert report.status == "ok", report.errors
    with Session(engine) as session:
        stored = {s.client_id: s for s in session.execute(select(m.WebSession)).scalars()}
        touches = session.execute(select(m.Touchpoint).where(m.Touchpoint.contact_id == "501")
                                  .order_by(m.Touchpoint.occurred_at)).scalars().all()
    assert stored["999.888"].landing_page == "/pricing"  # the query string itself is not kept
    assert stored["999.888"].click_ids == {"gclid": "Cj0KCQ-ada"}
    assert [t.channel for t in touches] == ["Paid Search", "Direct"]
    assert report.rebuild is not None and report.rebuild.sessions_matched == 2
    assert crm["closedloop_first_touch_channel"] == "Paid Search"
    engine.dispose()


def test_a_client_id_on_two_contacts_is_reported_not_guessed(tmp_path: Path) -> None:
    shared_device = "555.444"
    contacts = [
        SyntheticContact(id=str(600 + i), email=f"p{i}@example.com", created_at=T0 + timedelta(days=3),
                         updated_at=T0 + timedelta(days=3), lifecycle_stage="lead",
                         ga_client_ids=[shared_device, f"{i}.own"], original_source="DIRECT_TRAFFIC")
        for i in range(2)
    ]
    sessions = [
        SyntheticSession(shared_device, T0, "google", "organic", "(organic)", "/blog"),
        SyntheticSession("0.own", T0 + timedelta(days=1), "newsletter", "email", "weekly", "/news"),
    ]
    with start_sandbox(Company(contacts=contacts, sessions=sessions), now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'amb.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        report = run_once(engine=engine, config=config, sources=connectors.sources, writer=None,
                          log=connectors.log, now=NOW)
    assert report.rebuild is not None
    assert report.rebuild.ambiguous_identities == 1
    assert "600, 601" in report.rebuild.ambiguous_examples[0]
    assert (report.rebuild.sessions_matched, report.rebuild.sessions_anonymous) == (1, 1)
    with Session(engine) as session:
        owners = {t.contact_id: t.channel for t in session.execute(
            select(m.Touchpoint).where(m.Touchpoint.is_offline.is_(False))).scalars()}  # type: ignore[attr-defined]
    assert owners == {"600": "Email"}  # the shared device's organic visit went to nobody
    engine.dispose()
