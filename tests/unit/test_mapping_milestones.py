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


def test_stage_history_places_each_milestone_on_the_right_touch_with_exact_weights() -> None:
    """CRM dates -> milestones -> which touch carries each -> W-shaped and full-path weights.

    Touches on days 0 (seo), 2 (email), 5 (paid), 9 (social), 12 (direct).  The contact became
    a lead on day 3 (after the email), the deal entered "appointmentscheduled" on day 6 and
    "qualifiedtobuy" on day 8 (the opportunity is the first of them: day 6, after paid) and was
    won on day 12 at 10:00, after the direct visit at 09:00.
    """
    from closedloop.attribution.journeys import build_journey
    from closedloop.attribution.positions import journey_position_credit
    from closedloop.attribution.types import Touch
    from closedloop.config.attribution import AttributionConfig

    day = timedelta(days=1)
    touches = [Touch(name, T0 + n * day, n) for n, name in
               zip((0, 2, 5, 9, 12), ("seo", "email", "paid", "social", "direct"), strict=True)]
    lead = lifecycle_dates([("lead", T0 + 3 * day), ("customer", T0 + 12 * day + timedelta(hours=1))], DEFAULTS)
    deal = milestone_dates([("default", "qualifiedtobuy", T0 + 8 * day),
                            ("default", "appointmentscheduled", T0 + 6 * day),
                            ("default", "closedwon", T0 + 12 * day + timedelta(hours=1))], DEFAULTS)
    assert lead["lead"] == T0 + 3 * day
    assert deal["opportunity"] == T0 + 6 * day
    journey = build_journey(touches, converted_at=deal["closed_won"], lookback=None, lead_at=lead["lead"],
                            opportunity_at=deal["opportunity"], won_at=deal["closed_won"])
    # lead -> the email (day 2), opportunity -> paid (day 5), won -> direct (day 12).
    assert (journey.lead_index, journey.opportunity_index, journey.won_index) == (1, 2, 4)
    config = AttributionConfig()
    # W-shaped: 30 seo, 30 email, 30 paid; social and direct share the 10.
    assert journey_position_credit(journey, config.w_shaped) == pytest.approx(
        [0.3, 0.3, 0.3, 0.05, 0.05], abs=1e-12)
    # Full path: 22.5 to seo, email, paid, direct; social is the only middle touch: 10.
    assert journey_position_credit(journey, config.full_path) == pytest.approx(
        [0.225, 0.225, 0.225, 0.1, 0.225], abs=1e-12)
    # A lead date before every touch leaves no lead touch: its 30 drops out; 30 + 30 + 10/3 x 3
    # = 70 scale to 100.
    early = build_journey(touches, converted_at=deal["closed_won"], lookback=None, lead_at=T0 - day,
                          opportunity_at=deal["opportunity"], won_at=deal["closed_won"])
    assert early.lead_index is None
    assert journey_position_credit(early, config.w_shaped) == pytest.approx(
        [3 / 7, 1 / 21, 3 / 7, 1 / 21, 1 / 21], abs=1e-12)
