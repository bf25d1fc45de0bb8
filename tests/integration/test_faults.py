"""Fault injection: every kind of misbehaviour ends in the same store and CRM as a clean run.

Each test starts a fresh sandbox of the same small company, installs a ``FaultPlan``, runs the
real pipeline (real SDKs, real HTTP) with a sleep that only records, and compares the final
store (sorted rows of every data table) and every contact's and deal's ``closedloop_*``
properties in the CRM with those of a clean run.  Columns that only say *when* the CRM or the
store was touched (``updated_at``, ``written_at``) are left out: a retried or re-run write
changes them without changing anything a user reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_snapshots import COMPARED_TABLES, crm_snapshot, store_snapshot
from sqlalchemy import Engine, MetaData, select

from closedloop.config.models import Config, WritebackConfig
from closedloop.connectors.hubspot.source import STREAMS as HUBSPOT_STREAMS
from closedloop.errors import ClosedloopAPIError
from closedloop.sandbox.company import Company
from closedloop.sandbox.faults import (
    FaultPlan,
    Rule,
    TokenRevocation,
    drop_connection,
    partial_failure,
    rate_limit_storm,
    revoke_token_after,
    server_error,
    slow,
)
from closedloop.sandbox.ga4 import GA4Sandbox, GA4State
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox
from closedloop.sandbox.server import Request, Response
from closedloop.store.engine import open_store
from closedloop.store.models import SyncRun
from closedloop.sync.factory import build_connectors, default_limiters
from closedloop.sync.pipeline import RunReport, run_once

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
# Columns that record when something was touched, not what it is.

CONTACT_SEARCH = "POST /crm/v3/objects/contacts/search"
DEAL_SEARCH = "POST /crm/v3/objects/deals/search"
DEAL_LIST = "GET /crm/v3/objects/{objectType}"  # the first pull lists deals, history included
ASSOCIATIONS = "POST /crm/v4/associations/deals/contacts/batch/read"
BATCH_UPDATE = "POST */batch/update"
RUN_REPORT = "POST /v1beta/properties/*:runReport"
HUBSPOT = "* /crm/*"


class FakeTime:
    """A clock that moves only when the client-side limiters sleep, so pacing costs no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.slept += seconds


class SleepLog:
    """The retry sleep: records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)


@dataclass(slots=True)
class Outcome:
    reports: list[RunReport]
    store: dict[str, list[tuple[Any, ...]]]
    crm: dict[tuple[str, str], dict[str, str | None]]
    sleeps: SleepLog
    plan: FaultPlan
    engine: Engine
    extra: dict[str, Any] = field(default_factory=dict)


def start_fault_sandbox(company: Company) -> RunningSandbox:
    """Like ``start_sandbox``, with search's per-second cap lifted: the fake sleep never waits."""
    hs_state = HubSpotState()
    hs_state.load_company(company)
    ga_state = GA4State(property_id=company.ga4_property_id, time_zone=company.ga4_time_zone)
    ga_state.load_company(company)
    hubspot = HubSpotSandbox(hs_state, access_token=SANDBOX_TOKEN, search_per_second=10_000, now=lambda: NOW)
    ga4 = GA4Sandbox(ga_state, now=lambda: NOW)
    return RunningSandbox(hubspot.start(), ga4.start(), company)


def small_pages(config: Config, **hubspot: Any) -> Config:
    """Several pages and batches per stream, so a fault can land in the middle of one."""
    assert config.hubspot is not None and config.ga4 is not None
    return config.model_copy(
        update={
            "hubspot": config.hubspot.model_copy(update={"search_page_size": 50, "max_retries": 6, **hubspot}),
            "ga4": config.ga4.model_copy(update={"page_size": 1000}),
            "writeback": WritebackConfig(batch_size=40, max_attempts=2),
        }
    )


def run(sandbox: RunningSandbox, config: Config, engine: Engine, sleeps: SleepLog) -> RunReport:
    fake = FakeTime()
    limiters = default_limiters(config, clock=fake.clock, sleep=fake.sleep)
    connectors = build_connectors(config, limiters=limiters, sleep=sleeps)
    return run_once(
        engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
        log=connectors.log, now=NOW,
    )


def run_with_faults(
    company: Company,
    tmp_path: Path,
    *rules: Rule,
    runs: int = 1,
    record: tuple[str, ...] = (),
    configure: Any = None,
) -> Outcome:
    sleeps = SleepLog()
    with start_fault_sandbox(company) as sandbox:
        plan = FaultPlan(list(rules), record=record).install(sandbox.hubspot.server).install(sandbox.ga4.server)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        config = small_pages(sandbox.config(store_url=url))
        if configure is not None:
            config = configure(config)
        engine = open_store(url)
        reports = [run(sandbox, config, engine, sleeps) for _ in range(runs)]
        return Outcome(reports, store_snapshot(engine), crm_snapshot(sandbox), sleeps, plan, engine)


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=150, seed=11, now=NOW)


@pytest.fixture(scope="module")
def clean(company: Company, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    outcome = run_with_faults(company, tmp_path_factory.mktemp("clean"))
    assert [r.status for r in outcome.reports] == ["ok"]
    written = outcome.reports[0].writeback
    assert written is not None and written.properties_written > len(company.contacts)
    assert sum(len(v) for v in outcome.crm.values()) == written.properties_written
    yield outcome
    outcome.engine.dispose()


def assert_same_as_clean(outcome: Outcome, clean: Outcome) -> None:
    assert outcome.reports[-1].status == "ok", outcome.reports[-1].errors
    for name in COMPARED_TABLES:
        assert len(outcome.store[name]) == len(clean.store[name]), name
        assert outcome.store[name] == clean.store[name], name
    differing = [key for key in clean.crm if outcome.crm.get(key) != clean.crm[key]]
    assert not differing, f"{len(differing)} CRM objects differ, first {differing[:3]}"
    outcome.engine.dispose()


def statuses(report: RunReport, endpoint_part: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for endpoint, counts in report.api_calls.items():
        if endpoint_part in endpoint:
            for status, n in counts.items():
                out[status] = out.get(status, 0) + n
    return out


# ---- 429s ------------------------------------------------------------------------------------


def test_a_429_storm_with_retry_after_waits_exactly_what_hubspot_asked(
    company: Company, clean: Outcome, tmp_path: Path
) -> None:
    outcome = run_with_faults(company, tmp_path, rate_limit_storm(3, retry_after=7, endpoint=CONTACT_SEARCH, skip=1))
    assert outcome.plan.fired("rate_limit") == 3
    assert outcome.sleeps.waits.count(7.0) == 3
    assert statuses(outcome.reports[0], "contacts/search")["429"] == 3
    assert_same_as_clean(outcome, clean)


def test_a_429_storm_without_retry_after_backs_off_and_completes(
    company: Company, clean: Outcome, tmp_path: Path
) -> None:
    outcome = run_with_faults(company, tmp_path, rate_limit_storm(4, endpoint=BATCH_UPDATE, skip=1))
    assert outcome.plan.fired("rate_limit") == 4
    assert len(outcome.sleeps.waits) == 4 and all(0 <= w <= 30 for w in outcome.sleeps.waits)
    assert statuses(outcome.reports[0], "batch/update")["429"] == 4
    assert_same_as_clean(outcome, clean)


def test_ga4_resource_exhausted_is_retried(company: Company, clean: Outcome, tmp_path: Path) -> None:
    outcome = run_with_faults(company, tmp_path, rate_limit_storm(3, endpoint=RUN_REPORT, skip=1))
    assert outcome.plan.fired("rate_limit") == 3
    assert statuses(outcome.reports[0], "runReport")["429"] == 3
    assert_same_as_clean(outcome, clean)


# ---- 5xx, slow answers, dropped connections ---------------------------------------------------


def test_server_errors_on_every_kind_of_call_are_retried(company: Company, clean: Outcome, tmp_path: Path) -> None:
    rules = [
        server_error(500, 2, endpoint=CONTACT_SEARCH, skip=2),
        server_error(502, 2, endpoint=DEAL_LIST),
        server_error(503, 2, endpoint=ASSOCIATIONS),
        server_error(503, 2, endpoint=BATCH_UPDATE, skip=3),
        server_error(500, 2, endpoint=RUN_REPORT, skip=1),
        server_error(502, 1, endpoint="GET /crm/v3/properties/{objectType}"),
    ]
    outcome = run_with_faults(company, tmp_path, *rules)
    assert [rule.fired for rule in rules] == [2, 2, 2, 2, 2, 1]
    assert len(outcome.sleeps.waits) == 11  # one backoff per error
    report = outcome.reports[0]
    assert statuses(report, "contacts/search")["500"] == 2 and statuses(report, "runReport")["500"] == 2
    assert statuses(report, "batch/update")["503"] == 2
    assert_same_as_clean(outcome, clean)


def test_answers_slower_than_the_timeout_are_retried(company: Company, clean: Outcome, tmp_path: Path) -> None:
    def short_timeouts(config: Config) -> Config:
        assert config.hubspot is not None and config.ga4 is not None
        return config.model_copy(update={
            "hubspot": config.hubspot.model_copy(update={"timeout_s": 1.0}),
            "ga4": config.ga4.model_copy(update={"timeout_s": 1.0}),
        })

    # A timeout well above a loaded machine's ordinary answer (a 0.3 s one was sometimes reached
    # by a request nobody slowed), and slow answers well above the timeout.
    rules = [slow(2.0, 1, endpoint=BATCH_UPDATE, skip=1), slow(2.0, 2, endpoint=RUN_REPORT)]
    outcome = run_with_faults(company, tmp_path, *rules, configure=short_timeouts)
    assert [rule.fired for rule in rules] == [1, 2]
    assert len(outcome.sleeps.waits) == 3  # each timeout was one retry
    assert_same_as_clean(outcome, clean)


def test_dropped_connections_are_retried(company: Company, clean: Outcome, tmp_path: Path) -> None:
    rules = [
        drop_connection(2, endpoint=CONTACT_SEARCH, skip=1),
        drop_connection(2, endpoint=BATCH_UPDATE, skip=2),
        drop_connection(1, endpoint=RUN_REPORT),
    ]
    outcome = run_with_faults(company, tmp_path, *rules)
    assert [rule.fired for rule in rules] == [2, 2, 1]
    assert len(outcome.sleeps.waits) >= 5
    assert_same_as_clean(outcome, clean)


# ---- 401 --------------------------------------------------------------------------------------


def token_file_config(path: Path) -> Any:
    def configure(config: Config) -> Config:
        assert config.hubspot is not None
        return config.model_copy(update={
            "hubspot": config.hubspot.model_copy(update={"access_token": None, "access_token_file": str(path)})
        })

    return configure


@pytest.mark.parametrize("after", [3, 26])  # mid pull; at the second batch update of the write-back
def test_a_token_rotated_mid_run_is_refreshed_once_and_the_run_completes(
    company: Company, clean: Outcome, tmp_path: Path, after: int
) -> None:
    token_file = tmp_path / "hubspot.token"
    token_file.write_text(SANDBOX_TOKEN + "\n")
    rotated = "rotated-token-2"
    rule = revoke_token_after(
        after, new_token=rotated, on_revoke=lambda: token_file.write_text(rotated + "\n"), endpoint=HUBSPOT
    )
    outcome = run_with_faults(company, tmp_path, rule, configure=token_file_config(token_file))
    revocation = rule.action
    assert isinstance(revocation, TokenRevocation)
    # HubSpot's streams pull side by side: each call in flight at the rotation may see one 401,
    # refreshes once and succeeds; none fails (a second 401 would fail its stream and the run).
    assert 1 <= revocation.refused <= len(HUBSPOT_STREAMS)
    assert all(report.status == "ok" for report in outcome.reports)
    assert_same_as_clean(outcome, clean)


@pytest.mark.parametrize(
    "after",
    [
        3,  # mid pull
        26,  # mid write-back: the run fails, no record is charged an attempt
    ],
)
def test_a_401_that_persists_fails_the_run_cleanly_and_the_next_run_recovers(
    company: Company, clean: Outcome, tmp_path: Path, after: int
) -> None:
    token_file = tmp_path / "hubspot.token"
    token_file.write_text(SANDBOX_TOKEN)
    rule = revoke_token_after(after, endpoint=HUBSPOT)  # no new token: every later call is refused
    sleeps = SleepLog()
    with start_fault_sandbox(company) as sandbox:
        plan = FaultPlan([rule]).install(sandbox.hubspot.server)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        config = token_file_config(token_file)(small_pages(sandbox.config(store_url=url)))
        engine = open_store(url)
        raised: ClosedloopAPIError | None = None
        try:
            run(sandbox, config, engine, sleeps)
        except ClosedloopAPIError as exc:  # a run may end by raising, as long as it is recorded
            raised = exc
        with engine.connect() as conn:
            row = conn.execute(select(SyncRun.status, SyncRun.errors)).one()  # type: ignore[call-overload]
        messages: list[str] = row.errors["messages"]
        assert row.status not in ("ok", "running"), messages
        assert any("401" in m for m in messages)
        assert all(SANDBOX_TOKEN not in m for m in [*messages, str(raised or "")])
        assert pending_rows(engine) == [], "refused credentials must not charge records an attempt"
        crm, written = crm_snapshot(sandbox), written_values(engine)
        assert {k: v for k, v in crm.items() if v} == written  # the CRM holds exactly what the store says
        if after < 10:
            assert written == {}
        plan.rules.clear()  # the admin fixes the token
        recovered = run(sandbox, config, engine, sleeps)
        outcome = Outcome([recovered], store_snapshot(engine), crm_snapshot(sandbox), sleeps, plan, engine)
    assert_same_as_clean(outcome, clean)


def written_values(engine: Engine) -> dict[tuple[str, str], dict[str, str | None]]:
    meta = MetaData()
    meta.reflect(engine, only=("writeback_state",))
    tbl = meta.tables["writeback_state"]
    out: dict[tuple[str, str], dict[str, str | None]] = {}
    with engine.connect() as conn:
        for kind, oid, prop, value in conn.execute(
            select(tbl.c.object_type, tbl.c.object_id, tbl.c.property, tbl.c.value).where(tbl.c.value.is_not(None))
        ):
            out.setdefault((kind, oid), {})[prop] = value
    return out


# ---- partial batch failures -------------------------------------------------------------------


def failing_ids(company: Company) -> list[str]:
    return [company.contacts[5].id, company.contacts[77].id, company.deals[3].id]


def test_partial_failures_are_stored_then_retried_on_the_next_run(
    company: Company, clean: Outcome, tmp_path: Path
) -> None:
    ids = failing_ids(company)
    rule = partial_failure(ids, times=1)
    sleeps = SleepLog()
    with start_fault_sandbox(company) as sandbox:
        plan = FaultPlan([rule], record=(BATCH_UPDATE,)).install(sandbox.hubspot.server)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        config = small_pages(sandbox.config(store_url=url))
        engine = open_store(url)
        first = run(sandbox, config, engine, sleeps)
        assert first.writeback is not None
        assert first.writeback.records_failed == len(ids)
        assert {f["object"].split("/")[1] for f in first.writeback.failures} == set(ids)
        pending = pending_rows(engine)
        assert {r["object_id"] for r in pending} == set(ids)
        assert all(r["attempts"] == 1 and "Injected failure" in (r["last_error"] or "") for r in pending)
        for oid in ids:  # the failed records were not written; everything else was
            kind = "deals" if oid == ids[-1] else "contacts"
            assert not any(sandbox.hubspot.state.get_properties(kind, oid).get(k) for k in clean.crm[(kind, oid)])
        sent_before = len(plan.recorded())
        second = run(sandbox, config, engine, sleeps)
        assert second.writeback is not None and second.writeback.records_failed == 0
        resent = [i["id"] for e in plan.recorded()[sent_before:] for i in e.request_body["inputs"]]
        assert sorted(resent) == sorted(ids)  # only the failed records were sent again
        assert second.writeback.objects_written == len(ids)
        outcome = Outcome([first, second], store_snapshot(engine), crm_snapshot(sandbox), sleeps, plan, engine)
    assert pending_rows(outcome.engine) == []
    assert_same_as_clean(outcome, clean)


def test_partial_failures_are_given_up_after_max_attempts_and_reported(
    company: Company, clean: Outcome, tmp_path: Path
) -> None:
    ids = failing_ids(company)
    rule = partial_failure(ids, times=1000)
    sleeps = SleepLog()
    with start_fault_sandbox(company) as sandbox:
        plan = FaultPlan([rule], record=(BATCH_UPDATE,)).install(sandbox.hubspot.server)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        config = small_pages(sandbox.config(store_url=url))
        assert config.writeback.max_attempts == 2
        engine = open_store(url)
        reports = []
        for attempt in (1, 2):
            reports.append(run(sandbox, config, engine, sleeps))
            assert {r["attempts"] for r in pending_rows(engine)} == {attempt}
        props_of_failed = sum(len(clean.crm[("deals" if i == ids[-1] else "contacts", i)]) for i in ids)
        last = reports[-1].writeback
        assert last is not None and last.records_given_up == props_of_failed
        sent_before = len(plan.recorded())
        third = run(sandbox, config, engine, sleeps)
        assert third.writeback is not None
        assert len(plan.recorded()) == sent_before, "given-up records must not be sent again"
        assert third.writeback.records_given_up == props_of_failed  # still reported
        assert third.writeback.records_failed == 0
        crm = crm_snapshot(sandbox)
    for key, values in clean.crm.items():
        if key[1] in ids:
            assert not any(crm[key].values()), key
        else:
            assert crm[key] == values, key
    engine.dispose()


def pending_rows(engine: Engine) -> list[dict[str, Any]]:
    meta = MetaData()
    meta.reflect(engine, only=("writeback_state",))
    tbl = meta.tables["writeback_state"]
    with engine.connect() as conn:
        rows = conn.execute(select(tbl).where(tbl.c.pending_value.is_not(None))).mappings().all()
    return [dict(r) for r in rows]


# ---- the plan itself ---------------------------------------------------------------------------


def _request(
    endpoint: str = "POST /crm/v3/objects/{objectType}/search", path: str = "/crm/v3/objects/contacts/search"
) -> Request:
    return Request(method=endpoint.split()[0], path=path, query={}, headers={}, body=b"", endpoint=endpoint)


@settings(max_examples=60, deadline=None)
@given(skip=st.integers(0, 6), times=st.integers(0, 6), requests=st.integers(0, 20))
def test_a_rule_faults_exactly_the_requests_after_skip_up_to_times(skip: int, times: int, requests: int) -> None:
    plan = FaultPlan([rate_limit_storm(times, endpoint=CONTACT_SEARCH, skip=skip)])
    answers = [plan(_request()) for _ in range(requests)]
    faulted = [i for i, a in enumerate(answers) if a is not None]
    assert faulted == list(range(skip, min(requests, skip + times)))
    assert all(a.status == 429 for a in answers if a is not None)
    # other endpoints are never counted nor faulted
    other = _request("POST /crm/v3/objects/{objectType}/batch/update", "/crm/v3/objects/deals/batch/update")
    assert plan(other) is None


def test_concurrent_requests_see_a_storm_of_exactly_n() -> None:
    plan = FaultPlan([server_error(503, 37)])
    hits: list[Response | None] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(50):
            answer = plan(_request())
            with lock:
                hits.append(answer)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for h in hits if h is not None) == 37
    assert len(hits) == 400


def test_a_time_window_faults_only_inside_it() -> None:
    ticks = iter([0.0, 0.5, 1.5, 2.5, 3.5])
    plan = FaultPlan(clock=lambda: next(ticks))
    plan.add(Rule(lambda r, f: Response(503), during=(1.0, 3.0), times=None))  # the plan started at 0.0
    answers = [plan(_request()) for _ in range(4)]
    assert [a is not None for a in answers] == [False, True, True, False]


def test_ga4_and_hubspot_get_their_own_error_shapes() -> None:
    plan = FaultPlan([rate_limit_storm(2, retry_after=1.5)])
    ga4 = plan(_request("POST /v1beta/properties/{propertyId}:runReport", "/v1beta/properties/1:runReport"))
    hubspot = plan(_request("GET /crm/v3/properties/{objectType}", "/crm/v3/properties/contacts"))
    assert ga4 is not None and ga4.body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert hubspot is not None and hubspot.body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert hubspot.headers["Retry-After"] == "1.5" and hubspot.headers["X-HubSpot-RateLimit-Remaining"] == "0"
