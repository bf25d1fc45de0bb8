"""Milestones per pipeline and their dates from stage history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closedloop.config.mapping import MappingConfig
from closedloop.mapping.milestones import MilestoneMapper, lifecycle_dates, milestone_dates

DEFAULTS = MilestoneMapper.from_config(MappingConfig())
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("stage", "milestone"), [
    ("lead", "lead"), ("marketingqualifiedlead", "mql"), ("salesqualifiedlead", "sql"),
    ("opportunity", "opportunity"), ("customer", "closed_won"), ("subscriber", None),
    (None, None), ("LEAD", "lead"),
])
def test_hubspot_lifecycle_stages(stage: str | None, milestone: str | None) -> None:
    assert DEFAULTS.lifecycle(stage) == milestone


@pytest.mark.parametrize(("stage", "milestone"), [
    ("appointmentscheduled", "opportunity"), ("qualifiedtobuy", "opportunity"),
    ("presentationscheduled", "opportunity"), ("decisionmakerboughtin", "opportunity"),
    ("contractsent", "opportunity"), ("closedwon", "closed_won"), ("closedlost", "closed_lost"),
])
def test_hubspot_default_pipeline(stage: str, milestone: str) -> None:
    assert DEFAULTS.deal_stage("default", stage) == milestone


def test_each_pipeline_has_its_own_stages_and_star_covers_the_rest() -> None:
    config = MappingConfig.model_validate({"milestones": {"pipelines": {
        "default": {"closedwon": "closed_won"},
        "renewals": {"12345": "sql", "closedwon": "closed_lost"},
        "*": {"Closed Won": "closed_won"},
    }}})
    mapper = MilestoneMapper.from_config(config)
    assert mapper.deal_stage("renewals", "12345") == "sql"
    assert mapper.deal_stage("default", "12345") is None
    # the pipeline's own table wins over the shared one
    assert mapper.deal_stage("renewals", "closedwon") == "closed_lost"
    assert mapper.deal_stage("other", "closed won") == "closed_won"
    assert mapper.deal_stage(None, "Closed Won") == "closed_won"  # Salesforce: no pipeline id
    assert mapper.deal_stage("other", None) is None


def test_milestone_dates_are_first_entries_with_backfill() -> None:
    events = [
        ("default", "qualifiedtobuy", T0 + timedelta(days=3)),
        ("default", "appointmentscheduled", T0 + timedelta(days=1)),
        ("default", "closedwon", T0 + timedelta(days=10)),
        ("default", "appointmentscheduled", T0 + timedelta(days=12)),  # re-entered later
        ("default", "unknownstage", T0),
    ]
    dates = milestone_dates(events, DEFAULTS)
    assert dates["opportunity"] == T0 + timedelta(days=1)
    assert dates["closed_won"] == T0 + timedelta(days=10)
    assert "closed_lost" not in dates
    assert dates["lead"] == T0 + timedelta(days=1)  # skipped milestones take the later date


def test_deal_created_straight_into_won_was_an_opportunity_then() -> None:
    won = T0 + timedelta(days=2)
    dates = milestone_dates([("default", "closedwon", won)], DEFAULTS)
    assert dates["opportunity"] == won
    assert milestone_dates([("default", "closedwon", won)], DEFAULTS, backfill=False) == {
        "closed_won": won}


def test_lifecycle_dates() -> None:
    events = [("lead", T0), ("salesqualifiedlead", T0 + timedelta(days=5))]
    dates = lifecycle_dates(events, DEFAULTS)
    assert dates == {"lead": T0, "mql": T0 + timedelta(days=5), "sql": T0 + timedelta(days=5)}


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        milestone_dates([("default", "closedwon", datetime(2024, 1, 1))], DEFAULTS)
