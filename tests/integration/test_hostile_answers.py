"""Hostile answers, per endpoint: one bad record is quarantined, one bad page fails its stream.

Each case serves one kind of broken answer through the sandbox's rewrite fault mode
(``closedloop.sandbox.hostile``), runs the real pipeline (real SDKs, real HTTP), and compares
the store with a clean run of the same company: every stream the fault did not touch holds
exactly the clean run's rows, the write-back still ran, and the touched stream either lost just
the bad record (quarantined, with its reason) or failed alone, named in the run record.  The
whole corpus runs on SQLite and, when CLOSEDLOOP_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_store_url
from sqlalchemy import select
from test_faults import (
    BATCH_UPDATE,
    CONTACT_SEARCH,
    NOW,
    RUN_REPORT,
    SleepLog,
    crm_snapshot,
    run,
    small_pages,
    start_fault_sandbox,
    store_snapshot,
)

from closedloop.config.models import PrivacyConfig
from closedloop.sandbox import hostile as h
from closedloop.sandbox.company import Company
from closedloop.sandbox.faults import FaultPlan, Rule
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.server import Request, Response
from closedloop.store.engine import open_store
from closedloop.store.models import QuarantinedRow
from closedloop.sync.pipeline import RunReport

POSTGRES_URL = os.environ.get("CLOSEDLOOP_TEST_POSTGRES_URL")
DEALS_LISTING = "GET /crm/v3/objects/deals"
PIPELINES = "GET /crm/v3/pipelines/deals"
ASSOCIATIONS = "POST /crm/v4/associations/deals/contacts/batch/read"
# The tables each stream fills: a failed or filtered stream is compared apart from the others.
TABLES = {
    "hubspot.contacts": ("contacts", "contact_identities"),
    "hubspot.deals": ("deals", "deal_stage_events", "deal_contacts"),
    "hubspot.pipelines": ("pipeline_stages",),
    "ga4.sessions": ("web_sessions",),
    "ga4.ad_cost": ("spend",),
}


@dataclass(slots=True)
class Outcome:
    report: RunReport
    store: dict[str, list[tuple[Any, ...]]]
    crm: dict[tuple[str, str], dict[str, str | None]]
    quarantine: list[tuple[str, str, str]]
    plan: FaultPlan


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("set CLOSEDLOOP_TEST_POSTGRES_URL to run the hostile corpus on PostgreSQL")
    return str(request.param)


def hostile_run(company: Company, backend: str, where: Path, *rules: Rule) -> Outcome:
    with fresh_store_url(backend, where, prefix="cl_hostile") as url, start_fault_sandbox(company) as sandbox:
        plan = FaultPlan(list(rules)).install(sandbox.hubspot.server).install(sandbox.ga4.server)
        key_file = str(where.parent / "hash_key")  # one key for every run: email hashes compare
        config = small_pages(sandbox.config(store_url=url, privacy=PrivacyConfig(hash_key_file=key_file)))
        engine = open_store(url)
        try:
            report = run(sandbox, config, engine, SleepLog())
            with engine.connect() as conn:
                quarantine = [
                    (q.stream, q.record_key, q.reason)
                    for q in conn.execute(select(QuarantinedRow.stream, QuarantinedRow.record_key,  # type: ignore[call-overload]
                                                 QuarantinedRow.reason))
                ]
            return Outcome(report, store_snapshot(engine), crm_snapshot(sandbox), sorted(quarantine), plan)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=60, seed=23, now=NOW)


@pytest.fixture(scope="module")
def clean(company: Company, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = hostile_run(company, backend, tmp_path_factory.mktemp("clean"))
    assert outcome.report.status == "ok", outcome.report.errors
    assert outcome.quarantine == [] and outcome.report.failed_streams == []
    return outcome


def other_streams_as_clean(outcome: Outcome, clean: Outcome, *touched: str) -> None:
    for stream, tables in TABLES.items():
        if stream in touched:
            continue
        for name in tables:
            assert outcome.store[name] == clean.store[name], f"{name} differs although {stream} was not touched"


def wrote_back(outcome: Outcome) -> None:
    written = outcome.report.writeback
    assert written is not None and written.properties_written > 0, outcome.report.errors
    assert sum(len(v) for v in outcome.crm.values()) == written.properties_written


# ---- one bad page: the stream fails alone, after its retries -----------------------------------

PAGE_FAULTS: dict[str, Callable[[Request, Response], Response]] = {
    "null body": h.null_body,
    "truncated JSON": h.truncated_json,
    "invalid UTF-8": h.invalid_utf8,
    "HTML page": h.html_page,
    "wrong content type": h.wrong_content_type,
}


@pytest.mark.parametrize("fault", sorted(PAGE_FAULTS))
def test_a_broken_contacts_page_fails_that_stream_only(
    fault: str, company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path,
                          h.rewrite(PAGE_FAULTS[fault], endpoint=CONTACT_SEARCH, skip=1, times=None))
    report = outcome.report
    assert report.status == "partial"
    assert report.failed_streams == ["hubspot.contacts"]
    assert any(e.startswith("hubspot.contacts: HubSpot POST /crm/v3/objects/contacts/search") for e in report.errors)
    assert outcome.plan.fired() == 7  # the first try and six retries, then the stream stops
    other_streams_as_clean(outcome, clean, "hubspot.contacts")
    # The first page (50 contacts) was stored before the broken one; nothing after it.
    assert 0 < len(outcome.store["contacts"]) < len(clean.store["contacts"])
    assert all(row in clean.store["contacts"] for row in outcome.store["contacts"])
    wrote_back(outcome)


@pytest.mark.parametrize("fault", ["truncated JSON", "HTML page", "null body"])
def test_a_broken_ga4_report_fails_the_ga4_streams_only(
    fault: str, company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path, h.rewrite(PAGE_FAULTS[fault], endpoint=RUN_REPORT, times=None))
    assert outcome.report.status == "partial"
    assert sorted(outcome.report.failed_streams) == ["ga4.ad_cost", "ga4.sessions"]
    other_streams_as_clean(outcome, clean, "ga4.sessions", "ga4.ad_cost")
    assert outcome.store["web_sessions"] == []
    wrote_back(outcome)


def test_a_stalled_search_cursor_stops_the_stream_instead_of_looping(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path, h.rewrite(h.stalled_cursor, endpoint=CONTACT_SEARCH, times=None))
    assert outcome.report.failed_streams == ["hubspot.contacts"]
    assert "sent back the paging cursor" in " ".join(outcome.report.errors)
    assert outcome.plan.fired() == 2  # the first page, and the one that sent its cursor back
    other_streams_as_clean(outcome, clean, "hubspot.contacts")
    wrote_back(outcome)


def live_listing(
    change: Callable[[Request, Response], Response], *, once: bool = True
) -> Callable[[Request, Response], Response]:
    """``change`` on the live deals listing only (the first page, or every one): the archived
    listing (deletions) shares its path and runs beside it.  Use with ``times=None``."""
    left = [1 if once else -1]

    def apply(request: Request, response: Response) -> Response:
        if request.arg("archived") == "true" or left[0] == 0:
            return response
        left[0] -= 1
        return change(request, response)

    return apply


def test_a_stalled_deals_listing_stops_the_stream(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    stalled = live_listing(h.stalled_cursor, once=False)
    outcome = hostile_run(company, backend, tmp_path, h.rewrite(stalled, endpoint=DEALS_LISTING, times=None))
    assert outcome.report.failed_streams == ["hubspot.deals"]
    assert "GET /crm/v3/objects/deals sent back the paging cursor" in " ".join(outcome.report.errors)
    other_streams_as_clean(outcome, clean, "hubspot.deals")
    wrote_back(outcome)


def test_a_stalled_archived_listing_stops_the_deletions_stream(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    """The recycle-bin listing (deletions) has the listings' one guard: a cursor sent back as
    given stops the deletions stream at the second page instead of paging until the daily limit."""
    archived: list[str] = []

    def stalled_bin(request: Request, response: Response) -> Response:
        if request.arg("archived") != "true":
            return response
        archived.append(request.path)
        return h.stalled_cursor(request, response)

    outcome = hostile_run(company, backend, tmp_path, h.rewrite(stalled_bin, endpoint="GET /crm/v3/objects/*",
                                                                times=None))
    assert outcome.report.failed_streams == ["hubspot.deletions"]
    assert "GET /crm/v3/objects/contacts?archived=true sent back the paging cursor '0'" in " ".join(
        outcome.report.errors)
    assert archived == ["/crm/v3/objects/contacts"] * 2  # the first page, and the one that sent its cursor back
    other_streams_as_clean(outcome, clean)
    wrote_back(outcome)


def test_every_stream_failing_is_a_failed_run_not_a_partial_one(
    company: Company, backend: str, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path,
                          h.rewrite(h.html_page, endpoint="* /crm/v3/objects/*", times=None),
                          h.rewrite(h.html_page, endpoint=PIPELINES, times=None),
                          h.rewrite(h.html_page, endpoint=RUN_REPORT, times=None))
    assert outcome.report.status == "failed"
    assert outcome.report.pulled == {}
    assert {"hubspot.contacts", "hubspot.deals", "hubspot.pipelines", "ga4.sessions"} <= set(
        outcome.report.failed_streams
    )


# ---- one bad record: quarantined (or warned), the rest arrives -----------------------------------


def test_contacts_without_id_null_or_of_wrong_types_are_quarantined(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(
        company, backend, tmp_path,
        h.rewrite(h.results(h.null_record), endpoint=CONTACT_SEARCH),  # one rule answers a request:
        h.rewrite(h.results(lambda r: (h.record_without_id(r), h.properties_as_list(r[1:]))), endpoint=CONTACT_SEARCH),
    )
    report = outcome.report
    assert report.status == "ok", report.errors
    assert report.pulled["hubspot.contacts"]["quarantined"] == 3  # null, without id, properties a list
    reasons = {key: reason for stream, key, reason in outcome.quarantine if stream == "hubspot.contacts"}
    assert "(no id)" in reasons  # the null record and the one without id share this key; the last reason stays
    assert any("properties is a list" in r for r in reasons.values())
    # The record without id and the one with properties as a list are lost; nothing else.
    assert len(outcome.store["contacts"]) == len(clean.store["contacts"]) - 2
    assert all(row in clean.store["contacts"] for row in outcome.store["contacts"])
    other_streams_as_clean(outcome, clean, "hubspot.contacts")
    wrote_back(outcome)


def test_a_value_longer_than_its_column_is_cut_the_same_on_every_store(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path,
                          h.rewrite(h.results(h.set_property("utm_campaign", "c" * 600)), endpoint=CONTACT_SEARCH))
    report = outcome.report
    assert report.status == "ok", report.errors
    assert report.warnings == {"value_longer_than_column": 1}
    assert report.warning_examples["value_longer_than_column"] == ["contacts.utm_campaign"]
    campaigns = [v for row in outcome.store["contacts"] for v in row if isinstance(v, str) and v.startswith("ccc")]
    assert campaigns == ["c" * 511 + "\u2026"]
    other_streams_as_clean(outcome, clean, "hubspot.contacts")


def test_naive_timestamps_and_unknown_stages_are_warnings(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(
        company, backend, tmp_path,
        h.rewrite(h.results(h.set_property("createdate", "2025-03-01T10:00:00")), endpoint=CONTACT_SEARCH),
        h.rewrite(live_listing(h.results(h.set_property("dealstage", "no-such-stage"))), endpoint=DEALS_LISTING,
                  times=None),
    )
    report = outcome.report
    assert report.status == "ok", report.errors
    assert report.warnings["naive_timestamp"] == 1
    assert report.warnings["unknown_deal_stage"] == 1
    assert "no-such-stage" in report.warning_examples["unknown_deal_stage"][0]
    assert len(outcome.store["contacts"]) == len(clean.store["contacts"])
    other_streams_as_clean(outcome, clean, "hubspot.contacts", "hubspot.deals")


def test_pipelines_answering_results_null_is_a_warning(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path, h.rewrite(h.results_null, endpoint=PIPELINES))
    assert outcome.report.warnings.get("pipelines_empty") == 1
    assert outcome.store["pipeline_stages"] == []
    other_streams_as_clean(outcome, clean, "hubspot.pipelines")


def test_broken_stage_history_and_associations_are_quarantined(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(
        company, backend, tmp_path,
        h.rewrite(live_listing(h.results(h.history_entry_broken)), endpoint=DEALS_LISTING, times=None),
        h.rewrite(h.results(h.association_broken), endpoint=ASSOCIATIONS),
    )
    assert outcome.report.status == "ok", outcome.report.errors
    streams = {stream for stream, _key, _reason in outcome.quarantine}
    assert streams == {"hubspot.deals", "hubspot.deal_contacts"}
    other_streams_as_clean(outcome, clean, "hubspot.deals")
    wrote_back(outcome)


def test_broken_ga4_rows_are_quarantined(company: Company, backend: str, clean: Outcome, tmp_path: Path) -> None:
    # Every report page (sessions and ad cost run side by side, so "the first page" is either
    # one, and an empty one is left as it is): each gets the broken rows, the real ones survive.
    outcome = hostile_run(company, backend, tmp_path,
                          h.rewrite(h.ga4_rows(h.ga4_row_broken), endpoint=RUN_REPORT, times=None))
    assert outcome.report.status == "ok", outcome.report.errors
    assert len([q for q in outcome.quarantine if q[0] == "ga4.sessions"]) >= 3
    other_streams_as_clean(outcome, clean)  # every real row arrived too


def test_an_html_page_answering_a_batch_update_fails_those_records_not_the_run(
    company: Company, backend: str, clean: Outcome, tmp_path: Path
) -> None:
    outcome = hostile_run(company, backend, tmp_path, h.rewrite(h.html_page, endpoint=BATCH_UPDATE, times=None))
    report = outcome.report
    assert report.failed_streams == [] and report.writeback is not None
    assert report.writeback.properties_written == 0 and report.writeback.records_failed > 0
    other_streams_as_clean(outcome, clean)
