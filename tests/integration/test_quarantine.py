"""A bad API record is quarantined and counted; the run goes on and loses nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from closedloop.cli import app
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_bad_records_are_quarantined_counted_and_the_rest_arrives(tmp_path: Path) -> None:
    company = generate_company(contacts=120, seed=5, now=NOW)
    bad_contact, bad_deal = company.contacts[3].id, company.deals[0].id
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        sandbox.hubspot.state.write("contacts", bad_contact, {"createdate": "last tuesday"}, now=NOW)
        sandbox.hubspot.state.write("deals", bad_deal, {"amount": "a lot"}, now=NOW)
        url = f"sqlite:///{tmp_path / 'q.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        runs = []
        for _ in range(2):
            connectors = build_connectors(config, sleep=lambda _s: None)
            runs.append(run_once(engine=engine, config=config, sources=connectors.sources,
                                 writer=connectors.writer, log=connectors.log, now=NOW))
    first = runs[0]
    assert first.status == "ok", first.errors
    assert first.pulled["hubspot.contacts"]["quarantined"] == 1
    assert first.pulled["hubspot.deals"]["quarantined"] == 1
    with Session(engine) as session:
        rows = {(q.stream, q.record_key): q for q in session.execute(select(m.QuarantinedRow)).scalars()}
        contacts = session.execute(select(func.count()).select_from(m.Contact)).scalar_one()
        deals = session.execute(select(func.count()).select_from(m.Deal)).scalar_one()
    assert set(rows) == {("hubspot.contacts", bad_contact), ("hubspot.deals", bad_deal)}
    assert "createdate" in rows[("hubspot.contacts", bad_contact)].reason
    # Ids, the field's type and length: never the values (privacy.quarantine_raw is off by default).
    payload = rows[("hubspot.contacts", bad_contact)].payload
    assert payload["fields"]["properties.createdate"] == {"type": "str", "length": len("last tuesday")}
    assert payload["ids"]["id"] == bad_contact and "@" not in str(payload) and "last tuesday" not in str(payload)
    assert "amount" in rows[("hubspot.deals", bad_deal)].reason
    assert contacts == len(company.contacts) - 1 and deals == len(company.deals) - 1
    engine.dispose()
    config_file = tmp_path / "closedloop.yaml"
    config_file.write_text(f"hubspot:\n  access_token: ${{T}}\nstore:\n  url: {url}\n")
    listed = CliRunner().invoke(app, ["quarantine", "--config", str(config_file)], env={"T": "x", "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "2 quarantined record(s)" in listed.output and "createdate" in listed.output
