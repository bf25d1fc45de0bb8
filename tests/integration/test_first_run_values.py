"""A first run on a portal that already holds closedloop values writes only the real differences.

Store A runs the loop against the sandbox portal (which then holds every value); a FRESH store B
against the same portal reads those values with its pull (no extra call) and must write
nothing, counting every value as already right; a value changed in the CRM by hand is the one
value B writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from closedloop.config.models import Config
from closedloop.report.terminal import writeback_table
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import RunningSandbox, start_sandbox
from closedloop.store.engine import open_store
from closedloop.store.models import SyncRun
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once
from closedloop.sync.writeback import desired_values

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Portal:
    sandbox: RunningSandbox
    tmp: Path

    def store(self, name: str) -> tuple[Engine, Config]:
        url = f"sqlite:///{self.tmp / name}.db"
        return open_store(url), self.sandbox.config(store_url=url)

    def run(self, engine: Engine, config: Config) -> RunReport:
        connectors = build_connectors(config, sleep=lambda _s: None)
        return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                        log=connectors.log, now=NOW)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    company = generate_company(contacts=120, seed=23, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        yield Portal(sandbox, tmp_path)


def _value_count(engine: Engine, config: Config) -> int:
    return sum(len(values) for chunk in desired_values(engine, config) for _t, _i, values in chunk)


def _write_calls(report: RunReport) -> int:
    return sum(sum(n.values()) for endpoint, n in report.api_calls.items() if "batch/update" in endpoint)


def test_a_fresh_store_on_a_prefilled_portal_writes_nothing_and_counts_every_value(portal: Portal) -> None:
    engine_a, config_a = portal.store("a")
    first = portal.run(engine_a, config_a)
    assert first.writeback is not None and first.writeback.properties_written > 0
    assert first.writeback.already_right == 0  # the portal held no closedloop value yet

    engine_b, config_b = portal.store("b")
    fresh = portal.run(engine_b, config_b)
    assert fresh.status == "ok" and fresh.writeback is not None
    assert fresh.writeback.properties_written == 0 and fresh.writeback.objects_written == 0
    assert _write_calls(fresh) == 0
    total = _value_count(engine_b, config_b)
    assert total == _value_count(engine_a, config_a) and total > 0
    assert fresh.writeback.already_right == total
    shown = Console(width=120, record=True)  # and `closedloop run` prints it
    shown.print(writeback_table(fresh.stats()["writeback"]))
    assert re.search(rf"values already right in the CRM\D*{total:,}", shown.export_text())
    with Session(engine_b) as session:  # the run record says so too
        stored = session.get(SyncRun, fresh.run_id)
        assert stored is not None and stored.stats["writeback"]["already_right"] == total
    # Reading the values cost no call of its own: the same endpoints as store A's pull.
    def pulls(report: RunReport) -> dict[str, int]:
        return {e: n.get("calls", sum(n.values())) for e, n in report.api_calls.items()
                if "batch/update" not in e and "/properties/" not in e}

    assert pulls(fresh) == pulls(first) and pulls(first)
    engine_a.dispose()
    engine_b.dispose()


def test_a_value_changed_in_the_crm_is_the_only_one_written(portal: Portal) -> None:
    engine_a, config_a = portal.store("a")
    portal.run(engine_a, config_a)
    state = portal.sandbox.hubspot.state
    contact = next(c.id for c in portal.sandbox.company.contacts
                   if (state.get_properties("contacts", c.id).get("closedloop_touch_count") or "0") != "0")
    right = state.get_properties("contacts", contact)["closedloop_touch_count"]
    state.write("contacts", contact, {"closedloop_touch_count": "999"}, now=NOW)

    engine_b, config_b = portal.store("b")
    fresh = portal.run(engine_b, config_b)
    assert fresh.writeback is not None
    assert fresh.writeback.properties_written == 1
    assert fresh.writeback.by_property == {"contacts.closedloop_touch_count": 1}
    assert fresh.writeback.already_right == _value_count(engine_b, config_b) - 1
    assert state.get_properties("contacts", contact)["closedloop_touch_count"] == right
    # Store B now remembers what it wrote: its next run sends nothing.
    again = portal.run(engine_b, config_b)
    assert again.writeback is not None and again.writeback.properties_written == 0
    engine_a.dispose()
    engine_b.dispose()


def test_salesforce_a_fresh_store_on_an_org_with_values_writes_nothing(tmp_path: Path) -> None:
    """The Closedloop_*__c fields are read with the Lead/Contact/Opportunity queries once describe
    shows them (the first store's run created and granted them)."""
    from closedloop.sandbox.launch_salesforce import start_salesforce_sandbox

    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    company = generate_company(contacts=150, seed=29, now=now)
    with start_salesforce_sandbox(company, now=now) as sandbox:
        reports = []
        for name in ("a", "b"):
            url = f"sqlite:///{tmp_path / name}.db"
            engine, config = open_store(url), sandbox.config(store_url=url)
            connectors = build_connectors(config, sleep=lambda _s: None)
            reports.append(run_once(engine=engine, config=config, sources=connectors.sources,
                                    writer=connectors.writer, log=connectors.log, now=now))
            total = _value_count(engine, config)
            engine.dispose()
    first, fresh = reports
    assert first.status == fresh.status == "ok", first.errors + fresh.errors
    assert first.writeback is not None and first.writeback.properties_written > 0
    assert fresh.writeback is not None
    assert fresh.writeback.properties_written == 0
    assert not any("composite" in e or "ingest" in e for e in fresh.api_calls)
    assert fresh.writeback.already_right == total > 0

    def reads(report: RunReport) -> dict[str, int]:  # queries and describes: the fields cost no call
        return {e: sum(n.values()) for e, n in report.api_calls.items() if "query" in e or "describe" in e}

    # The first run also re-described after creating the fields and looked up the permission set.
    assert reads(fresh).keys() == reads(first).keys() and reads(first)
    assert all(n <= reads(first)[e] for e, n in reads(fresh).items())
