"""Every record parser, fed anything JSON can hold: it returns records or raises SkippableRecordError.

Nothing else may escape a parser (no KeyError, TypeError, ValueError, AttributeError...): any
other exception stops a whole stream, and before this rule it stopped the whole run.  The
objects are drawn near the real shapes (an id, properties, history, associations, GA4 cells)
with any part of them replaced by any JSON value, so both the plausible and the absurd are hit.
Bounded: a fixed number of examples each, no deadline per example (the CI machine is shared).
"""

from __future__ import annotations

import importlib
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.config.models import HubSpotContactProperties
from closedloop.connectors.ga4 import source as ga4_source
from closedloop.connectors.hubspot import parse as hs
from closedloop.errors import SkippableRecordError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)  # noqa: E501
timestamps = st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05", "1700000000000", "", "yesterday",
                              "9" * 30, "2026-13-45T99:00:00Z", "\u0663\u0662"])
maybe = st.one_of  # readability: a field is either its plausible value or anything at all


def near(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return maybe(plausible, json_values)


ids = near(st.sampled_from(["101", "7", 12, "", "x" * 70]))
contact_props = st.fixed_dictionaries({}, optional={
    "createdate": near(timestamps), "lastmodifieddate": near(timestamps), "email": near(st.emails()),
    "ga_client_id": near(st.text(max_size=20)), "hs_analytics_source": json_values, "lifecyclestage": json_values,
    "hs_lifecyclestage_customer_date": near(timestamps), "gclid": json_values,
})
deal_props = st.fixed_dictionaries({}, optional={
    "createdate": near(timestamps), "hs_lastmodifieddate": near(timestamps), "closedate": near(timestamps),
    "amount": near(st.sampled_from(["10", "1e400", "nan", "x", ""])), "hs_is_closed": json_values,
    "hs_is_closed_won": near(st.sampled_from(["true", "false"])), "dealstage": json_values, "pipeline": json_values,
})
history = near(st.lists(near(st.fixed_dictionaries({"timestamp": near(timestamps), "value": json_values})), max_size=4))


def objects(props: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    shaped = st.fixed_dictionaries(
        {"id": ids}, optional={"properties": near(props), "propertiesWithHistory": near(
            st.fixed_dictionaries({}, optional={"dealstage": history}))}
    )
    return near(shaped)


def parses_or_skips(parse: Any, *args: Any, **kwargs: Any) -> None:
    try:
        parse(*args, **kwargs)
    except SkippableRecordError as exc:
        assert exc.record_key and len(exc.record_key) <= 256  # it can be stored in the quarantine


@FUZZ
@given(objects(contact_props))
def test_hubspot_contact_parser(obj: Any) -> None:
    parses_or_skips(hs.parse_contact, obj, HubSpotContactProperties(), ("customer",), warn=lambda _k, _e: None)


@FUZZ
@given(objects(deal_props))
def test_hubspot_deal_and_stage_history_parsers(obj: Any) -> None:
    parses_or_skips(hs.parse_deal, obj)
    parses_or_skips(hs.parse_stage_history, obj, "default")


@FUZZ
@given(near(st.fixed_dictionaries({"id": ids}, optional={"label": json_values, "stages": near(st.lists(near(
    st.fixed_dictionaries({"id": ids}, optional={"label": json_values, "displayOrder": json_values,
                                                 "metadata": json_values})), max_size=3))})))
def test_hubspot_pipeline_parser(obj: Any) -> None:
    parses_or_skips(hs.parse_pipeline, obj)


@FUZZ
@given(near(st.fixed_dictionaries({"from": near(st.fixed_dictionaries({"id": ids})), "to": near(st.lists(near(
    st.fixed_dictionaries({"toObjectId": ids})), max_size=3))})))
def test_hubspot_association_parser(obj: Any) -> None:
    parses_or_skips(hs.parse_association, obj)


cells = near(st.lists(near(st.fixed_dictionaries({"value": near(st.text(max_size=14))})), max_size=7))


@FUZZ
@given(st.lists(near(st.fixed_dictionaries({"dimensionValues": cells, "metricValues": cells})), max_size=4))
def test_ga4_row_parsers_quarantine_what_they_cannot_read(rows: list[Any]) -> None:
    records, quarantined = ga4_source._parse_rows(rows, ZoneInfo("Europe/Paris"))
    assert len(records) + len(quarantined) == len(rows)  # each row is one or the other, none lost
    costs, cost_quarantined = ga4_source._parse_ad_cost_rows(rows, "EUR")
    assert len(costs) + len(cost_quarantined) == len(rows)


def _salesforce_parse() -> Any:
    try:
        return importlib.import_module("closedloop.connectors.salesforce.parse")
    except ImportError:  # pragma: no cover - the connector is optional in this checkout
        pytest.skip("no Salesforce parser")


# simple-salesforce hands over each SOQL record as a dict, its fields holding anything; an answer
# may also hold a null, a list or a string where a record should be.
sf_rows = near(st.dictionaries(
    st.sampled_from(["Id", "CreatedDate", "SystemModstamp", "Email", "Amount", "StageName", "IsWon", "IsClosed",
                     "OpportunityId", "ContactId", "IsPrimary", "CampaignId", "FirstRespondedDate", "LeadSource",
                     "CreatedById", "Field", "NewValue", "ConvertedContactId", "IsConverted", "CloseDate", "Status",
                     "HasResponded", "Campaign", "LeadOrContactId", "CurrencyIsoCode", "Name", "Role"]),
    near(timestamps), max_size=12,
))
SF_PARSERS = ("opportunity", "stage_history", "field_history", "contact_role", "campaign_response")
SF_DELETED_KINDS = ("contact", "deal", "deal_contact_role", "offline_touch")


def _salesforce_calls(parse: Any) -> list[Any]:
    from functools import partial

    from closedloop.config.models import SalesforceFields

    calls = [getattr(parse, name) for name in SF_PARSERS]
    calls += [partial(parse.person, fields=SalesforceFields(), sobject=sobject) for sobject in ("Lead", "Contact")]
    calls += [partial(parse.deletion, kind) for kind in SF_DELETED_KINDS]
    return calls


@FUZZ
@given(sf_rows)
def test_salesforce_parsers(row: Any) -> None:
    parse = _salesforce_parse()
    for call in _salesforce_calls(parse):
        parses_or_skips(call, row)


@pytest.mark.parametrize("row", [None, [], ["Id", "003A"], "003A", 7, True])
def test_salesforce_rows_that_are_not_objects_are_quarantined_by_every_parser(row: Any) -> None:
    parse = _salesforce_parse()
    for call in _salesforce_calls(parse):
        with pytest.raises(SkippableRecordError, match="not an object") as caught:
            call(row)
        assert caught.value.record_key == "(no Id)"


def test_salesforce_source_quarantines_a_null_row_and_reads_the_rest() -> None:
    """Through the pull loop (fake org behind query_all_iter): null, list and string rows in the
    answer are quarantined, every real row arrives, the cursor still advances."""
    from test_salesforce_pull_loop import FakeOrg, pull

    class HostileOrg(FakeOrg):
        def query_all_iter(self, soql: str, session: str, include_deleted: bool) -> Any:
            rows = list(super().query_all_iter(soql, session, include_deleted))
            return iter([*rows[:2], None, [], "003X", *rows[2:]] if rows else rows)

    org = HostileOrg(5)
    batches, records, _ = pull(org)
    assert [r.crm_id for r in records] == [r["Id"] for r in org.rows]
    refused = [q for b in batches for q in b.quarantined]
    assert [(q.record_key, q.reason) for q in refused] == [
        ("(no Id)", "the row is null, not an object"),
        ("(no Id)", "the row is list, not an object"),
        ("(no Id)", "the row is str, not an object"),
    ]
    assert batches[-1].cursor["live"]  # the last real row moved the cursor
