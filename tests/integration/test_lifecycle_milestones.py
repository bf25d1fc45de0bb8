"""Milestones on a hand-built portal: which touch carries each, and the credit every model gives.

Two contacts, nine web sessions and two deals, with lifecycle and deal-stage dates chosen so
that first touch, lead, opportunity and won fall on different sessions; the portal is served by
the sandbox and goes through the real pull and rebuild.  Every expected value below was worked
out by hand from the rules in ``closedloop.attribution.positions`` and ``.journeys``: a journey
keeps the touches up to its conversion, a milestone sits on the last kept touch at or before
its date, a role without a milestone drops out and the rest is scaled up to 1.  Touches are
named by session (s1..s9) or ``offline`` (the CRM's own source, for a lead with no earlier visit).

Contact 101 (device 1.1): s1 organic day 0, s2 email day 3, s3 cpc day 10 (1 h before it
becomes a contact and lead), s4 day 20, MQL day 25, s5 direct day 30, deal 901 created day 35
(in a stage that is not yet an opportunity), s6 day 40, opportunity day 45, s7 day 48, won day 50.
Contact 102 (device 2.2): created day 5 with no visit before it, s8 day 15, deal 902 created
day 20, s9 day 21, won day 22 without passing an opportunity stage (back-filled to the win).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction as F

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from closedloop.config.mapping import MappingConfig
from closedloop.config.models import Config
from closedloop.sandbox.company import (
    Company,
    SyntheticContact,
    SyntheticDeal,
    SyntheticPipeline,
    SyntheticSession,
    SyntheticStage,
    SyntheticStageChange,
)
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.derive import rebuild
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=60)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


SESSIONS = {  # name -> (client id, start, source, medium, campaign)
    "s1": ("1.1", day(0), "google", "organic", "(organic)"),
    "s2": ("1.1", day(3), "newsletter", "email", "spring"),
    "s3": ("1.1", day(10) - timedelta(hours=1), "google", "cpc", "brand"),
    "s4": ("1.1", day(20), "partner.example", "referral", "(referral)"),
    "s5": ("1.1", day(30), "(direct)", "(none)", "(direct)"),
    "s6": ("1.1", day(40), "newsletter", "email", "summer"),
    "s7": ("1.1", day(48), "google", "cpc", "generic"),
    "s8": ("2.2", day(15), "newsletter", "email", "spring"),
    "s9": ("2.2", day(21), "partner.example", "referral", "(referral)"),
}
# HubSpot's default pipeline, except that only "qualified to buy" makes an opportunity.
OPPORTUNITY_AT_QUALIFIED = {"default": {"qualifiedtobuy": "opportunity", "closedwon": "closed_won",
                                        "closedlost": "closed_lost"}}
# Marketing counts a lead only once it is marketing-qualified.
MQL_IS_LEAD = {"marketingqualifiedlead": "lead", "customer": "closed_won"}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def company() -> Company:
    contacts = [
        SyntheticContact(
            id="101", email="ada@example.com", created_at=day(10), updated_at=day(50), lifecycle_stage="customer",
            ga_client_ids=["1.1"], original_source="ORGANIC_SEARCH",
            extra={"hs_lifecyclestage_lead_date": _iso(day(10)),
                   "hs_lifecyclestage_marketingqualifiedlead_date": _iso(day(25)),
                   "hs_lifecyclestage_customer_date": _iso(day(50))},
        ),
        SyntheticContact(
            id="102", email="bo@example.com", created_at=day(5), updated_at=day(22), lifecycle_stage="customer",
            ga_client_ids=["2.2"], original_source="OFFLINE",
            extra={"hs_lifecyclestage_lead_date": _iso(day(5))},
        ),
    ]
    sessions = [SyntheticSession(cid, at, source, medium, campaign, "/") for cid, at, source, medium, campaign
                in SESSIONS.values()]
    stages = [SyntheticStage("appointmentscheduled", "Appointment", 0, 0.2, False),
              SyntheticStage("qualifiedtobuy", "Qualified", 1, 0.4, False),
              SyntheticStage("closedwon", "Won", 2, 1.0, True),
              SyntheticStage("closedlost", "Lost", 3, 0.0, True)]
    deals = [
        SyntheticDeal("901", "Ada's deal", "default", 5000.0, day(35), day(50),
                      [SyntheticStageChange("appointmentscheduled", day(35)),
                       SyntheticStageChange("qualifiedtobuy", day(45)),
                       SyntheticStageChange("closedwon", day(50))], ["101"], closed_at=day(50)),
        SyntheticDeal("902", "Bo's deal", "default", 800.0, day(20), day(22),
                      [SyntheticStageChange("appointmentscheduled", day(20)),
                       SyntheticStageChange("closedwon", day(22))], ["102"], closed_at=day(22)),
    ]
    return Company(contacts=contacts, deals=deals, sessions=sessions,
                   pipelines=[SyntheticPipeline("default", "Sales", stages)])


def _config(base: Config, lifecycle: dict[str, str] | None = None) -> Config:
    milestones: dict[str, object] = {"pipelines": OPPORTUNITY_AT_QUALIFIED}
    if lifecycle is not None:
        milestones["lifecycle_stages"] = lifecycle
    # Three single-role models name the touch carrying each milestone: it gets all the credit.
    attribution = type(base.attribution).model_validate({
        **base.attribution.model_dump(),
        "models": ["first_touch", "u_shaped", "w_shaped", "full_path", "at_lead", "at_opportunity", "at_won"],
        "custom_models": {"at_lead": {"lead": 100}, "at_opportunity": {"opportunity": 100}, "at_won": {"won": 100}},
    })
    return base.model_copy(update={"mapping": MappingConfig.model_validate({"milestones": milestones}),
                                   "attribution": attribution})


Credits = dict[str, dict[str, dict[str, float]]]  # model -> conversion -> touch name -> weight


@pytest.fixture(scope="module")
def credits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Credits]:
    """The credits of the default lifecycle mapping and of MQL-as-lead, from one pull."""
    url = f"sqlite:///{tmp_path_factory.mktemp('milestones') / 'm.db'}"
    engine = open_store(url)
    with start_sandbox(company(), now=NOW, burst_limit=100_000) as sandbox:
        config = _config(sandbox.config(store_url=url))
        connectors = build_connectors(config, sleep=lambda _s: None)
        report = run_once(engine=engine, config=config, sources=connectors.sources, writer=None,
                          log=connectors.log, now=NOW)
    assert report.status == "ok", report.errors
    out = {"default": _credits(engine)}
    rebuild(engine, _config(config, MQL_IS_LEAD))
    out["mql_is_lead"] = _credits(engine)
    engine.dispose()
    return out


def _credits(engine: Engine) -> Credits:
    names = {at: name for name, (_cid, at, *_rest) in SESSIONS.items()}
    with Session(engine) as session:
        touches = {t.id: (t.occurred_at, t.is_offline) for t in session.execute(select(m.Touchpoint)).scalars()}
        rows = session.execute(select(m.Credit.model, m.Credit.conversion_id, m.Credit.touchpoint_id,
                                      m.Credit.weight)).all()
    out: Credits = {}
    for model, conversion, touch_id, weight in rows:
        at, offline = touches[touch_id]
        name = "offline" if offline else names[at.replace(tzinfo=UTC) if at.tzinfo is None else at]
        out.setdefault(model, {}).setdefault(conversion, {})[name] = weight
    return out


# conversion -> the touches of its journey, oldest first.
JOURNEYS = {
    "contact_created:101": ["s1", "s2", "s3"],
    "deal_created:901": ["s1", "s2", "s3", "s4", "s5"],
    "deal_won:901": ["s1", "s2", "s3", "s4", "s5", "s6", "s7"],
    "contact_created:102": ["offline"],
    "deal_created:902": ["offline", "s8"],
    "deal_won:902": ["offline", "s8", "s9"],
}
# conversion -> (first, lead, opportunity, won) touch; None: that milestone has no touch.
CARRIERS = {
    "default": {
        "contact_created:101": ("s1", "s3", None, None),
        "deal_created:901": ("s1", "s3", "s5", None),  # the opportunity came after creation: last touch
        "deal_won:901": ("s1", "s3", "s6", "s7"),
        "contact_created:102": ("offline", "offline", None, None),
        "deal_created:902": ("offline", "offline", "s8", None),
        "deal_won:902": ("offline", "offline", "s9", "s9"),  # opportunity back-filled to the win
    },
    "mql_is_lead": {
        "contact_created:101": ("s1", "s3", None, None),  # the MQL came after creation: last touch
        "deal_created:901": ("s1", "s4", "s5", None),
        "deal_won:901": ("s1", "s4", "s6", "s7"),
        "contact_created:102": ("offline", "offline", None, None),  # never an MQL: creation is the lead
        "deal_created:902": ("offline", "offline", "s8", None),
        "deal_won:902": ("offline", "offline", "s9", "s9"),
    },
}
# Worked by hand: u_shaped = first 40 / lead 40 / middle 20; w_shaped = first, lead, opportunity
# 30 each / middle 10; full_path = first, lead, opportunity, won 22.5 each / middle 10.
EXPECTED: dict[str, dict[str, dict[str, dict[str, F]]]] = {
    "default": {
        "u_shaped": {
            "contact_created:101": {"s1": F(2, 5), "s2": F(1, 5), "s3": F(2, 5)},
            "deal_created:901": {"s1": F(2, 5), "s2": F(1, 15), "s3": F(2, 5), "s4": F(1, 15), "s5": F(1, 15)},
            "deal_won:901": {"s1": F(2, 5), "s2": F(1, 25), "s3": F(2, 5), "s4": F(1, 25), "s5": F(1, 25),
                             "s6": F(1, 25), "s7": F(1, 25)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(4, 5), "s8": F(1, 5)},
            "deal_won:902": {"offline": F(4, 5), "s8": F(1, 10), "s9": F(1, 10)},
        },
        "w_shaped": {  # no opportunity in a contact's own journey: 30+30+10 scaled to 100
            "contact_created:101": {"s1": F(3, 7), "s2": F(1, 7), "s3": F(3, 7)},
            "deal_created:901": {"s1": F(3, 10), "s2": F(1, 20), "s3": F(3, 10), "s4": F(1, 20), "s5": F(3, 10)},
            "deal_won:901": {"s1": F(3, 10), "s2": F(1, 40), "s3": F(3, 10), "s4": F(1, 40), "s5": F(1, 40),
                             "s6": F(3, 10), "s7": F(1, 40)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(2, 3), "s8": F(1, 3)},  # 60 + 30, no middle touch
            "deal_won:902": {"offline": F(3, 5), "s8": F(1, 10), "s9": F(3, 10)},
        },
        "full_path": {
            "contact_created:101": {"s1": F(9, 22), "s2": F(2, 11), "s3": F(9, 22)},
            "deal_created:901": {"s1": F(9, 31), "s2": F(2, 31), "s3": F(9, 31), "s4": F(2, 31), "s5": F(9, 31)},
            "deal_won:901": {"s1": F(9, 40), "s2": F(1, 30), "s3": F(9, 40), "s4": F(1, 30), "s5": F(1, 30),
                             "s6": F(9, 40), "s7": F(9, 40)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(2, 3), "s8": F(1, 3)},  # 45 + 22.5, no won, no middle
            "deal_won:902": {"offline": F(9, 20), "s8": F(1, 10), "s9": F(9, 20)},
        },
    },
    "mql_is_lead": {
        "u_shaped": {
            "contact_created:101": {"s1": F(2, 5), "s2": F(1, 5), "s3": F(2, 5)},
            "deal_created:901": {"s1": F(2, 5), "s2": F(1, 15), "s3": F(1, 15), "s4": F(2, 5), "s5": F(1, 15)},
            "deal_won:901": {"s1": F(2, 5), "s2": F(1, 25), "s3": F(1, 25), "s4": F(2, 5), "s5": F(1, 25),
                             "s6": F(1, 25), "s7": F(1, 25)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(4, 5), "s8": F(1, 5)},
            "deal_won:902": {"offline": F(4, 5), "s8": F(1, 10), "s9": F(1, 10)},
        },
        "w_shaped": {
            "contact_created:101": {"s1": F(3, 7), "s2": F(1, 7), "s3": F(3, 7)},
            "deal_created:901": {"s1": F(3, 10), "s2": F(1, 20), "s3": F(1, 20), "s4": F(3, 10), "s5": F(3, 10)},
            "deal_won:901": {"s1": F(3, 10), "s2": F(1, 40), "s3": F(1, 40), "s4": F(3, 10), "s5": F(1, 40),
                             "s6": F(3, 10), "s7": F(1, 40)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(2, 3), "s8": F(1, 3)},
            "deal_won:902": {"offline": F(3, 5), "s8": F(1, 10), "s9": F(3, 10)},
        },
        "full_path": {
            "contact_created:101": {"s1": F(9, 22), "s2": F(2, 11), "s3": F(9, 22)},
            "deal_created:901": {"s1": F(9, 31), "s2": F(2, 31), "s3": F(2, 31), "s4": F(9, 31), "s5": F(9, 31)},
            "deal_won:901": {"s1": F(9, 40), "s2": F(1, 30), "s3": F(1, 30), "s4": F(9, 40), "s5": F(1, 30),
                             "s6": F(9, 40), "s7": F(9, 40)},
            "contact_created:102": {"offline": F(1)},
            "deal_created:902": {"offline": F(2, 3), "s8": F(1, 3)},
            "deal_won:902": {"offline": F(9, 20), "s8": F(1, 10), "s9": F(9, 20)},
        },
    },
}


@pytest.mark.parametrize("mapping", ["default", "mql_is_lead"])
def test_each_milestone_sits_on_the_touch_worked_out_by_hand(credits: dict[str, Credits], mapping: str) -> None:
    got = credits[mapping]
    assert sorted(got["first_touch"]) == sorted(JOURNEYS)
    for conversion, touches in JOURNEYS.items():
        assert sorted(got["first_touch"][conversion]) == sorted(touches), conversion
        for model, carrier in zip(("first_touch", "at_lead", "at_opportunity", "at_won"),
                                  CARRIERS[mapping][conversion], strict=True):
            weights = got[model][conversion]
            if carrier is None:  # no such milestone: a single-role model shares equally
                expected = {t: 1 / len(touches) for t in touches}
            else:
                expected = {t: 1.0 if t == carrier else 0.0 for t in touches}
            assert weights == pytest.approx(expected, abs=1e-9), (model, conversion)


@pytest.mark.parametrize("mapping", ["default", "mql_is_lead"])
@pytest.mark.parametrize("model", ["u_shaped", "w_shaped", "full_path"])
def test_credited_weights_are_the_ones_worked_out_by_hand(
    credits: dict[str, Credits], mapping: str, model: str
) -> None:
    got = credits[mapping][model]
    expected = EXPECTED[mapping][model]
    assert sorted(got) == sorted(expected)
    for conversion, weights in expected.items():
        assert sum(weights.values()) == 1, f"the hand-worked {model} {conversion} must sum to 1"
        want = {touch: float(weights.get(touch, 0)) for touch in JOURNEYS[conversion]}
        assert got[conversion] == pytest.approx(want, abs=1e-9), (model, conversion)
