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

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.base import PropertyUpdate
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.build import build_salesforce
from closedloop.connectors.salesforce.fields import FieldNames
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch_salesforce import start_salesforce_sandbox
from closedloop.sandbox.salesforce import SF_CONSUMER_KEY, SF_USERNAME, SalesforceSandbox, SalesforceState
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once
from closedloop.sync.properties import property_specs

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


def test_a_streamed_bulk_job_renews_an_expired_session_and_repeats_only_that_step() -> None:
    state = SalesforceState()
    sandbox = SalesforceSandbox(state).start()
    try:
        ids = [
            state.insert("Lead", {"LastName": f"P{i}", "Company": "Acme"}, at=NOW - timedelta(days=9, seconds=i))["Id"]
            for i in range(7)
        ]
        config = SalesforceConfig(
            auth="jwt", login_url=sandbox.url, username=SF_USERNAME, consumer_key=SF_CONSUMER_KEY,
            private_key_file=str(sandbox.jwt_private_key_file), multicurrency=False, bulk_threshold=5,
            bulk_poll_s=0.05, grant_field_permissions=True,
        )
        parts = build_salesforce(config, log=ApiCallLog(), property_prefix="closedloop_",
                                 http=sandbox.requests_session(), now=lambda: datetime.now(UTC), sleep=lambda _s: None)
        parts.writer.ensure_properties(property_specs("closedloop_", "linear"), group_name="", group_label="")
        state.fail_records([ids[2]], code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="no")
        with parts.writer.spool() as spool:
            for i in ids:
                spool.add(PropertyUpdate("contacts", i, {"closedloop_journey": "Email", "closedloop_touch_count": "3"}))
            calls = list(spool.calls())
            state.expire_sessions()  # the job's creation answers 401: renewed, then the job runs
            outcomes = [result for call in calls for _, result in call()]
        assert [f.object_id for r in outcomes for f in r.failed] == [ids[2]]
        assert sorted(u.object_id for r in outcomes for u in r.written) == sorted(set(ids) - {ids[2]})
        assert all(state.get("Lead", i)["Closedloop_Journey__c"] == "Email" for i in ids if i != ids[2])
        assert parts.client.authenticator.sign_ins == 2  # type: ignore[attr-defined]
        calls_made = {k: sum(v.values()) for k, v in parts.client.log.by_endpoint().items()}
        # The creation refused once (401) and made again; the upload went once, from the file.
        assert calls_made["salesforce POST jobs/ingest"] == 2
        assert calls_made["salesforce PUT jobs/ingest/{id}/batches"] == 1
        assert not any("composite" in k for k in calls_made)
    finally:
        sandbox.stop()
