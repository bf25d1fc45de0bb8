"""The write-back's hook for writers that choose their calls (Salesforce: Bulk 2.0 above a count).

A writer with ``calls_for`` must get every planned change of the run at once (so it can count
them per object) and have each call it returns sent as one ``write``; the outcomes are recorded
as for any writer, so an immediate second run sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from closedloop.connectors.base import PropertySpec, PropertyUpdate, WriteResult
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once
from closedloop.sync.writeback import run_writeback

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class ChoosingWriter:
    """Packs contacts and deals together, 7 a call, except one call of every deal (a 'bulk job')."""

    def __init__(self) -> None:
        self.offered: list[int] = []
        self.written: list[list[PropertyUpdate]] = []

    def ensure_properties(self, specs: Sequence[PropertySpec], *, group_name: str, group_label: str) -> list[str]:
        return []

    def calls_for(self, updates: Sequence[PropertyUpdate]) -> list[list[PropertyUpdate]]:
        self.offered.append(len(updates))
        deals = [u for u in updates if u.object_type == "deals"]
        people = [u for u in updates if u.object_type == "contacts"]
        return [deals] + [people[i : i + 7] for i in range(0, len(people), 7)]

    def write(self, updates: Sequence[PropertyUpdate]) -> WriteResult:
        self.written.append(list(updates))
        return WriteResult(written=list(updates))

    def read_properties(self, object_type: str, object_ids: Sequence[str], properties: Sequence[str]) -> dict:  # type: ignore[type-arg]
        return {}


def test_a_writer_with_calls_for_gets_every_change_at_once_and_its_calls_are_sent_whole(tmp_path: Path) -> None:
    company = generate_company(contacts=60, seed=5, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        url = f"sqlite:///{tmp_path / 'wb.db'}"
        engine = open_store(url)
        config = sandbox.config(store_url=url)
        connectors = build_connectors(config, sleep=lambda _s: None)
        run_once(engine=engine, config=config, sources=connectors.sources, writer=None, log=connectors.log, now=NOW)
        writer = ChoosingWriter()
        run_writeback(engine, config, writer, now=NOW)  # type: ignore[arg-type]
        deals = {d.id for d in company.deals}
        assert len(writer.offered) == 1  # one hand-over: the writer could count every change
        sent = [u.object_id for call in writer.written for u in call]
        assert len(sent) == len(set(sent)) == writer.offered[0]
        assert {u.object_id for u in writer.written[0]} <= deals and len(writer.written[0]) > 7
        assert all(len(call) <= 7 for call in writer.written[1:])
        again = ChoosingWriter()
        run_writeback(engine, config, again, now=NOW)  # type: ignore[arg-type]
        assert again.written == [] or all(call == [] for call in again.written)
        engine.dispose()
