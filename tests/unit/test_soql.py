"""The sandbox's SOQL: parsed by grammar, evaluated with Salesforce's types, refused with its codes.

Rows are inserted by hand into a fresh ``SalesforceState``; each expectation is computed from
those rows in plain Python, so a parser or evaluator that drops, adds or mis-orders rows fails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce.format import format_soql

from closedloop.sandbox.salesforce.errors import SalesforceError
from closedloop.sandbox.salesforce.query import compile_soql
from closedloop.sandbox.salesforce.soql import BoolOp, Comparison, Not, SoqlSyntaxError, parse
from closedloop.sandbox.salesforce.state import SalesforceState

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _org() -> SalesforceState:
    state = SalesforceState()
    account = state.insert("Account", {"Name": "Acme"}, at=T0)
    people = [("Ava", "Adler", "ava@acme.com", "Web", 0), ("ben", "Brooks", "BEN@acme.com", None, 1),
              ("Cy", "Chen", None, "Trade Show", 2), ("Dee", "Diaz", "d_e%e@acme.com", "Web", 3)]
    for first, last, email, source, day in people:
        state.insert("Lead", {"FirstName": first, "LastName": last, "Email": email, "LeadSource": source,
                              "Company": "Acme", "Status": "Open - Not Contacted"}, at=T0 + timedelta(days=day))
    contact = state.insert("Contact", {"LastName": "Evans", "AccountId": account["Id"]}, at=T0)
    state.insert("Opportunity", {"Name": "Big", "StageName": "Prospecting", "CloseDate": date(2024, 4, 1),
                                 "Amount": 5000.0, "ContactId": contact["Id"], "AccountId": account["Id"]}, at=T0)
    state.insert("Opportunity", {"Name": "Small", "StageName": "Closed Won", "CloseDate": date(2024, 3, 15),
                                 "Amount": 900.0, "IsWon": True, "IsClosed": True}, at=T0)
    return state


def _run(state: SalesforceState, soql: str) -> list[dict]:
    plan = compile_soql(state, soql)
    return plan.select(state.all_rows(plan.sobject.name))


def _names(rows: list[dict]) -> list[str]:
    return [r["LastName"] for r in rows]


def _error(state: SalesforceState, soql: str) -> SalesforceError:
    with pytest.raises(SalesforceError) as caught:
        compile_soql(state, soql)
    assert caught.value.status == 400
    return caught.value


# ---- parsing -----------------------------------------------------------------------------------


def test_parse_builds_the_tree_with_keywords_in_any_case() -> None:
    query = parse("select Id, Account.Name from Contact where (A = 1 or B != 'x') and not C in (1, 2) "
                  "order by CreatedDate desc nulls first, Id limit 5 offset 10")
    assert query.sobject == "Contact"
    assert [f.text for f in query.fields] == ["Id", "Account.Name"]
    assert isinstance(query.where, BoolOp) and query.where.op == "AND"
    inner, negated = query.where.parts
    assert isinstance(inner, BoolOp) and inner.op == "OR"
    assert isinstance(negated, Not) and isinstance(negated.part, Comparison) and negated.part.op == "IN"
    assert [(o.path.text, o.descending, o.nulls_last) for o in query.order] == [
        ("CreatedDate", True, False), ("Id", False, False)]
    assert (query.limit, query.offset) == (5, 10)


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3",  # AND and OR mixed without parentheses
    "SELECT Id Lead",
    "SELECT FROM Lead",
    "SELECT Id FROM Lead WHERE",
    "SELECT Id FROM Lead LIMIT ten",
    "SELECT Id FROM Lead WHERE Email = :email",
    "SELECT Id FROM Lead GROUP BY Id",
    "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    "SELECT Id FROM Lead WHERE CreatedDate > LAST_N_DAYS:7",
    "SELECT Id FROM Lead WHERE Email = 'unterminated",
    "SELECT Id FROM Lead WHERE Email = 'bad \\q escape'",
    "SELECT MAX(Amount) FROM Opportunity",
    "SELECT Id FROM Lead trailing",
])
def test_malformed_queries_are_refused_with_a_position(soql: str) -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse(soql)
    assert "ERROR at Row:1:Column:" in caught.value.message
    error = _error(SalesforceState(), soql)
    assert error.code == "MALFORMED_QUERY"


def test_the_caret_points_at_the_offending_token() -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse("SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3")
    lines = caught.value.message.split("\n")
    column = lines[2].index("^")
    assert lines[1][column:column + 2] == "OR"
    assert lines[3] == f"ERROR at Row:1:Column:{column + 1}"


# ---- names and types ---------------------------------------------------------------------------


@pytest.mark.parametrize(("soql", "code", "needle"), [
    ("SELECT Id FROM Leed", "INVALID_TYPE", "sObject type 'Leed' is not supported"),
    ("SELECT Id FROM CustomField", "INVALID_TYPE", "'CustomField'"),  # a Tooling object, not REST
    ("SELECT Id, Emial FROM Lead", "INVALID_FIELD", "No such column 'Emial' on entity 'Lead'"),
    ("SELECT Account.Nam FROM Contact", "INVALID_FIELD", "No such column 'Nam' on entity 'Account'"),
    ("SELECT Acount.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Acount'"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Lead WHERE CreatedDate > 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD", "should be enclosed in quotes"),
    ("SELECT Id FROM Opportunity WHERE Amount > '5'", "INVALID_FIELD", "must be of type double"),
    ("SELECT Id FROM Lead WHERE IsConverted = 'true'", "INVALID_FIELD", "must be of type boolean"),
    ("SELECT Id FROM Lead WHERE IsConverted > true", "INVALID_FIELD", "invalid operator on boolean"),
    ("SELECT Id FROM OpportunityFieldHistory WHERE NewValue = 'x'", "INVALID_FIELD", "can not be filtered"),
    ("SELECT Id, Id FROM Lead", "INVALID_FIELD", "duplicate field selected"),
])
def test_unknown_names_and_mistyped_values_are_refused(soql: str, code: str, needle: str) -> None:
    error = _error(SalesforceState(), soql)
    assert error.code == code
    assert needle in error.message


# ---- evaluation --------------------------------------------------------------------------------


def test_datetime_literals_compare_as_instants_whatever_their_offset() -> None:
    state = _org()
    cut = T0 + timedelta(days=1)
    expected = [r["LastName"] for r in state.all_rows("Lead") if r["CreatedDate"] >= cut]
    assert len(expected) == 3
    for literal in ("2024-03-02T12:00:00Z", "2024-03-02T14:00:00+02:00", "2024-03-02T07:00:00-0500",
                    "2024-03-02T12:00:00.000+0000"):
        assert _names(_run(state, f"SELECT Id FROM Lead WHERE CreatedDate >= {literal}")) == expected
    formatted = format_soql("SELECT Id FROM Lead WHERE CreatedDate >= {}", cut.astimezone(timezone(timedelta(hours=9))))
    assert _names(_run(state, formatted)) == expected
    assert _names(_run(state, format_soql("SELECT Id FROM Lead WHERE CreatedDate > {}", cut))) == expected[1:]


def test_string_equality_and_in_ignore_case_and_null_is_not_unequal() -> None:
    state = _org()
    assert _names(_run(state, "SELECT Id FROM Lead WHERE Email = 'ben@ACME.com'")) == ["Brooks"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE FirstName IN ('AVA', 'Ben')")) == ["Adler", "Brooks"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE LeadSource != 'web'")) == ["Brooks", "Chen"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE LeadSource NOT IN ('Web')")) == ["Brooks", "Chen"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE Email = null")) == ["Chen"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE NOT (Email = null OR LeadSource = 'Web')")) == ["Brooks"]


def test_like_wildcards_and_escapes() -> None:
    state = _org()
    assert _names(_run(state, "SELECT Id FROM Lead WHERE Email LIKE '%@acme.com'")) == ["Adler", "Brooks", "Diaz"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE Email LIKE 'b_n%'")) == ["Brooks"]
    escaped = format_soql("SELECT Id FROM Lead WHERE Email LIKE '{:like}%'", "d_e%e")
    assert _names(_run(state, escaped)) == ["Diaz"]
    assert _names(_run(state, "SELECT Id FROM Lead WHERE Email LIKE 'd\\_e%'")) == ["Diaz"]


def test_order_nulls_limit_offset() -> None:
    state = _org()
    # DESC puts nulls last by default; the two 'Web' leads keep their id order.
    assert _names(_run(state, "SELECT Id FROM Lead ORDER BY LeadSource DESC")) == ["Adler", "Diaz", "Chen", "Brooks"]
    assert _names(_run(state, "SELECT Id FROM Lead ORDER BY LeadSource ASC, LastName DESC")) == [
        "Brooks", "Chen", "Diaz", "Adler"]
    assert _names(_run(state, "SELECT Id FROM Lead ORDER BY LeadSource NULLS LAST, CreatedDate LIMIT 2 OFFSET 1")) == [
        "Adler", "Diaz"]


def test_numbers_dates_booleans_and_relationships() -> None:
    state = _org()
    plan = compile_soql(state, "SELECT Name, Contact.LastName, Account.Name FROM Opportunity "
                               "WHERE Amount >= 900 AND CloseDate < 2024-04-01 AND IsWon = true")
    rows = plan.select(state.all_rows("Opportunity"))
    assert [r["Name"] for r in rows] == ["Small"]
    record = plan.rest_record(rows[0], "v59.0")
    assert record["Contact"] is None and record["Account"] is None
    big = compile_soql(state, "SELECT Name, Contact.LastName, Account.Name FROM Opportunity WHERE Amount > 1000")
    record = big.rest_record(big.select(state.all_rows("Opportunity"))[0], "v59.0")
    assert record["Contact"]["LastName"] == "Evans" and record["Account"]["Name"] == "Acme"
    assert record["Account"]["attributes"]["type"] == "Account"


def test_fifteen_character_ids_match_their_eighteen_character_form() -> None:
    state = _org()
    lead = list(state.all_rows("Lead"))[2]
    assert _names(_run(state, f"SELECT Id FROM Lead WHERE Id = '{lead['Id'][:15]}'")) == ["Chen"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30))
def test_any_string_escaped_by_format_soql_matches_exactly_its_row(value: str) -> None:
    state = SalesforceState()
    state.insert("Lead", {"LastName": "target", "Company": value[:255] or "x", "Status": "Open"}, at=T0)
    state.insert("Lead", {"LastName": "other", "Company": (value[:254] or "x") + "!", "Status": "Open"}, at=T0)
    rows = _run(state, format_soql("SELECT Id FROM Lead WHERE Company = {}", value[:255] or "x"))
    assert _names(rows) == ["target"]
