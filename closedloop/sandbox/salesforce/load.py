"""Fill an org from the synthetic ``Company`` the HubSpot portal gets, field for field.

The same people, deals, amounts, dates, GA client ids and UTMs, so a run over this org and a
run over the portal compute the same totals:

- every contact is a Lead created at the contact's creation time; a person on any deal was
  converted (IsConverted, ConvertedDate, ConvertedContactId) when their first deal was created,
  into a Contact created at that moment, carrying the Lead's fields; the others stay Leads;
- HubSpot's MQL and SQL lifecycle dates become the custom MQL_Date__c / SQL_Date__c fields
  (Status says where an open lead stands);
- HubSpot's original source becomes LeadSource as a picklist label ("PAID_SEARCH" -> "Paid
  Search"), which the offline-source table matches ignoring case, spaces and underscores;
- deals become Opportunities (StageName is the stage label; IsWon/IsClosed from the stage),
  each stage change an OpportunityHistory row at its time (and an OpportunityFieldHistory row),
  each deal contact an OpportunityContactRole, the first one primary;
- offline contacts responded to the campaign their import names (Campaign.Type from the name),
  on the day the lead was created; some web leads were sent a newsletter and did not respond.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from closedloop.sandbox.company import Company, SyntheticContact, SyntheticDeal, SyntheticStage
from closedloop.sandbox.salesforce.state import SalesforceState

_LEAD_STATUS = {"subscriber": "Open - Not Contacted", "lead": "Open - Not Contacted",
                "marketingqualifiedlead": "Working - Contacted", "salesqualifiedlead": "Working - Contacted"}
_CAMPAIGN_TYPES = (("webinar", "Webinar"), ("booth", "Trade Show"), ("event", "Event"))
NEWSLETTER = "Monthly Newsletter"


def lead_source(original_source: str) -> str | None:
    return original_source.replace("_", " ").title() if original_source else None


# The portal's default pipeline is HubSpot's sales pipeline; an org keeps the same steps under
# Salesforce's standard StageName values.  Other pipelines' stages keep their labels (custom values).
_STANDARD_STAGES = {"appointmentscheduled": "Prospecting", "qualifiedtobuy": "Qualification",
                    "presentationscheduled": "Needs Analysis", "decisionmakerboughtin": "Id. Decision Makers",
                    "contractsent": "Proposal/Price Quote", "closedwon": "Closed Won", "closedlost": "Closed Lost"}


def stage_name(stage: SyntheticStage) -> str:
    return _STANDARD_STAGES.get(stage.id, stage.label)


def campaign_type(name: str) -> str:
    return next((kind for word, kind in _CAMPAIGN_TYPES if word in name.lower()), "Other")


def load_company(state: SalesforceState, company: Company) -> None:
    currency = {"CurrencyIsoCode": company.currency_code} if state.multicurrency else {}
    conversions = _conversion_times(company.deals)
    accounts: dict[str, str] = {}
    leads: dict[str, str] = {}
    contacts: dict[str, str] = {}
    for person in company.contacts:
        company_name = person.extra.get("company") or person.email.split("@")[-1]
        fields = _person_fields(person) | currency
        converted_at = conversions.get(person.id)
        if converted_at is None:
            lead = state.insert("Lead", {**fields, "Company": company_name,
                                         "Status": _LEAD_STATUS.get(person.lifecycle_stage, "Open - Not Contacted")},
                                at=person.created_at, modified=person.updated_at)
            leads[person.id] = lead["Id"]
            continue
        if company_name not in accounts:
            accounts[company_name] = state.insert("Account", {"Name": company_name, **currency},
                                                  at=converted_at)["Id"]
        contact = state.insert("Contact", {**fields, "AccountId": accounts[company_name]},
                               at=converted_at, modified=max(converted_at, person.updated_at))
        lead = state.insert("Lead", {
            **fields, "Company": company_name, "Status": "Closed - Converted", "IsConverted": True,
            "ConvertedDate": converted_at.date(), "ConvertedContactId": contact["Id"],
            "ConvertedAccountId": accounts[company_name]}, at=person.created_at, modified=converted_at)
        leads[person.id] = lead["Id"]
        contacts[person.id] = contact["Id"]
    stages = {stage.id: stage for pipeline in company.pipelines for stage in pipeline.stages}
    sources = {p.id: lead_source(p.original_source) for p in company.contacts}
    converted = {row["ConvertedContactId"]: row for row in state.rows["Lead"].values() if row["IsConverted"]}
    for deal in company.deals:
        _load_deal(state, deal, stages, contacts, sources, currency)
        lead = converted[contacts[deal.contact_ids[0]]]
        if lead["ConvertedOpportunityId"] is None and lead["ConvertedDate"] == deal.created_at.date():
            lead["ConvertedOpportunityId"] = state.rows["Opportunity"][next(reversed(state.rows["Opportunity"]))]["Id"]
    _load_campaigns(state, company.contacts, leads, contacts, currency)


def _person_fields(person: SyntheticContact) -> dict[str, Any]:
    def text(value: str) -> str | None:
        return value or None

    return {
        "FirstName": person.extra.get("firstname"), "LastName": person.extra.get("lastname") or person.email,
        "Email": text(person.email), "LeadSource": lead_source(person.original_source),
        "GA_Client_Id__c": text(";".join(person.ga_client_ids)), "UTM_Source__c": text(person.utm_source),
        "UTM_Medium__c": text(person.utm_medium), "UTM_Campaign__c": text(person.utm_campaign),
        "GCLID__c": text(person.gclid),
        "MQL_Date__c": _instant(person.extra.get("hs_lifecyclestage_marketingqualifiedlead_date")),
        "SQL_Date__c": _instant(person.extra.get("hs_lifecyclestage_salesqualifiedlead_date")),
    }


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _conversion_times(deals: list[SyntheticDeal]) -> dict[str, datetime]:
    """Each person on a deal converts when the first deal they are on is created."""
    out: dict[str, datetime] = {}
    for deal in deals:
        for person_id in deal.contact_ids:
            if person_id not in out or deal.created_at < out[person_id]:
                out[person_id] = deal.created_at
    return out


def _forecast(stage: SyntheticStage) -> str:
    if stage.is_closed:
        return "Closed" if stage.probability >= 1.0 else "Omitted"
    return "Commit" if stage.probability >= 0.8 else "Best Case" if stage.probability >= 0.6 else "Pipeline"


def _load_deal(state: SalesforceState, deal: SyntheticDeal, stages: dict[str, SyntheticStage],
               contacts: dict[str, str], sources: dict[str, str | None], currency: dict[str, str]) -> None:
    deal_currency = getattr(deal, "currency", None)  # a multi-currency deal keeps its own code
    if currency and deal_currency:
        currency = {"CurrencyIsoCode": deal_currency}
    current = stages[deal.stage_history[-1].stage]
    won = current.is_closed and current.probability >= 1.0
    close_date = (deal.closed_at or deal.created_at + timedelta(days=30)).date()
    primary = deal.contact_ids[0]
    contact = state.rows["Contact"][contacts[primary]]
    opportunity = state.insert("Opportunity", {
        "Name": deal.name, "AccountId": contact["AccountId"], "Amount": float(deal.amount),
        "StageName": stage_name(current), "CloseDate": close_date, "IsWon": won, "IsClosed": current.is_closed,
        "Probability": current.probability * 100, "ForecastCategory": _forecast(current),
        "ForecastCategoryName": _forecast(current), "LeadSource": sources.get(primary), "Type": "New Business",
        "ContactId": contacts[primary], **currency}, at=deal.created_at, modified=deal.updated_at)
    previous: SyntheticStage | None = None
    for change in deal.stage_history:
        stage = stages[change.stage]
        state.insert("OpportunityHistory", {
            "OpportunityId": opportunity["Id"], "StageName": stage_name(stage), "Amount": float(deal.amount),
            "CloseDate": close_date, "Probability": stage.probability * 100,
            "ExpectedRevenue": float(deal.amount) * stage.probability, "ForecastCategory": _forecast(stage),
            "PrevAmount": float(deal.amount) if previous else None, "PrevCloseDate": close_date if previous else None,
            **currency}, at=change.at)
        if previous is None:
            state.insert("OpportunityFieldHistory", {"OpportunityId": opportunity["Id"], "Field": "created",
                                                     "DataType": "Text"}, at=change.at)
        else:
            state.insert("OpportunityFieldHistory", {
                "OpportunityId": opportunity["Id"], "Field": "StageName", "DataType": "DynamicEnum",
                "OldValue": stage_name(previous), "NewValue": stage_name(stage)}, at=change.at)
        previous = stage
    for index, person_id in enumerate(deal.contact_ids):
        state.insert("OpportunityContactRole", {
            "OpportunityId": opportunity["Id"], "ContactId": contacts[person_id], "IsPrimary": index == 0,
            "Role": "Decision Maker" if index == 0 else "Influencer", **currency}, at=deal.created_at)


def _load_campaigns(state: SalesforceState, people: list[SyntheticContact], leads: dict[str, str],
                    contacts: dict[str, str], currency: dict[str, str]) -> None:
    offline = [p for p in people if p.original_source == "OFFLINE" and p.original_source_detail_2]
    newsletter = [p for p in people if p.ga_client_ids and p.id.isdigit() and int(p.id) % 7 == 0] if people else []
    groups: dict[str, list[SyntheticContact]] = {}
    for person in offline:
        groups.setdefault(person.original_source_detail_2, []).append(person)
    if newsletter:
        groups[NEWSLETTER] = newsletter
    for name in sorted(groups):
        members = groups[name]
        start = min(p.created_at for p in members)
        responded = name != NEWSLETTER
        campaign = state.insert("Campaign", {
            "Name": name, "Type": "Email" if not responded else campaign_type(name), "Status": "Completed",
            "StartDate": start.date(), "EndDate": max(p.created_at for p in members).date(), "IsActive": True,
            **currency}, at=start)
        for person in members:
            contact_id = contacts.get(person.id)
            state.insert("CampaignMember", {
                "CampaignId": campaign["Id"], "LeadId": leads[person.id], "ContactId": contact_id,
                "LeadOrContactId": contact_id or leads[person.id], "Status": "Responded" if responded else "Sent",
                "HasResponded": responded, "FirstRespondedDate": person.created_at.date() if responded else None,
                **currency}, at=person.created_at)
