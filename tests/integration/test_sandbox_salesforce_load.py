"""The org the sandbox loads from a generated company holds the same people, deals and dates as the
HubSpot portal loaded from that company, so a run over either computes the same totals.

Both sides are read through their own state APIs (and the org once through simple-salesforce);
nothing is compared with the generator's own numbers, so a field the Salesforce loader maps
wrongly or leaves out fails here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from simple_salesforce import Salesforce

from closedloop.mapping.channels import offline_key
from closedloop.sandbox.company import Company
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.hubspot import HubSpotState
from closedloop.sandbox.salesforce import SalesforceState, start_salesforce

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=600, seed=11, now=NOW)


@pytest.fixture(scope="module")
def portal(company: Company) -> HubSpotState:
    state = HubSpotState()
    state.load_company(company)
    return state


@pytest.fixture(scope="module")
def org(company: Company) -> SalesforceState:
    state = SalesforceState(multicurrency=True)
    state.load_company(company)
    return state


def _hubspot_instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _people(org: SalesforceState) -> dict[str, dict]:
    """One row per person: the Contact for converted leads, else the Lead, keyed by email."""
    people = {c["Email"]: dict(c) for c in org.all_rows("Contact")}
    for lead in org.all_rows("Lead"):
        if lead["IsConverted"]:
            people[lead["Email"]]["lead"] = lead
        else:
            people[lead["Email"]] = {**lead, "lead": lead}
    return people


def test_same_people_with_the_same_identity_and_source_fields(portal: HubSpotState, org: SalesforceState) -> None:
    people = _people(org)
    contacts = portal.all_objects("contacts")
    assert len(people) == len(contacts) == 600
    for contact in contacts:
        p = contact.properties
        person = people[p["email"]]
        assert person["GA_Client_Id__c"] == p["ga_client_id"]
        assert (person["UTM_Source__c"], person["UTM_Medium__c"], person["UTM_Campaign__c"]) == (
            p["utm_source"], p["utm_medium"], p["utm_campaign"])
        assert person["GCLID__c"] == p["hs_google_click_id"]
        assert offline_key(person["LeadSource"]) == offline_key(p["hs_analytics_source"])
        assert person["lead"]["CreatedDate"] == contact.created_at
        assert (person["FirstName"], person["LastName"]) == (p["firstname"], p["lastname"])
        for field, stage in (("MQL_Date__c", "marketingqualifiedlead"), ("SQL_Date__c", "salesqualifiedlead")):
            assert person[field] == _hubspot_instant(p.get(f"hs_lifecyclestage_{stage}_date"))


def test_deals_match_opportunities_with_history_and_contact_roles(portal: HubSpotState, org: SalesforceState) -> None:
    emails = {c.id: c.properties["email"] for c in portal.all_objects("contacts")}
    contact_emails = {c["Id"]: c["Email"] for c in org.all_rows("Contact")}
    history: dict[str, list] = defaultdict(list)
    for row in org.all_rows("OpportunityHistory"):
        history[row["OpportunityId"]].append(row)
    roles: dict[str, list] = defaultdict(list)
    for row in org.all_rows("OpportunityContactRole"):
        roles[row["OpportunityId"]].append(row)
    opportunities = {o["Name"] + "|" + o["CreatedDate"].isoformat(): o for o in org.all_rows("Opportunity")}
    deals = portal.all_objects("deals")
    assert len(opportunities) == len(deals) > 50
    won_hubspot = won_salesforce = 0.0
    for deal in deals:
        p = deal.properties
        opp = opportunities[p["dealname"] + "|" + deal.created_at.isoformat()]
        assert opp["Amount"] == float(p["amount"]) and opp["CurrencyIsoCode"] == "USD"
        assert (opp["IsWon"], opp["IsClosed"]) == (p["hs_is_closed_won"] == "true", p["hs_is_closed"] == "true")
        if p["closedate"]:
            assert opp["CloseDate"] == _hubspot_instant(p["closedate"]).date()  # type: ignore[union-attr]
        stages = [(h.at, h.value) for h in deal.history["dealstage"]]
        rows = sorted(history[opp["Id"]], key=lambda r: r["CreatedDate"])
        assert [r["CreatedDate"] for r in rows] == [at for at, _ in stages]
        assert rows[-1]["StageName"] == opp["StageName"]
        linked = sorted(emails[i] for i in portal.associated_ids("deals", deal.id, "contacts"))
        assert sorted(contact_emails[r["ContactId"]] for r in roles[opp["Id"]]) == linked
        assert sum(r["IsPrimary"] for r in roles[opp["Id"]]) == 1
        won_hubspot += float(p["amount"]) if p["hs_is_closed_won"] == "true" else 0.0
        won_salesforce += opp["Amount"] if opp["IsWon"] else 0.0
    assert won_salesforce == won_hubspot > 0


def test_people_on_deals_are_converted_leads(org: SalesforceState) -> None:
    first_deal: dict[str, datetime] = {}
    for role in org.all_rows("OpportunityContactRole"):
        opp = org.get("Opportunity", role["OpportunityId"])
        assert opp is not None
        when = first_deal.get(role["ContactId"])
        first_deal[role["ContactId"]] = opp["CreatedDate"] if when is None else min(when, opp["CreatedDate"])
    converted = [lead for lead in org.all_rows("Lead") if lead["IsConverted"]]
    assert {lead["ConvertedContactId"] for lead in converted} == set(first_deal) == {
        c["Id"] for c in org.all_rows("Contact")}
    for lead in converted:
        contact = org.get("Contact", lead["ConvertedContactId"])
        assert contact is not None and contact["Email"] == lead["Email"]
        assert lead["ConvertedDate"] == first_deal[contact["Id"]].date() == contact["CreatedDate"].date()
        assert contact["AccountId"] == lead["ConvertedAccountId"] and lead["Status"] == "Closed - Converted"


def test_campaign_responses_are_the_offline_leads(company: Company, org: SalesforceState) -> None:
    offline = {c.email: c for c in company.contacts if c.original_source == "OFFLINE"}
    leads = {lead["Id"]: lead for lead in org.all_rows("Lead")}
    responded = [m for m in org.all_rows("CampaignMember") if m["HasResponded"]]
    assert sorted(leads[m["LeadId"]]["Email"] for m in responded) == sorted(offline)
    for member in responded:
        lead = leads[member["LeadId"]]
        campaign = org.get("Campaign", member["CampaignId"])
        assert campaign is not None and campaign["Name"] == offline[lead["Email"]].original_source_detail_2
        assert member["FirstRespondedDate"] == lead["CreatedDate"].date()
        assert member["ContactId"] == lead["ConvertedContactId"]
    silent = [m for m in org.all_rows("CampaignMember") if not m["HasResponded"]]
    assert silent and all(m["FirstRespondedDate"] is None and m["Status"] == "Sent" for m in silent)


def test_loading_is_deterministic(company: Company, org: SalesforceState) -> None:
    again = SalesforceState(multicurrency=True)
    again.load_company(company)
    for sobject in ("Lead", "Contact", "Opportunity", "OpportunityHistory", "OpportunityContactRole",
                    "CampaignMember"):
        assert list(again.all_rows(sobject)) == list(org.all_rows(sobject))


def test_the_loaded_org_answers_simple_salesforce(company: Company) -> None:
    sandbox = start_salesforce(company, now=NOW)
    try:
        sf = Salesforce(instance_url=sandbox.url, session_id=sandbox.issue_session(),
                        session=sandbox.requests_session())
        people = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")["totalSize"]
        people += sf.query("SELECT COUNT() FROM Contact")["totalSize"]
        assert people == len(company.contacts)
        won = sf.query_all("SELECT Amount FROM Opportunity WHERE IsWon = true")["records"]
        assert sum(r["Amount"] for r in won) == sum(
            d.amount for d in company.deals if d.stage_history[-1].stage in ("closedwon", "partnerclosedwon"))
    finally:
        sandbox.stop()
