"""Salesforce rows into records: good rows exactly, hostile rows quarantined with a reason."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from closedloop.config.models import SalesforceFields
from closedloop.connectors.hashing import current_hash_key
from closedloop.connectors.salesforce import parse
from closedloop.errors import SkippableRecordError
from closedloop.records import DealContactRole, DeletedRecord

FIELDS = SalesforceFields()


def lead(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "attributes": {"type": "Lead", "url": "/services/data/v59.0/sobjects/Lead/00Q000000000001AAA"},
        "Id": "00Q000000000001AAA",
        "CreatedDate": "2024-03-01T09:30:00.000+0000",
        "SystemModstamp": "2024-03-05T10:00:00.000+0000",
        "Status": "Open - Not Contacted",
        "IsConverted": False,
        "ConvertedContactId": None,
        "ConvertedDate": None,
        "Email": "  Ada@Example.COM ",
        "LeadSource": "Trade Show",
        "GA_Client_Id__c": "111.222; 333.444;111.222",
        "UTM_Source__c": "google",
        "UTM_Medium__c": "cpc",
        "UTM_Campaign__c": None,
        "GCLID__c": "gc-1",
    }
    row.update(overrides)
    return row


def test_lead_becomes_a_person_with_identity_keys() -> None:
    record = parse.person(lead(), FIELDS, "Lead")
    assert record.crm_id == "00Q000000000001AAA"
    assert record.created_at == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert record.updated_at == datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    assert record.email_hash == hmac.new(current_hash_key(), b"ada@example.com", hashlib.sha256).hexdigest()
    assert record.ga_client_ids == ("111.222", "333.444")
    assert record.click_ids == {"gclid": "gc-1"}
    assert record.utm == {"source": "google", "medium": "cpc"}
    assert record.original_source == "Trade Show"
    assert record.merged_into is None


def test_email_hash_matches_the_hubspot_connector() -> None:
    from closedloop.connectors.hubspot.parse import hash_email

    assert parse.hash_email(" Ada@Example.COM") == hash_email("ada@example.com ")


def test_converted_lead_folds_onto_its_contact() -> None:
    row = lead(IsConverted=True, ConvertedContactId="003000000000009AAA", ConvertedDate="2024-04-02")
    record = parse.person(row, FIELDS, "Lead")
    assert record.merged_into == "003000000000009AAA"
    assert record.properties["converted_at"] == "2024-04-02T00:00:00+00:00"
    # An unconverted lead with a stray ConvertedContactId is not merged.
    assert parse.person(lead(ConvertedContactId="003000000000009AAA"), FIELDS, "Lead").merged_into is None


def test_contact_ignores_lead_only_fields() -> None:
    row = lead(Id="003000000000009AAA", IsConverted=True, ConvertedContactId="003000000000010AAA")
    record = parse.person(row, FIELDS, "Contact")
    assert record.merged_into is None
    assert record.lifecycle_stage is None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (lead(Id=None), "Id is missing"),
        (lead(Id=""), "Id is missing"),
        (lead(CreatedDate=None), "CreatedDate is missing"),
        (lead(CreatedDate="yesterday"), "CreatedDate is not a datetime"),
        (lead(CreatedDate=12345), "CreatedDate is not a datetime"),
        (lead(Email={"nested": 1}), "Email is not text"),
        (lead(GA_Client_Id__c=["a"]), "GA_Client_Id__c is not text"),
        (lead(IsConverted="true"), "IsConverted is not a boolean"),
        (lead(IsConverted=True, ConvertedDate="not a date"), "ConvertedDate is not a date"),
    ],
)
def test_hostile_person_rows_are_skippable(row: dict[str, Any], reason: str) -> None:
    with pytest.raises(SkippableRecordError) as caught:
        parse.person(row, FIELDS, "Lead")
    assert reason in str(caught.value)


def test_missing_id_is_keyed_by_the_record_url() -> None:
    with pytest.raises(SkippableRecordError) as caught:
        parse.person(lead(Id=None), FIELDS, "Lead")
    assert caught.value.record_key == "/services/data/v59.0/sobjects/Lead/00Q000000000001AAA"


def opportunity(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": "006000000000001AAA",
        "Name": "Big deal",
        "CreatedDate": "2024-03-01T00:00:00.000+0000",
        "SystemModstamp": "2024-05-01T00:00:00.000+0000",
        "StageName": "Closed Won",
        "Amount": 1234.5,
        "CloseDate": "2024-04-30",
        "IsWon": True,
        "IsClosed": True,
    }
    row.update(overrides)
    return row


def test_opportunity_becomes_a_deal() -> None:
    deal = parse.opportunity(opportunity(CurrencyIsoCode="EUR"))
    assert (deal.crm_id, deal.stage, deal.amount, deal.is_won, deal.is_closed) == (
        "006000000000001AAA",
        "Closed Won",
        1234.5,
        True,
        True,
    )
    assert deal.closed_at == datetime(2024, 4, 30, tzinfo=UTC)
    assert deal.currency == "EUR" and deal.properties == {}


def test_open_opportunity_has_no_close_time_and_null_amount() -> None:
    deal = parse.opportunity(opportunity(IsWon=False, IsClosed=False, Amount=None, StageName="Prospecting"))
    assert deal.closed_at is None and deal.amount is None and not deal.is_closed
    assert deal.properties == {}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (opportunity(Amount="lots"), "Amount is not a number"),
        (opportunity(Amount=True), "Amount is not a number"),
        (opportunity(IsWon="yes"), "IsWon is not a boolean"),
        (opportunity(CloseDate="30/04/2024"), "CloseDate is not a date"),
        (opportunity(Id=None), "Id is missing"),
    ],
)
def test_hostile_opportunities_are_skippable(row: dict[str, Any], reason: str) -> None:
    with pytest.raises(SkippableRecordError, match=reason):
        parse.opportunity(row)


def test_history_rows_become_stage_events() -> None:
    event = parse.stage_history(
        {
            "Id": "008000000000001AAA",
            "OpportunityId": "006A",
            "StageName": "Qualification",
            "CreatedDate": "2024-01-02T03:04:05.000+0000",
        }
    )
    assert (event.deal_id, event.stage, event.entered_at) == (
        "006A",
        "Qualification",
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    field_event = parse.field_history(
        {
            "Id": "017000000000001AAA",
            "OpportunityId": "006A",
            "Field": "StageName",
            "NewValue": "Closed Won",
            "CreatedDate": "2024-02-01T00:00:00Z",
        }
    )
    assert field_event.stage == "Closed Won"
    with pytest.raises(SkippableRecordError, match="StageName is missing"):
        parse.stage_history({"Id": "008B", "OpportunityId": "006A", "StageName": None, "CreatedDate": "2024-01-02"})


def test_contact_role_keeps_the_primary_flag() -> None:
    role = parse.contact_role(
        {
            "Id": "00K000000000001AAA",
            "OpportunityId": "006A",
            "ContactId": "003A",
            "IsPrimary": True,
            "Role": "Decision Maker",
        }
    )
    assert role == DealContactRole("00K000000000001AAA", "006A", "003A", True, "Decision Maker")
    with pytest.raises(SkippableRecordError, match="ContactId is missing"):
        parse.contact_role({"Id": "00K2", "OpportunityId": "006A", "ContactId": None, "IsPrimary": False})


def member(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": "00v000000000001AAA",
        "CampaignId": "701000000000001AAA",
        "LeadId": None,
        "ContactId": "003A",
        "LeadOrContactId": "003A",
        "Status": "Responded",
        "HasResponded": True,
        "FirstRespondedDate": "2024-02-10",
        "CreatedDate": "2024-02-01T00:00:00.000+0000",
        "SystemModstamp": "2024-02-10T00:00:00.000+0000",
        "Campaign": {"attributes": {"type": "Campaign"}, "Type": "Webinar", "Name": "Spring webinar"},
    }
    row.update(overrides)
    return row


def test_responded_campaign_member_is_an_offline_touch() -> None:
    touch = parse.campaign_response(member())
    assert touch is not None
    assert (touch.contact_id, touch.source, touch.medium, touch.campaign) == (
        "003A",
        "Webinar",
        "campaign",
        "Spring webinar",
    )
    assert touch.occurred_at == datetime(2024, 2, 10, tzinfo=UTC)
    assert touch.key == "sf-campaign-member:00v000000000001AAA"


def test_member_who_did_not_respond_is_no_touch_and_bad_members_are_skippable() -> None:
    assert parse.campaign_response(member(HasResponded=False)) is None
    with pytest.raises(SkippableRecordError, match="names no Lead or Contact"):
        parse.campaign_response(member(LeadOrContactId=None, ContactId=None))
    with pytest.raises(SkippableRecordError, match="Campaign"):
        parse.campaign_response(member(Campaign=None))


def test_deleted_rows_name_what_the_store_must_drop() -> None:
    gone = parse.deletion(
        "deal_contact_role",
        {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A", "SystemModstamp": "2024-06-01T00:00:00.000+0000"},
    )
    assert gone == DeletedRecord("deal_contact_role", "00K1", datetime(2024, 6, 1, tzinfo=UTC), "006A", "003A")
    assert parse.deletion("offline_touch", {"Id": "00v1"}).crm_id == "sf-campaign-member:00v1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T09:30:00.000+0000", datetime(2024, 3, 1, 9, 30, tzinfo=UTC)),
        ("2024-03-01T11:30:00.000+0200", datetime(2024, 3, 1, 9, 30, tzinfo=UTC)),
        ("2024-03-01T09:30:00Z", datetime(2024, 3, 1, 9, 30, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_salesforce_time_formats(text: str, expected: datetime) -> None:
    assert parse.parse_time(text) == expected
