"""The HubSpot sandbox driven by the unmodified official SDK over HTTP.

Each test builds its expectation from the hand-made company below, never from a pasted answer,
so a sandbox that drops, repeats or mis-filters records fails.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TOKEN = "pat-na1-test-secret-7f3c"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
SOURCES = ("PAID_SEARCH", "ORGANIC_SEARCH", "OFFLINE", "DIRECT_TRAFFIC")
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
)


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


class FakeNow:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


@contextmanager
def serving(sandbox: HubSpotSandbox) -> Iterator[HubSpotSandbox]:
    """Stops in the background: the stdlib server takes up to half a second to notice."""
    sandbox.start()
    try:
        yield sandbox
    finally:
        threading.Thread(target=sandbox.stop, daemon=True).start()


def make_company(n_contacts: int = 37) -> Company:
    contacts = []
    for i in range(n_contacts):
        created = T0 + timedelta(hours=5 * i)
        contacts.append(
            SyntheticContact(
                id=str(101 + 3 * i),  # gaps, like real portals
                email=f"person{i}@{'acme' if i % 3 else 'globex'}.example",
                created_at=created,
                updated_at=created + timedelta(minutes=30),
                lifecycle_stage=STAGES[i % len(STAGES)],
                ga_client_ids=[f"{1000 + i}.{2000 + i}"] + ([f"9{i}.9{i}"] if i % 5 == 0 else []),
                original_source=SOURCES[i % len(SOURCES)],
                original_source_detail_1="google" if i % 2 else "",
                utm_source="google" if i % 4 == 0 else "",
                utm_medium="cpc" if i % 4 == 0 else "",
                utm_campaign=f"spring-{i % 2}" if i % 4 == 0 else "",
                gclid=f"gclid-{i}" if i % 4 == 0 else "",
            )
        )
    pipeline = SyntheticPipeline(
        "default",
        "Sales Pipeline",
        [
            SyntheticStage("appointmentscheduled", "Appointment", 0, 0.2, False),
            SyntheticStage("closedwon", "Closed Won", 1, 1.0, True),
            SyntheticStage("closedlost", "Closed Lost", 2, 0.0, True),
        ],
    )
    deals = [
        SyntheticDeal(
            id="5001",
            name="Acme expansion",
            pipeline="default",
            amount=12000.0,
            created_at=T0 + timedelta(days=2),
            updated_at=T0 + timedelta(days=9),
            stage_history=[
                SyntheticStageChange("appointmentscheduled", T0 + timedelta(days=2)),
                SyntheticStageChange("closedwon", T0 + timedelta(days=9)),
            ],
            contact_ids=[contacts[1].id, contacts[2].id],
            closed_at=T0 + timedelta(days=9),
        ),
        SyntheticDeal(
            id="5002",
            name="Globex pilot",
            pipeline="default",
            amount=800.5,
            created_at=T0 + timedelta(days=3),
            updated_at=T0 + timedelta(days=6),
            stage_history=[
                SyntheticStageChange("appointmentscheduled", T0 + timedelta(days=3)),
                SyntheticStageChange("closedlost", T0 + timedelta(days=6)),
            ],
            contact_ids=[contacts[0].id],
            closed_at=T0 + timedelta(days=6),
        ),
        SyntheticDeal(
            id="5003",
            name="Open deal",
            pipeline="default",
            amount=300.0,
            created_at=T0 + timedelta(days=4),
            updated_at=T0 + timedelta(days=4),
            stage_history=[SyntheticStageChange("appointmentscheduled", T0 + timedelta(days=4))],
            contact_ids=[],
        ),
    ]
    return Company(contacts=contacts, deals=deals, pipelines=[pipeline])


@pytest.fixture
def company() -> Company:
    return make_company()


@pytest.fixture
def write_clock() -> FakeNow:
    return FakeNow(datetime(2025, 6, 1, 12, 0, 0, 250000, tzinfo=UTC))


@pytest.fixture
def sandbox(company: Company, write_clock: FakeNow) -> Iterator[HubSpotSandbox]:
    state = HubSpotState()
    state.load_company(company)
    with serving(
        HubSpotSandbox(
            state,
            access_token=TOKEN,
            burst_limit=100_000,
            search_per_second=100_000,
            now=write_clock,
        )
    ) as running:
        yield running


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sandbox.url)


def all_pages(api: Any, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    after = None
    while True:
        page = api.get_page(after=after, **kwargs)
        out.extend(page.results)
        if page.paging is None or page.paging.next is None:
            return out
        after = page.paging.next.after


def search_all(api: Any, request: dict[str, Any]) -> tuple[int, list[Any]]:
    out: list[Any] = []
    after: str | None = None
    while True:
        page = api.do_search(PublicObjectSearchRequest(after=after, **request))
        out.extend(page.results)
        if page.paging is None:
            return page.total, out
        after = page.paging.next.after


def millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def body_of(exc: Exception) -> dict[str, Any]:
    return json.loads(exc.body)  # type: ignore[attr-defined]


# ---- loading -------------------------------------------------------------------------------


def test_load_company_maps_contact_fields(company: Company) -> None:
    state = HubSpotState()
    state.load_company(company)
    contact = company.contacts[5]
    props = state.get_properties("contacts", contact.id)
    assert props["hs_object_id"] == contact.id
    assert props["email"] == contact.email
    assert props["ga_client_id"] == ";".join(contact.ga_client_ids)
    assert ";" in props["ga_client_id"]  # contact 5 has two client ids
    assert props["lifecyclestage"] == contact.lifecycle_stage
    assert props["hs_analytics_source"] == contact.original_source
    assert props["hs_analytics_source_data_1"] == contact.original_source_detail_1
    for name in ("createdate", "lastmodifieddate", "hs_lastmodifieddate"):
        assert ISO_MS.match(props[name] or ""), name
    assert props["lastmodifieddate"] == props["hs_lastmodifieddate"]
    tagged = state.get_properties("contacts", company.contacts[4].id)
    assert tagged["hs_google_click_id"] == company.contacts[4].gclid
    assert tagged["utm_campaign"] == company.contacts[4].utm_campaign


def test_load_company_marks_won_and_lost_deals(company: Company) -> None:
    state = HubSpotState()
    state.load_company(company)
    won, lost, open_deal = (state.get_properties("deals", d.id) for d in company.deals)
    assert (won["hs_is_closed"], won["hs_is_closed_won"]) == ("true", "true")
    assert (lost["hs_is_closed"], lost["hs_is_closed_won"]) == ("true", "false")
    assert (open_deal["hs_is_closed"], open_deal["hs_is_closed_won"]) == ("false", "false")
    assert won["dealstage"] == company.deals[0].stage_history[-1].stage
    assert float(lost["amount"] or "nan") == company.deals[1].amount


def test_load_company_rejects_non_digit_ids(company: Company) -> None:
    company.contacts[0].id = "abc"
    with pytest.raises(ValueError, match="digits"):
        HubSpotState().load_company(company)


def test_property_definitions_carry_groups() -> None:
    definitions = HubSpotState().property_definitions("contacts")
    assert definitions["email"]["groupName"] == "contactinformation"
    assert definitions["ga_client_id"]["type"] == "string"
    assert HubSpotState().property_definitions("deals")["amount"]["type"] == "number"


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=3, max_value=60), limit=st.integers(min_value=1, max_value=100))
def test_state_paging_visits_every_object_once(n: int, limit: int) -> None:
    state = HubSpotState()
    state.load_company(make_company(n))
    seen: list[str] = []
    after: int | None = None
    while True:
        page, after = state.page("contacts", after, limit, archived=False)
        assert len(page) <= limit
        seen.extend(o.id for o in page)
        if after is None:
            break
    assert sorted(seen, key=int) == seen
    assert seen == sorted((c.id for c in make_company(n).contacts), key=int)


# ---- list and get --------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 7, 10, 100])
def test_paging_returns_each_contact_exactly_once(
    client: HubSpot, company: Company, limit: int
) -> None:
    results = all_pages(client.crm.contacts.basic_api, limit=limit, properties=["email"])
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids))
    assert set(ids) == {c.id for c in company.contacts}
    assert {r.properties["email"] for r in results} == {c.email for c in company.contacts}


def test_list_limit_over_100_is_refused(client: HubSpot) -> None:
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.get_page(limit=101)
    assert caught.value.status == 400
    assert body_of(caught.value)["category"] == "VALIDATION_ERROR"


def test_deal_stage_history_comes_newest_first(client: HubSpot, company: Company) -> None:
    deals = all_pages(client.crm.deals.basic_api, properties_with_history=["dealstage"])
    by_id = {d.id: d for d in deals}
    for deal in company.deals:
        history = by_id[deal.id].properties_with_history["dealstage"]
        expected = [change.stage for change in reversed(deal.stage_history)]
        assert [h.value for h in history] == expected
        assert [h.timestamp for h in history] == [c.at for c in reversed(deal.stage_history)]


def test_list_with_associations(client: HubSpot, company: Company) -> None:
    page = client.crm.deals.basic_api.get_page(associations=["contacts"], limit=100)
    for deal in page.results:
        wanted = next(d for d in company.deals if d.id == deal.id).contact_ids
        got = [a.id for a in deal.associations["contacts"].results] if deal.associations else []
        assert got == wanted


def test_get_by_id_and_by_email(client: HubSpot, company: Company) -> None:
    contact = company.contacts[3]
    by_id = client.crm.contacts.basic_api.get_by_id(contact.id, properties=["email"])
    by_email = client.crm.contacts.basic_api.get_by_id(
        contact.email, properties=["email"], id_property="email"
    )
    assert by_id.id == by_email.id == contact.id
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.get_by_id("999999")
    assert caught.value.status == 404


# ---- search --------------------------------------------------------------------------------


def test_search_filters_on_enumeration_and_datetime(client: HubSpot, company: Company) -> None:
    cutoff = T0 + timedelta(hours=40)
    expected = {
        c.id for c in company.contacts if c.lifecycle_stage == "customer" and c.created_at >= cutoff
    }
    for value in (millis(cutoff), cutoff.isoformat().replace("+00:00", ".000Z")):
        total, results = search_all(
            client.crm.contacts.search_api,
            {
                "filter_groups": [
                    {
                        "filters": [
                            {
                                "propertyName": "lifecyclestage",
                                "operator": "EQ",
                                "value": "customer",
                            },
                            {"propertyName": "createdate", "operator": "GTE", "value": value},
                        ]
                    }
                ],
                "limit": 3,
            },
        )
        assert total == len(expected) > 0
        assert {r.id for r in results} == expected


def test_search_or_of_groups_in_and_has_property(client: HubSpot, company: Company) -> None:
    expected = {
        c.id for c in company.contacts if c.original_source in ("OFFLINE", "PAID_SEARCH") or c.gclid
    }
    _, results = search_all(
        client.crm.contacts.search_api,
        {
            "filter_groups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_analytics_source",
                            "operator": "IN",
                            "values": ["OFFLINE", "PAID_SEARCH"],
                        }
                    ]
                },
                {"filters": [{"propertyName": "hs_google_click_id", "operator": "HAS_PROPERTY"}]},
            ],
            "limit": 200,
        },
    )
    assert {r.id for r in results} == expected


def test_search_contains_token_and_between(client: HubSpot, company: Company) -> None:
    globex = {c.id for c in company.contacts if c.email.endswith("@globex.example")}
    _, results = search_all(
        client.crm.contacts.search_api,
        {
            "filter_groups": [
                {
                    "filters": [
                        {
                            "propertyName": "email",
                            "operator": "CONTAINS_TOKEN",
                            "value": "*@globex.example",
                        }
                    ]
                }
            ],
            "limit": 200,
        },
    )
    assert {r.id for r in results} == globex
    low, high = 500, 5000
    deals = client.crm.deals.search_api.do_search(
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "amount",
                            "operator": "BETWEEN",
                            "value": str(low),
                            "highValue": str(high),
                        }
                    ]
                }
            ],
            "limit": 10,
        }
    )
    assert {d.id for d in deals.results} == {d.id for d in company.deals if low <= d.amount <= high}


@pytest.mark.parametrize(
    "sorts",
    [
        [{"propertyName": "createdate", "direction": "DESCENDING"}],
        ['{"propertyName":"createdate","direction":"DESCENDING"}'],
        ["-createdate"],
    ],
)
def test_search_sorts_descending_in_every_form(
    client: HubSpot, company: Company, sorts: list[Any]
) -> None:
    _, results = search_all(client.crm.contacts.search_api, {"sorts": sorts, "limit": 11})
    expected = [c.id for c in sorted(company.contacts, key=lambda c: c.created_at, reverse=True)]
    assert [r.id for r in results] == expected


def test_search_sorts_numbers_as_numbers(client: HubSpot, company: Company) -> None:
    page = client.crm.deals.search_api.do_search(
        PublicObjectSearchRequest(sorts=["amount"], properties=["amount"], limit=10)
    )
    assert [r.id for r in page.results] == [
        d.id for d in sorted(company.deals, key=lambda d: d.amount)
    ]


def test_search_past_ten_thousand_is_a_400(client: HubSpot) -> None:
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(after="10000", limit=10))
    assert caught.value.status == 400
    assert body_of(caught.value)["category"] == "VALIDATION_ERROR"
    ok = client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(after="9990", limit=10))
    assert ok.results == []


def test_search_caps_filter_groups_and_limit(client: HubSpot) -> None:
    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    for request in (
        PublicObjectSearchRequest(filter_groups=[group] * 6),
        PublicObjectSearchRequest(filter_groups=[{"filters": group["filters"] * 7}]),
        PublicObjectSearchRequest(limit=201),
    ):
        with pytest.raises(ContactsApiException) as caught:
            client.crm.contacts.search_api.do_search(request)
        assert caught.value.status == 400


def test_search_sees_writes(client: HubSpot, company: Company) -> None:
    target = company.contacts[0]
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "lifecyclestage", "operator": "EQ", "value": "evangelist"}
                ]
            }
        ]
    )
    assert client.crm.contacts.search_api.do_search(request).total == 0
    client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": target.id, "properties": {"lifecyclestage": "evangelist"}}]
        )
    )
    found = client.crm.contacts.search_api.do_search(request)
    assert [r.id for r in found.results] == [target.id]


# ---- batch ---------------------------------------------------------------------------------


def test_batch_update_writes_stamps_and_records_history(
    client: HubSpot, sandbox: HubSpotSandbox, company: Company, write_clock: FakeNow
) -> None:
    ids = [c.id for c in company.contacts[:3]]
    response = client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"utm_campaign": f"cl-{i}"}} for i in ids]
        )
    )
    assert response.status == "COMPLETE"
    assert not hasattr(response, "num_errors") or not response.num_errors
    stamp = "2025-06-01T12:00:00.250Z"
    for object_id in ids:
        props = sandbox.state.get_properties("contacts", object_id)
        assert props["utm_campaign"] == f"cl-{object_id}"
        assert props["lastmodifieddate"] == props["hs_lastmodifieddate"] == stamp
    history = client.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": ids[0]}], properties=[], properties_with_history=["utm_campaign"]
        )
    )
    values = [h.value for h in history.results[0].properties_with_history["utm_campaign"]]
    assert values[0] == f"cl-{ids[0]}"
    assert values[1:] == (
        [company.contacts[0].utm_campaign] if company.contacts[0].utm_campaign else []
    )


def test_batch_of_101_is_a_400(client: HubSpot, company: Company, sandbox: HubSpotSandbox) -> None:
    inputs = [{"id": company.contacts[0].id, "properties": {"utm_source": "x"}}] * 101
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert caught.value.status == 400
    assert body_of(caught.value)["category"] == "VALIDATION_ERROR"
    assert sandbox.state.get_properties("contacts", company.contacts[0].id)["utm_source"] != "x"


def test_batch_update_partial_failure_is_a_207(
    client: HubSpot, sandbox: HubSpotSandbox, company: Company
) -> None:
    client.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name="cl_score",
            label="Score",
            type="number",
            field_type="number",
            group_name="contactinformation",
        ),
    )
    good, bad_value = company.contacts[0].id, company.contacts[1].id
    response = client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": good, "properties": {"cl_score": "12.5"}},
                {"id": bad_value, "properties": {"cl_score": "twelve"}},
                {"id": "424242", "properties": {"cl_score": "1"}},
            ]
        )
    )
    assert type(response).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert response.num_errors == 2
    failed = {i for error in response.errors for i in error.context["ids"]}
    assert failed == {bad_value, "424242"}
    categories = {error.category for error in response.errors}
    assert categories == {"OBJECT_NOT_FOUND", "VALIDATION_ERROR"}
    assert [r.id for r in response.results] == [good]
    assert sandbox.state.get_properties("contacts", good)["cl_score"] == "12.5"
    assert sandbox.state.get_properties("contacts", bad_value).get("cl_score") is None


def test_writing_an_unknown_property_fails_the_whole_batch(
    client: HubSpot, sandbox: HubSpotSandbox, company: Company
) -> None:
    target = company.contacts[0].id
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": target, "properties": {"utm_source": "changed"}},
                    {"id": target, "properties": {"no_such_property": "1"}},
                ]
            )
        )
    assert caught.value.status == 400
    body = body_of(caught.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert sandbox.state.get_properties("contacts", target)["utm_source"] != "changed"


def test_batch_read_names_missing_ids_and_caps_history_reads(
    client: HubSpot, company: Company
) -> None:
    wanted = [company.contacts[0].id, "777777"]
    response = client.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in wanted], properties=["email"], properties_with_history=[]
        )
    )
    assert [r.id for r in response.results] == [company.contacts[0].id]
    assert response.errors[0].context["ids"] == ["777777"]
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": c.id} for c in company.contacts[:1]] * 51,
                properties=[],
                properties_with_history=["email"],
            )
        )
    assert caught.value.status == 400


def test_batch_upsert_by_email_updates_or_creates(
    client: HubSpot, sandbox: HubSpotSandbox, company: Company
) -> None:
    existing = company.contacts[2]
    response = client.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": existing.email, "idProperty": "email", "properties": {"utm_source": "up"}},
                {
                    "id": "new@initech.example",
                    "idProperty": "email",
                    "properties": {"utm_source": "up"},
                },
            ]
        )
    )
    outcome = {r.properties.get("email") or r.id: r.new for r in response.results}
    assert sandbox.state.get_properties("contacts", existing.id)["utm_source"] == "up"
    created = [r for r in response.results if r.new]
    assert len(created) == 1 and created[0].id not in {c.id for c in company.contacts}
    assert sandbox.state.get_properties("contacts", created[0].id)["email"] == "new@initech.example"
    assert list(outcome.values()).count(False) == 1


def test_concurrent_batch_updates_all_land(sandbox: HubSpotSandbox, company: Company) -> None:
    def worker(index: int) -> None:
        own = HubSpot(access_token=TOKEN, host=sandbox.url).crm.contacts.batch_api
        contact = company.contacts[index]
        for round_ in range(5):
            own.update(
                BatchInputSimplePublicObjectBatchInput(
                    inputs=[{"id": contact.id, "properties": {"utm_medium": f"m{round_}"}}]
                )
            )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for contact in company.contacts[:8]:
        props = sandbox.state.get_properties("contacts", contact.id)
        assert props["utm_medium"] == "m4"


# ---- properties, pipelines, associations ---------------------------------------------------


def test_properties_create_and_conflicts(client: HubSpot) -> None:
    api = client.crm.properties
    group = api.groups_api.create(
        "contacts", PropertyGroupCreate(name="closedloop", label="closedloop")
    )
    assert group.name == "closedloop"
    with pytest.raises(PropertiesApiException) as caught:
        api.groups_api.create("contacts", PropertyGroupCreate(name="closedloop", label="again"))
    assert caught.value.status == 409
    new = PropertyCreate(
        name="cl_first_touch_channel",
        label="First touch",
        type="string",
        field_type="text",
        group_name="closedloop",
    )
    created = api.core_api.create("contacts", new)
    assert (created.name, created.group_name) == ("cl_first_touch_channel", "closedloop")
    with pytest.raises(PropertiesApiException) as caught:
        api.core_api.create("contacts", new)
    assert caught.value.status == 409
    orphan = PropertyCreate(
        name="cl_orphan", label="x", type="string", field_type="text", group_name="nope"
    )
    with pytest.raises(PropertiesApiException) as caught:
        api.core_api.create("contacts", orphan)
    assert caught.value.status == 400
    names = {p.name: p.group_name for p in api.core_api.get_all("contacts").results}
    assert names["cl_first_touch_channel"] == "closedloop"
    assert names["email"] == "contactinformation"
    assert api.core_api.get_by_name("contacts", "cl_first_touch_channel").label == "First touch"


def test_pipelines(client: HubSpot, company: Company) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == [p.id for p in company.pipelines]
    for stage, synthetic in zip(pipelines[0].stages, company.pipelines[0].stages, strict=True):
        assert stage.id == synthetic.id
        assert stage.metadata["isClosed"] == str(synthetic.is_closed).lower()
        assert float(stage.metadata["probability"]) == synthetic.probability
    one = client.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert one.label == company.pipelines[0].label
    with pytest.raises(PipelinesApiException) as caught:
        client.crm.pipelines.pipelines_api.get_by_id("deals", "missing")
    assert caught.value.status == 404


def test_associations_v4_batch_read(client: HubSpot, company: Company) -> None:
    api = client.crm.associations.v4.batch_api
    deal_ids = [d.id for d in company.deals]
    response = api.get_page(
        "deals",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in deal_ids]),
    )
    linked = {r._from.id: [str(t.to_object_id) for t in r.to] for r in response.results}
    assert linked == {d.id: d.contact_ids for d in company.deals if d.contact_ids}
    assert response.num_errors == 1  # the deal without contacts
    assert all(t.association_types[0].type_id == 3 for r in response.results for t in r.to)
    back = api.get_page(
        "contacts",
        "deals",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": company.contacts[1].id}]),
    )
    assert [str(t.to_object_id) for t in back.results[0].to] == [company.deals[0].id]
    unknown = api.get_page(
        "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": "8888"}])
    )
    assert unknown.errors[0].context["ids"] == ["8888"]


# ---- auth and rate limits ------------------------------------------------------------------


def test_wrong_or_missing_token_is_a_401_that_never_echoes_it(sandbox: HubSpotSandbox) -> None:
    wrong = "pat-na1-wrong-secret-123"
    with pytest.raises(ContactsApiException) as caught:
        HubSpot(access_token=wrong, host=sandbox.url).crm.contacts.basic_api.get_page()
    assert caught.value.status == 401
    assert body_of(caught.value)["category"] == "INVALID_AUTHENTICATION"
    everything = str(caught.value.body) + str(dict(caught.value.headers))
    assert wrong not in everything and TOKEN not in everything
    with pytest.raises(DealsApiException) as caught_missing:
        HubSpot(host=sandbox.url).crm.deals.basic_api.get_page()
    assert caught_missing.value.status == 401


def test_burst_limit_429_with_headers_then_recovery(company: Company) -> None:
    clock = FakeClock()
    state = HubSpotState()
    state.load_company(company)
    with serving(
        HubSpotSandbox(state, access_token=TOKEN, burst_limit=5, burst_window_s=10.0, clock=clock)
    ) as sb:
        api = HubSpot(access_token=TOKEN, host=sb.url).crm.contacts.basic_api
        remaining = []
        for _ in range(5):
            _, status, headers = api.get_page_with_http_info()
            assert status == 200
            assert all(h in headers for h in RATE_HEADERS)
            remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        with pytest.raises(ContactsApiException) as caught:
            api.get_page()
        assert caught.value.status == 429
        body = body_of(caught.value)
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert caught.value.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert "Retry-After" not in caught.value.headers
        clock.seconds += 10.5
        assert api.get_page().results


def test_daily_limit(company: Company) -> None:
    clock = FakeClock()
    with serving(
        HubSpotSandbox(HubSpotState(), access_token=TOKEN, daily_limit=3, clock=clock)
    ) as sb:
        api = HubSpot(access_token=TOKEN, host=sb.url).crm.deals.basic_api
        for _ in range(3):
            api.get_page()
        with pytest.raises(DealsApiException) as caught:
            api.get_page()
        assert body_of(caught.value)["policyName"] == "DAILY"
        assert caught.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_search_has_its_own_per_second_limit_and_no_rate_headers(company: Company) -> None:
    clock = FakeClock()
    state = HubSpotState()
    state.load_company(company)
    with serving(HubSpotSandbox(state, access_token=TOKEN, search_per_second=5, clock=clock)) as sb:
        api = HubSpot(access_token=TOKEN, host=sb.url).crm.contacts.search_api
        for _ in range(5):
            _, status, headers = api.do_search_with_http_info(PublicObjectSearchRequest(limit=1))
            assert status == 200
            assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in headers)
        with pytest.raises(ContactsApiException) as caught:
            api.do_search(PublicObjectSearchRequest(limit=1))
        assert caught.value.status == 429
        assert body_of(caught.value)["policyName"] == "SECONDLY"
        clock.seconds += 1.01
        assert api.do_search(PublicObjectSearchRequest(limit=1)).total == len(company.contacts)


def test_calls_by_endpoint_counts_templates(client: HubSpot, sandbox: HubSpotSandbox) -> None:
    client.crm.contacts.basic_api.get_page()
    client.crm.contacts.basic_api.get_page()
    client.crm.pipelines.pipelines_api.get_all("deals")
    calls = sandbox.calls_by_endpoint()
    assert calls["GET /crm/v3/objects/{objectType}"] == 2
    assert calls["GET /crm/v3/pipelines/{objectType}"] == 1
