"""The whole loop's write-back through the writer's spool, with objects above the Bulk threshold.

Past ``bulk_threshold`` an object's planned updates go to a file and its Bulk 2.0 job is uploaded
from a CSV file (spool.py); the values must still land in the org as written, the write-back
state must record them (an immediate second run writes nothing), and the records under the
threshold still go through collections.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from closedloop.connectors.salesforce.fields import FieldNames
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch_salesforce import start_salesforce_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


def test_objects_above_the_threshold_go_as_bulk_jobs_from_the_spool_and_are_recorded(tmp_path: Path) -> None:
    company = generate_company(contacts=150, seed=3, now=NOW)
    url = f"sqlite:///{tmp_path / 'spool.db'}"
    with start_salesforce_sandbox(company, now=NOW) as sandbox:
        engine = open_store(url)
        config = sandbox.config(store_url=url, salesforce=sandbox.salesforce_config(bulk_threshold=40))

        def run(now: datetime) -> RunReport:
            connectors = build_connectors(config)
            return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                            log=connectors.log, now=now)

        first = run(NOW)
        assert first.status == "ok", first.errors
        jobs = sum(sum(v.values()) for k, v in first.api_calls.items() if k.endswith("POST jobs/ingest"))
        assert jobs >= 1  # Leads (150 people, most never converted) are past 40
        assert first.writeback is not None and first.writeback.records_failed == 0
        names = FieldNames("closedloop_")
        state = sandbox.salesforce.state
        with Session(engine) as session:
            rows = session.exec(select(m.WritebackState)).all()
        assert len({r.object_id for r in rows}) == first.writeback.objects_written
        leads = [r for r in rows if r.object_id.startswith("00Q")]
        assert len({r.object_id for r in leads}) > 40
        for row in rows:
            assert row.in_flight_value is None and row.value is not None
            sobject = {"00Q": "Lead", "003": "Contact", "006": "Opportunity"}[row.object_id[:3]]
            held = state.get(sobject, row.object_id)[names.field(row.property)]
            assert (held if held is not None else "") == row.value or float(held) == float(row.value)
        second = run(NOW + timedelta(minutes=5))
        assert second.status == "ok", second.errors
        assert not any("composite" in k or "ingest" in k for k in second.api_calls)
        engine.dispose()
