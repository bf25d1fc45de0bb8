"""The HubSpot connector, through the real hubspot-api-client, against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from closedloop.config.models import HubSpotConfig
from closedloop.connectors.base import PropertySpec, PropertyUpdate
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.hubspot import HubSpotClient, HubSpotSource, HubSpotWriter
from closedloop.connectors.hubspot import search as search_module
from closedloop.connectors.hubspot import source as source_module
from closedloop.connectors.hubspot.parse import hash_email
from closedloop.errors import AuthError
from closedloop.records import ContactRecord, DealContactLink, DealRecord, DealStageEvent
from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TOKEN = "test-token"
STAGES = [
    ("appointmentscheduled", 0.2, False),
    ("contractsent", 0.9, False),
    ("closedwon", 1.0, True),
    ("closedlost", 0.0, True),
]


def company(n: int = 30, *, same_instant: bool = False, deals: int = 10) -> Company:
    contacts = [
        SyntheticContact(
            id=str(100 + i),
            email=f"Person{i}@Example.com ",
            created_at=T0 + timedelta(hours=i),
            updated_at=T0 if same_instant else T0 + timedelta(hours=i, minutes=5),
            lifecycle_stage="lead",
            ga_client_ids=[f"{i}.1", f"{i}.2"] if i % 3 == 0 else [f"{i}.1"],
            original_source="PAID_SEARCH",
            gclid="Cj0x" if i % 2 else "",
        )
        for i in range(n)
    ]
    pipeline = SyntheticPipeline(
        "default", "Sales", [SyntheticStage(sid, sid, k, p, closed) for k, (sid, p, closed) in enumerate(STAGES)]
    )
    synthetic_deals = [
        SyntheticDeal(
            id=str(9000 + i),
            name=f"Deal {i}",
            pipeline="default",
            amount=1000.0 * (i + 1),
            created_at=T0 + timedelta(days=1, hours=i),
            updated_at=T0 + timedelta(days=20, hours=i),
            stage_history=[
                SyntheticStageChange("appointmentscheduled", T0 + timedelta(days=1, hours=i)),
                SyntheticStageChange("closedwon", T0 + timedelta(days=20, hours=i)),
            ],
            contact_ids=[str(100 + i), str(101 + i)],
            closed_at=T0 + timedelta(days=20, hours=i),
        )
        for i in range(0, min(n - 1, deals))
    ]
    return Company(contacts=contacts, deals=synthetic_deals, pipelines=[pipeline])


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    state = HubSpotState()
    state.load_company(company())
    with HubSpotSandbox(state, access_token=TOKEN, burst_limit=10_000, search_per_second=1000) as sb:
        yield sb


def connect(
    sb: HubSpotSandbox, *, token: str = TOKEN, page: int = 200
) -> tuple[HubSpotSource, HubSpotWriter, ApiCallLog]:
    log = ApiCallLog()
    config = HubSpotConfig(base_url=sb.url, access_token=SecretStr(token), search_page_size=page)
    client = HubSpotClient(base_url=sb.url, token_provider=lambda: token, log=log, max_retries=2, sleep=lambda _s: None)
    return HubSpotSource(client, config), HubSpotWriter(client), log


def pull_all(
    source: HubSpotSource, stream: str, cursor: dict[str, Any] | None = None
) -> tuple[list[Any], dict[str, Any] | None]:
    records: list[Any] = []
    for batch in source.pull(stream, cursor, now=T0 + timedelta(days=60)):
        assert not batch.quarantined
        records.extend(batch.records)
        cursor = batch.cursor
    return records, cursor


def test_contacts_arrive_once_with_identities(sandbox: HubSpotSandbox) -> None:
    source, _, log = connect(sandbox, page=7)
    contacts, cursor = pull_all(source, "hubspot.contacts")
    assert sorted(c.crm_id for c in contacts) == [str(100 + i) for i in range(30)]
    first = next(c for c in contacts if c.crm_id == "100")
    assert isinstance(first, ContactRecord)
    assert first.ga_client_ids == ("0.1", "0.2")
    assert first.email_hash == hash_email("person0@example.com")
    assert first.created_at == T0 and first.original_source == "PAID_SEARCH"
    assert next(c for c in contacts if c.crm_id == "101").click_ids == {"gclid": "Cj0x"}
    assert log.total(endpoint_contains="contacts/search") == 5  # 30 contacts, 7 per page
    again, _ = pull_all(source, "hubspot.contacts", cursor)
    assert again == []


def test_incremental_pull_returns_only_what_changed(sandbox: HubSpotSandbox) -> None:
    source, _, _ = connect(sandbox)
    _, cursor = pull_all(source, "hubspot.contacts")
    sandbox.state.write("contacts", "105", {"lifecyclestage": "customer"}, now=T0 + timedelta(days=40))
    changed, _ = pull_all(source, "hubspot.contacts", cursor)
    assert [(c.crm_id, c.lifecycle_stage) for c in changed] == [("105", "customer")]


def test_deals_with_stage_history_and_contacts(sandbox: HubSpotSandbox) -> None:
    source, _, log = connect(sandbox)
    records, _ = pull_all(source, "hubspot.deals")
    deals = [r for r in records if isinstance(r, DealRecord)]
    events = [r for r in records if isinstance(r, DealStageEvent)]
    links = [r for r in records if isinstance(r, DealContactLink)]
    assert len(deals) == 10
    won = next(d for d in deals if d.crm_id == "9003")
    assert won.is_won and won.amount == 4000.0 and won.pipeline == "default"
    assert sorted((e.stage, e.entered_at) for e in events if e.deal_id == "9003") == [
        ("appointmentscheduled", T0 + timedelta(days=1, hours=3)),
        ("closedwon", T0 + timedelta(days=20, hours=3)),
    ]
    assert sorted(link.contact_id for link in links if link.deal_id == "9003") == ["103", "104"]
    # The first pull lists (history included, 50 a call) after one search for the newest change.
    assert log.total(endpoint_contains="GET /crm/v3/objects/deals") == 1
    assert log.total(endpoint_contains="deals/search") == 1
    assert log.total(endpoint_contains="deals/batch/read") == 0
    assert log.total(endpoint_contains="associations") == 1


def test_after_the_first_listing_only_changed_deals_are_searched(sandbox: HubSpotSandbox) -> None:
    source, _, log = connect(sandbox)
    listed, cursor = pull_all(source, "hubspot.deals")
    assert cursor is not None and "listing_after" not in cursor and cursor["since_ms"] is not None
    newest = max(d.updated_at for d in listed if isinstance(d, DealRecord))
    sandbox.state.write("deals", "9003", {"amount": "4500"}, now=T0 + timedelta(days=40))
    changed, _ = pull_all(source, "hubspot.deals", cursor)
    deals = {d.crm_id: d for d in changed if isinstance(d, DealRecord)}
    assert deals["9003"].amount == 4500.0
    # Besides it, only deals changed within the clock margin before the listing are read again.
    margin = timedelta(milliseconds=source_module.CLOCK_MARGIN_MS)
    assert all(d.updated_at >= newest - margin for i, d in deals.items() if i != "9003")
    assert len(deals) < len([d for d in listed if isinstance(d, DealRecord)])
    assert {e.stage for e in changed if isinstance(e, DealStageEvent) and e.deal_id == "9003"} == {
        "appointmentscheduled",
        "closedwon",
    }
    assert log.total(endpoint_contains="GET /crm/v3/objects/deals") == 1  # listed once, never again
    assert log.total(endpoint_contains="deals/batch/read") == 1  # the history of the changed deals


def test_an_interrupted_listing_resumes_where_its_cursor_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_module, "ASSOCIATION_BATCH", 100)  # a batch (and a cursor) per 100 deals
    state = HubSpotState()
    state.load_company(company(460, deals=450))
    with HubSpotSandbox(state, access_token=TOKEN, burst_limit=10_000, search_per_second=1000) as sb:
        source, _, log = connect(sb)
        first = next(iter(source.pull("hubspot.deals", None, now=T0 + timedelta(days=60))))
        assert first.cursor is not None and first.cursor["listing_after"]
        seen = {r.crm_id for r in first.records if isinstance(r, DealRecord)}
        rest, cursor = pull_all(source, "hubspot.deals", first.cursor)  # a new process, from the stored cursor
    later = [r.crm_id for r in rest if isinstance(r, DealRecord)]
    assert len(seen) == 100 and len(later) == 350
    assert not seen & set(later) and len(seen | set(later)) == 450
    assert cursor is not None and "listing_after" not in cursor
    assert log.total(endpoint_contains="deals/search") == 1  # the newest-change probe ran once


def test_search_window_restarts_past_the_result_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cap lowered to 40, 130 contacts need four windows; none lost, none repeated."""
    monkeypatch.setattr(search_module, "SEARCH_RESULT_CAP", 40)
    state = HubSpotState()
    state.load_company(company(130))
    with HubSpotSandbox(state, access_token=TOKEN, burst_limit=10_000, search_per_second=1000) as sb:
        source, _, _ = connect(sb, page=20)
        contacts, _ = pull_all(source, "hubspot.contacts")
    ids = [c.crm_id for c in contacts]
    assert len(ids) == len(set(ids)) == 130


def test_more_records_at_one_instant_than_a_window_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk imports stamp many records with one time: that instant is read in id order."""
    monkeypatch.setattr(search_module, "SEARCH_RESULT_CAP", 40)
    state = HubSpotState()
    state.load_company(company(95, same_instant=True))
    with HubSpotSandbox(state, access_token=TOKEN, burst_limit=10_000, search_per_second=1000) as sb:
        source, _, _ = connect(sb, page=20)
        contacts, cursor = pull_all(source, "hubspot.contacts")
        again, _ = pull_all(source, "hubspot.contacts", cursor)
    ids = [c.crm_id for c in contacts]
    assert len(ids) == len(set(ids)) == 95
    assert again == []


def test_a_restart_mid_stream_loses_and_repeats_nothing(sandbox: HubSpotSandbox) -> None:
    source, _, _ = connect(sandbox, page=4)
    seen: list[str] = []
    cursor = None
    for i, batch in enumerate(source.pull("hubspot.contacts", None, now=T0)):
        seen.extend(r.crm_id for r in batch.records)
        cursor = batch.cursor
        if i == 2:
            break  # the process died here; the cursor of batch 3 was committed with it
    rest, _ = pull_all(source, "hubspot.contacts", cursor)
    seen.extend(r.crm_id for r in rest)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 30


def test_writer_creates_properties_once_and_writes_in_batches(sandbox: HubSpotSandbox) -> None:
    _, writer, log = connect(sandbox)
    writer.batch_size = 7
    specs = [PropertySpec("contacts", "cl_channel", "Channel"), PropertySpec("deals", "cl_split", "Split")]
    assert sorted(writer.ensure_properties(specs, group_name="cl", group_label="closedloop")) == [
        "contacts.cl_channel",
        "deals.cl_split",
    ]
    assert writer.ensure_properties(specs, group_name="cl", group_label="closedloop") == []
    assert sandbox.state.property_definitions("contacts")["cl_channel"]["groupName"] == "cl"
    updates = [PropertyUpdate("contacts", str(100 + i), {"cl_channel": f"c{i}"}) for i in range(30)]
    result = writer.write(updates)
    assert len(result.written) == 30 and result.failed == []
    assert log.total(endpoint_contains="contacts/batch/update") == 5  # ceil(30 / 7)
    assert sandbox.state.get_properties("contacts", "107")["cl_channel"] == "c7"


def test_partial_failure_207_names_the_failed_record(sandbox: HubSpotSandbox) -> None:
    _, writer, log = connect(sandbox)
    writer.ensure_properties([PropertySpec("contacts", "cl_channel", "Channel")], group_name="cl", group_label="cl")
    result = writer.write(
        [
            PropertyUpdate("contacts", "101", {"cl_channel": "Email"}),
            PropertyUpdate("contacts", "99999", {"cl_channel": "Email"}),
        ]
    )
    assert [u.object_id for u in result.written] == ["101"]
    assert [f.object_id for f in result.failed] == ["99999"]
    assert result.failed[0].reason
    assert "207" in log.by_endpoint()["hubspot POST /crm/v3/objects/contacts/batch/update"]


def test_a_wrong_token_is_an_auth_error_without_the_token(sandbox: HubSpotSandbox) -> None:
    source, _, _ = connect(sandbox, token="wrong-token-value")
    with pytest.raises(AuthError) as info:
        pull_all(source, "hubspot.contacts")
    assert info.value.status == 401
    assert "wrong-token-value" not in str(info.value)


def test_burst_429s_are_retried_until_the_window_allows(sandbox: HubSpotSandbox) -> None:
    state = HubSpotState()
    state.load_company(company())
    clock = [0.0]
    with HubSpotSandbox(
        state, access_token=TOKEN, burst_limit=3, burst_window_s=10, search_per_second=1000, clock=lambda: clock[0]
    ) as sb:
        log = ApiCallLog()
        slept: list[float] = []

        def sleep(seconds: float) -> None:  # time passes only when the client waits
            slept.append(seconds)
            clock[0] += 11

        client = HubSpotClient(base_url=sb.url, token_provider=lambda: TOKEN, log=log, max_retries=3, sleep=sleep)
        source = HubSpotSource(
            client, HubSpotConfig(base_url=sb.url, access_token=SecretStr(TOKEN), search_page_size=5)
        )
        contacts, _ = pull_all(source, "hubspot.contacts")
    assert len(contacts) == 30
    statuses = log.by_endpoint()["hubspot POST /crm/v3/objects/contacts/search"]
    assert statuses["200"] == 6 and statuses.get("429", 0) >= 1 and len(slept) == statuses["429"]


def test_deal_pages_are_gathered_so_association_reads_are_full() -> None:
    state = HubSpotState()
    state.load_company(company(460, deals=450))
    with HubSpotSandbox(state, access_token=TOKEN, burst_limit=10_000, search_per_second=1000) as sb:
        source, _, log = connect(sb, page=200)
        listed, _ = pull_all(source, "hubspot.deals")
        assert len([r for r in listed if isinstance(r, DealRecord)]) == 450
        assert log.total(endpoint_contains="GET /crm/v3/objects/deals") == 9  # 50 per call with history
        assert log.total(endpoint_contains="associations") == 1  # 450 ids in one read of up to 1,000
        searched, _ = pull_all(source, "hubspot.deals", {"since_ms": 0, "ids_at_since": []})
    assert len([r for r in searched if isinstance(r, DealRecord)]) == 450
    assert log.total(endpoint_contains="deals/search") == 1 + 3
    assert log.total(endpoint_contains="deals/batch/read") == 9  # 50 per call with history
    assert log.total(endpoint_contains="associations") == 2
