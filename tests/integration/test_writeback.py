"""Write-back through the real SDK: exact diffs, a mapping change without a new pull, crash reconcile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from closedloop.config.mapping import MappingConfig
from closedloop.config.models import Config
from closedloop.connectors.base import PropertyUpdate
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import RunningSandbox, start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.derive import rebuild
from closedloop.sync.factory import Connectors, build_connectors
from closedloop.sync.interrupt import Interrupted
from closedloop.sync.pipeline import RunReport, run_once
from closedloop.sync.writeback import dry_run, plan_changes, run_writeback
from closedloop.sync.writeback_state import PropertyChange, mark_in_flight

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HUBSPOT_BOOKKEEPING = {"lastmodifieddate", "hs_lastmodifieddate"}  # HubSpot moves these on any write


@dataclass
class World:
    sandbox: RunningSandbox
    engine: Engine
    config: Config

    def run(self, config: Config | None = None, *, pull: bool = True) -> RunReport:
        cfg = config or self.config
        connectors = build_connectors(cfg, sleep=lambda _s: None)
        return run_once(engine=self.engine, config=cfg, sources=connectors.sources, writer=connectors.writer,
                        log=connectors.log, now=NOW, pull=pull)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    company = generate_company(contacts=150, seed=11, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'wb.db'}"
        engine = open_store(url)
        yield World(sandbox, engine, sandbox.config(store_url=url))
        engine.dispose()


def crm(world: World, object_type: str) -> dict[str, dict[str, str | None]]:
    ids = [c.id for c in world.sandbox.company.contacts] if object_type == "contacts" else [
        d.id for d in world.sandbox.company.deals]
    return {i: world.sandbox.hubspot.state.get_properties(object_type, i) for i in ids}


def test_a_rule_change_recomputes_without_a_pull_and_writes_only_the_difference(world: World) -> None:
    first = world.run()
    assert first.status == "ok" and first.writeback is not None and first.writeback.properties_written > 0
    before = crm(world, "contacts")
    rules = MappingConfig.model_validate({"channel_rules": [
        {"name": "Google Ads", "channel": "Google Ads", "when": {"all": [
            {"field": "source", "equals": "google"}, {"field": "medium", "equals": "cpc"}]}}]})
    changed = world.config.model_copy(update={"mapping": rules})
    rebuild(world.engine, changed)  # what `writeback --dry-run` does first: no API call
    preview = dry_run(world.engine, changed)
    assert preview, "the new rule must change something"
    channel_bearing = {"first_touch_channel", "lead_channel", "last_touch_channel", "journey", "primary_channel",
                       "channel_split"}
    for change in preview:  # only what the rule touches moves: google/cpc was Paid Search
        assert change.property.removeprefix("closedloop_") in channel_bearing, change
        assert "Google Ads" in change.new or "Paid Search" in (change.old or ""), change
    second = world.run(changed, pull=False)
    assert second.pulled == {} and not any("search" in e for e in second.api_calls)
    assert second.writeback is not None
    assert second.writeback.properties_written == len(preview)
    after = crm(world, "contacts")
    expected = {(c.object_id, c.property): c.new for c in preview if c.object_type == "contacts"}
    for contact_id, props in after.items():
        for name, value in props.items():
            if (contact_id, name) in expected:
                assert value == expected[(contact_id, name)]
            elif name not in HUBSPOT_BOOKKEEPING:  # everything else, ours or not, is as it was
                assert value == before[contact_id][name], (contact_id, name)
    assert any(v == "Google Ads" for props in after.values() for v in props.values())
    assert world.run(changed, pull=False).writeback.properties_written == 0  # type: ignore[union-attr]


def test_a_crash_after_sending_is_reconciled_not_resent(world: World) -> None:
    world.run()
    rules = MappingConfig.model_validate({"channel_rules": [
        {"name": "All paid", "channel": "Paid", "when": {"field": "medium", "in": ["cpc", "paid_social"]}}]})
    changed = world.config.model_copy(update={"mapping": rules})
    connectors = build_connectors(changed, sleep=lambda _s: None)
    rebuild(world.engine, changed)
    changes: list[PropertyChange] = [c for chunk in plan_changes(world.engine, changed) for c in chunk]
    assert changes
    crashed = [c for c in changes if c.object_type == "contacts"][:40]
    # The process sent these and died before recording the answer.
    mark_in_flight(world.engine, crashed)
    assert connectors.writer is not None
    by_object: dict[str, dict[str, str]] = {}
    for c in crashed:
        by_object.setdefault(c.object_id, {})[c.property] = c.new
    sent = connectors.writer.write([PropertyUpdate("contacts", i, props) for i, props in by_object.items()])
    assert len(sent.written) == len(by_object) and not sent.failed
    world.sandbox.hubspot.server.reset_calls()
    report = world.run(changed, pull=False)
    assert report.writeback is not None
    assert report.writeback.reconciled == len(crashed)
    assert report.writeback.properties_written == len(changes) - len(crashed)
    with Session(world.engine) as session:
        assert session.execute(select(func.count()).select_from(m.WritebackState).where(
            m.WritebackState.in_flight_value.is_not(None))).scalar_one() == 0  # type: ignore[union-attr]
    assert dry_run(world.engine, changed) == []


def test_dry_run_lists_old_and_new_and_writes_nothing(world: World) -> None:
    connectors = build_connectors(world.config, sleep=lambda _s: None)
    run_once(engine=world.engine, config=world.config, sources=connectors.sources, writer=None,
             log=connectors.log, now=NOW)
    preview = dry_run(world.engine, world.config)
    assert preview and all(c.old is None for c in preview)
    assert all(c.property.startswith("closedloop_") for c in preview)
    assert all(v.get("closedloop_touch_count") is None for v in crm(world, "contacts").values())


def _closedloop_values(sandbox: RunningSandbox) -> dict[str, dict[str, str | None]]:
    company = sandbox.company
    out: dict[str, dict[str, str | None]] = {}
    for object_type, ids in (("contacts", [c.id for c in company.contacts]), ("deals", [d.id for d in company.deals])):
        for object_id in ids:
            props = sandbox.hubspot.state.get_properties(object_type, object_id)
            out[f"{object_type}/{object_id}"] = {k: v for k, v in props.items() if k.startswith("closedloop_")}
    return out


def test_the_loop_leaves_the_same_crm_state_on_sqlite_and_on_postgresql(store_url: str, tmp_path: Path) -> None:
    """The rebuild's temporary table and JSON reads differ by dialect; the CRM must not."""
    states = []
    for url in (f"sqlite:///{tmp_path / 'reference.db'}", store_url):
        with start_sandbox(generate_company(contacts=150, seed=11, now=NOW), now=NOW, burst_limit=100_000) as sandbox:
            engine = open_store(url)
            world = World(sandbox, engine, sandbox.config(store_url=url))
            try:
                first = world.run()
                again = world.run()
            finally:
                engine.dispose()
            assert first.status == "ok" and first.rebuild is not None and first.rebuild.sessions_matched > 0
            assert first.writeback is not None and first.writeback.properties_written > 0
            assert again.writeback is not None and again.writeback.properties_written == 0
            states.append(_closedloop_values(sandbox))
    assert any(values for values in states[1].values())
    assert states[0] == states[1]


def _recording_sends(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[Connectors, list[str]]:
    """Connectors whose writer notes the object type of every record it sends."""
    connectors = build_connectors(world.config, sleep=lambda _s: None)
    writer = connectors.writer
    assert writer is not None
    original = writer.write
    sent: list[str] = []

    def recording_write(updates: list[PropertyUpdate]) -> object:
        sent.extend(u.object_type for u in updates)
        return original(updates)

    monkeypatch.setattr(writer, "write", recording_write)
    return connectors, sent


def test_contacts_are_written_while_the_rebuild_credits_and_deals_only_after(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overlap: contacts go out as their touchpoints commit; a rebuild that fails at crediting
    leaves every deal unwritten and its own error reported, not the write-back's."""
    from closedloop.sync import derive

    connectors, sent = _recording_sends(world, monkeypatch)

    def failing_credits(*args: object, **kwargs: object) -> None:
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:  # the write-back thread is already at work
            time.sleep(0.01)
        raise RuntimeError("crediting failed")

    monkeypatch.setattr(derive, "write_credits", failing_credits)
    with pytest.raises(RuntimeError, match="crediting failed"):
        run_once(engine=world.engine, config=world.config, sources=connectors.sources, writer=connectors.writer,
                 log=connectors.log, now=NOW)
    assert "contacts" in sent and "deals" not in sent


def test_deals_go_out_once_their_credits_are_committed_before_the_contacts_credits(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deals' credits come first; the write-back sends deals while contacts' credits are still
    being computed, and a failure after that point leaves deals' values written and final."""
    from closedloop.sync import derive

    connectors, sent = _recording_sends(world, monkeypatch)
    real_write_credits = derive.write_credits

    def failing_after_deals(*args: Any, on_deal_credits: Any = None, **kwargs: Any) -> Any:
        def deals_ready_then_fail() -> None:
            on_deal_credits()
            deadline = time.monotonic() + 10
            while "deals" not in sent and time.monotonic() < deadline:
                time.sleep(0.01)
            raise RuntimeError("crediting contacts failed")

        return real_write_credits(*args, on_deal_credits=deals_ready_then_fail, **kwargs)

    monkeypatch.setattr(derive, "write_credits", failing_after_deals)
    with pytest.raises(RuntimeError, match="crediting contacts failed"):
        run_once(engine=world.engine, config=world.config, sources=connectors.sources, writer=connectors.writer,
                 log=connectors.log, now=NOW)
    assert "deals" in sent
    # Every deal's value (and every contact's) went out; nothing is left to write.
    assert list(dry_run(world.engine, world.config)) == []
    with Session(world.engine) as session:
        deal_credits = session.execute(
            select(func.count()).select_from(m.Credit).where(m.Credit.conversion_id.like("deal_%"))  # type: ignore[attr-defined]
        ).scalar_one()
        contact_credits = session.execute(
            select(func.count()).select_from(m.Credit).where(m.Credit.conversion_id.like("contact_%"))  # type: ignore[attr-defined]
        ).scalar_one()
    assert deal_credits > 0 and contact_credits == 0


def _in_flight(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(m.WritebackState).where(
            m.WritebackState.in_flight_value.is_not(None))).scalar_one())  # type: ignore[union-attr]


def test_a_write_back_stopped_part_way_leaves_nothing_in_flight_and_the_next_sends_the_rest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is marked in flight before its first batch goes and outcomes are recorded in
    groups; stopped part-way, every sent value is recorded and what was never sent is unmarked,
    so the next run reads nothing back and sends only what is left."""
    small = world.config.model_copy(update={"writeback": world.config.writeback.model_copy(
        update={"batch_size": 10, "parallel_requests": 2})})
    connectors, sent = _recording_sends(world, monkeypatch)
    assert connectors.writer is not None
    run_once(engine=world.engine, config=small, sources=connectors.sources, writer=None, log=connectors.log, now=NOW)
    everything = len(dry_run(world.engine, small))

    with pytest.raises(Interrupted):
        run_writeback(world.engine, small, connectors.writer, now=NOW, should_stop=lambda: len(sent) >= 30)
    assert _in_flight(world.engine) == 0
    with Session(world.engine) as session:
        written = m.WritebackState.value.is_not(None)  # type: ignore[union-attr]
        recorded = session.execute(select(func.count()).select_from(m.WritebackState).where(written)).scalar_one()
        objects = session.execute(select(func.count()).select_from(
            select(m.WritebackState.object_type, m.WritebackState.object_id).where(written).distinct().subquery()
        )).scalar_one()
    assert objects == len(sent) and 0 < recorded < everything

    rest = run_writeback(world.engine, small, connectors.writer, now=NOW)
    assert rest.reconciled == 0
    assert recorded + rest.properties_written == everything
    assert dry_run(world.engine, small) == []


def test_an_outcome_that_cannot_be_recorded_fails_the_write_back_and_stays_in_flight(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcomes are recorded on a thread of their own; its error still ends the write-back, and
    the values it could not record stay marked, for the next run to read back, not resend."""
    from closedloop.sync import writeback_state

    connectors = build_connectors(world.config, sleep=lambda _s: None)
    assert connectors.writer is not None
    run_once(engine=world.engine, config=world.config, sources=connectors.sources, writer=None,
             log=connectors.log, now=NOW)

    def broken_store(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writeback_state, "record_outcome", broken_store)
    with pytest.raises(RuntimeError, match="disk full"):
        run_writeback(world.engine, world.config, connectors.writer, now=NOW)
    assert _in_flight(world.engine) > 0
    monkeypatch.undo()
    again = run_writeback(world.engine, world.config, connectors.writer, now=NOW)
    assert again.reconciled > 0 and dry_run(world.engine, world.config) == []
