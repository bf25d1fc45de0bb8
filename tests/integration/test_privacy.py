"""Personal data: keyed email hashes, a quarantine without values, no address in the clear, session retention."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

from closedloop.config.hashkey import ENV_VAR, ensure_hash_key, resolve_hash_key
from closedloop.config.models import PrivacyConfig
from closedloop.connectors.hashing import current_hash_key, hash_email
from closedloop.errors import ConfigError
from closedloop.records import QuarantinedRecord
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.store.ingest import store_quarantine
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def test_the_same_address_hashes_the_same_under_one_key_and_differently_under_another() -> None:
    one, other = b"k" * 32, b"q" * 32
    assert hash_email("Ada@Example.com ", one) == hash_email("ada@example.com", one)
    assert hash_email("ada@example.com", one) != hash_email("ada@example.com", other)
    assert hash_email("ada@example.com", one) != hash_email("bob@example.com", one)
    assert len(hash_email("ada@example.com", one)) == 64


def test_the_key_file_is_made_once_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "hash.key"
    first = ensure_hash_key(path)
    assert ensure_hash_key(path) == first and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_hash_key(tmp_path / "another.key") != first  # a fresh random key each time one is made
    # The environment wins over the file; a key too short to be a secret is refused.
    assert resolve_hash_key(path, environ={ENV_VAR: "x" * 40}) == b"x" * 40
    assert resolve_hash_key(path, environ={}) == first
    with pytest.raises(ConfigError):
        resolve_hash_key(path, environ={ENV_VAR: "short"})
    (tmp_path / "empty.key").write_text("\n")
    with pytest.raises(ConfigError):
        ensure_hash_key(tmp_path / "empty.key")
    with pytest.raises(ConfigError):
        ensure_hash_key(tmp_path / "no" / "such" / "dir" / "hash.key")


def test_without_a_key_file_or_env_the_first_run_creates_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    key_file = tmp_path / "made-by-run.key"
    company = generate_company(contacts=20, seed=2, now=NOW, days=30)
    try:
        with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
            config = sandbox.config(store_url=f"sqlite:///{tmp_path / 's.db'}",
                                    privacy=PrivacyConfig(hash_key_file=str(key_file)))
            build_connectors(config)
            assert key_file.exists()
            assert current_hash_key() == key_file.read_text().strip().encode()
    finally:
        from closedloop.connectors.hashing import use_hash_key

        use_hash_key(os.environ.get(ENV_VAR, "closedloop-tests-email-hash-key").encode())


def _everything(engine: Engine) -> str:  # every row of every table, as text
    parts: list[str] = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(json.dumps([str(v) if not isinstance(v, dict | list) else v for v in row]))
    return "\n".join(parts)


def test_after_a_run_with_quarantined_records_no_table_or_log_holds_an_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    company = generate_company(contacts=120, seed=5, now=NOW)
    bad = company.contacts[3]
    caplog.set_level(logging.DEBUG)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        # Refused because of a date, and because an address sits where a timestamp should be.
        sandbox.hubspot.state.write("contacts", bad.id, {"createdate": "last tuesday"}, now=NOW)
        sandbox.hubspot.state.write("contacts", company.contacts[4].id,
                                    {"createdate": company.contacts[4].email}, now=NOW)
        url = f"sqlite:///{tmp_path / 'p.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        report = run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                          log=connectors.log, now=NOW)
    assert report.pulled["hubspot.contacts"]["quarantined"] == 2
    dump = _everything(engine)
    addresses = {c.email.lower() for c in company.contacts}
    assert bad.id in dump and "last tuesday" not in dump  # the record is there, its value is not
    assert not (set(EMAIL.findall(dump.lower())) & addresses)
    assert not EMAIL.findall(caplog.text)
    # The store's hashes do not reverse by hashing the CRM's own address list without the key.
    with Session(engine) as session:
        stored = set(session.execute(select(m.Contact.email_hash)).scalars()) - {None}  # type: ignore[call-overload]
    assert len(stored) > 100
    plain = {hashlib.sha256(a.encode()).hexdigest() for a in addresses}
    assert not stored & plain
    assert stored <= {hash_email(a) for a in addresses}  # with the key they do join
    engine.dispose()


def test_quarantine_keeps_values_only_when_the_config_opts_in(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    item = QuarantinedRecord("hubspot.contacts", "7", "createdate is not a timestamp: 'ada@example.com'",
                             {"id": "7", "properties": {"email": "ada@example.com", "createdate": "ada@example.com"}})
    with Session(engine) as session:
        store_quarantine(session, [item], now=NOW)
        session.commit()
        row = session.execute(select(m.QuarantinedRow)).scalars().one()
        assert row.payload == {"ids": {"id": "7"}, "fields": {
            "properties.email": {"type": "str", "length": 15}, "properties.createdate": {"type": "str", "length": 15}}}
        assert "@" not in row.reason and "createdate" in row.reason
        store_quarantine(session, [item], now=NOW, raw=True)
        session.commit()
        session.refresh(row)
        assert row.payload["properties"]["email"] == "ada@example.com" and row.times_seen == 2
    engine.dispose()


def test_sessions_older_than_the_retention_leave_on_the_next_run(tmp_path: Path) -> None:
    company = generate_company(contacts=60, seed=9, now=NOW, days=120)
    days = 45
    cutoff = NOW - timedelta(days=days)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'r.db'}"
        engine = open_store(url)
        keep_all = sandbox.config(store_url=url, privacy=PrivacyConfig(session_retention_days=None))
        connectors = build_connectors(keep_all, sleep=lambda _s: None)
        run_once(engine=engine, config=keep_all, sources=connectors.sources, writer=None, log=connectors.log, now=NOW)
        with Session(engine) as session:
            total = session.execute(select(func.count()).select_from(m.WebSession)).scalar_one()
            old = session.execute(select(func.count()).select_from(m.WebSession).where(
                m.WebSession.started_at < cutoff)).scalar_one()  # type: ignore[arg-type]
        assert 0 < old < total
        short = sandbox.config(store_url=url, privacy=PrivacyConfig(session_retention_days=days))
        run_once(engine=engine, config=short, sources=connectors.sources, writer=None, log=connectors.log,
                 now=NOW, pull=False)
    with Session(engine) as session:
        left = session.execute(select(m.WebSession.started_at)).scalars().all()  # type: ignore[call-overload]
        web = select(m.Touchpoint.occurred_at).where(m.Touchpoint.is_offline.is_(False))  # type: ignore[attr-defined]
        touches = session.execute(web).scalars().all()
    assert len(left) == total - old and min(left) >= cutoff
    assert touches and min(touches) >= cutoff  # the rebuild no longer sees the expired sessions
    engine.dispose()


def _seed_two_people(session: Session) -> None:
    """Two contacts with a row in every table that can name a person; they share one device."""
    t = NOW - timedelta(days=3)
    for cid, client, other in (("501", "11.11", "33.33"), ("502", "22.22", "33.33")):
        session.add(m.Contact(id=cid, created_at=t, updated_at=t, email_hash=f"h{cid}" * 8))
        for kind, value in (("ga_client_id", client), ("ga_client_id", other), ("email_hash", f"h{cid}" * 8),
                            ("gclid", f"G{cid}")):
            session.add(m.ContactIdentity(kind=kind, value=value, contact_id=cid))
        session.add(m.WebSession(key=f"{client}|k", client_id=client, started_at=t))
        clicked = {"gclid": f"G{cid}"}
        session.add(m.WebSession(key=f"click|{cid}", client_id=f"anon{cid}", started_at=t, click_ids=clicked))
        session.add(m.Touchpoint(id=int(cid), contact_id=cid, key=f"{client}|k", occurred_at=t, channel="Direct"))
        session.add(m.Conversion(id=f"contact_created:{cid}", kind="contact_created", contact_id=cid, occurred_at=t))
        session.add(m.Credit(conversion_id=f"contact_created:{cid}", touchpoint_id=int(cid), model="linear",
                             channel="Direct", weight=1.0))
        session.add(m.Deal(id=f"9{cid}", created_at=t, updated_at=t, amount=100.0, is_won=True))
        session.add(m.DealContact(deal_id=f"9{cid}", contact_id=cid))
        session.add(m.WritebackState(object_type="contacts", object_id=cid, property="closedloop_x", value="1"))
        session.add(m.QuarantinedRow(stream="hubspot.contacts", record_key=cid, reason="r", first_seen=t, last_seen=t))
    session.add(m.WebSession(key="33.33|k", client_id="33.33", started_at=t))  # the shared device
    session.commit()


def test_purge_removes_one_person_from_every_table_on_every_store(engine: Engine) -> None:
    from closedloop.store.purge import forget_person

    with Session(engine) as session:
        _seed_two_people(session)
    result = forget_person(engine, contact_ids=["501"])
    assert result.contact_ids == ["501"]
    assert result.removed == {"contact_identities": 4, "contacts": 1, "conversions": 1, "credits": 1,
                              "deal_contacts": 1, "quarantine": 1, "touchpoints": 1, "web_sessions": 2,
                              "writeback_state": 1}
    dump = _everything(engine)
    for needle in ("501", "11.11", "h501", "G501"):
        assert needle not in dump.replace("9501", ""), needle  # the deal 9501 is not the person's
    for needle in ("502", "22.22", "h502", "G502", "33.33"):  # the other person and the shared device stay
        assert needle in dump, needle
    assert forget_person(engine, contact_ids=["501"]).removed == {}


def test_a_run_keeps_raw_quarantine_values_when_the_config_opts_in(tmp_path: Path) -> None:
    company = generate_company(contacts=30, seed=4, now=NOW, days=30)
    bad = company.contacts[2]
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        sandbox.hubspot.state.write("contacts", bad.id, {"createdate": "last tuesday"}, now=NOW)
        url = f"sqlite:///{tmp_path / 'raw.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url, privacy=PrivacyConfig(quarantine_raw=True))
        connectors = build_connectors(config, sleep=lambda _s: None)
        run_once(engine=engine, config=config, sources=connectors.sources, writer=None, log=connectors.log, now=NOW)
    with Session(engine) as session:
        row = session.execute(select(m.QuarantinedRow).where(m.QuarantinedRow.record_key == bad.id)).scalars().one()  # type: ignore[arg-type]
    assert row.payload["properties"]["createdate"] == "last tuesday" and "'last tuesday'" in row.reason
    engine.dispose()
