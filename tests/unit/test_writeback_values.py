"""The values closedloop writes to the CRM, computed from touches and credits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from closedloop.sync.properties import (
    TouchView,
    contact_values,
    deal_values,
    number,
    property_specs,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def touch(hours: int, channel: str, source: str = "google", campaign: str = "") -> TouchView:
    return TouchView(T0 + timedelta(hours=hours), channel, source, campaign)


def test_contact_values_first_lead_last_and_journey() -> None:
    touches = [
        touch(0, "Paid Search", "google", "brand"),
        touch(5, "Email", "newsletter"),
        touch(6, "Email", "newsletter"),
        touch(48, "Direct", "(direct)"),
    ]
    values = contact_values("cl_", T0 + timedelta(hours=10), touches)
    assert values == {
        "cl_first_touch_channel": "Paid Search",
        "cl_first_touch_source": "google",
        "cl_first_touch_campaign": "brand",
        "cl_lead_channel": "Email",
        "cl_last_touch_channel": "Direct",
        "cl_touch_count": "4",
        "cl_journey": "Paid Search > Email > Direct",
    }


def test_contact_without_touches_gets_empty_values() -> None:
    values = contact_values("cl_", T0, [])
    assert values["cl_touch_count"] == "0" and values["cl_first_touch_channel"] == ""


def test_lead_channel_empty_when_every_touch_is_after_creation() -> None:
    assert contact_values("cl_", T0 - timedelta(days=1), [touch(0, "Email")])["cl_lead_channel"] == ""


def test_deal_values_rank_channels_and_format_split() -> None:
    values = deal_values("cl_", "u_shaped", {"Email": 0.2, "Paid Search": 0.4, "Organic Search": 0.4}, 5, 37.26)
    assert values["cl_primary_channel"] == "Organic Search"  # ties broken by name, stable across runs
    assert values["cl_channel_split"] == "Organic Search 40% | Paid Search 40% | Email 20%"
    assert values["cl_touch_count"] == "5"
    assert values["cl_days_to_close"] == "37.3"
    assert values["cl_attribution_model"] == "u_shaped"


def test_open_deal_has_no_days_to_close() -> None:
    assert deal_values("cl_", "linear", {}, 0, None)["cl_days_to_close"] == ""


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_number_is_canonical(value: float) -> None:
    text = number(value)
    assert float(text) == float(f"{value:.6f}")
    assert not text.endswith(".") and (not text.endswith("0") or "." not in text)


def test_every_written_property_is_declared() -> None:
    declared = {(s.object_type, s.name) for s in property_specs("cl_", "linear")}
    written = {("contacts", k) for k in contact_values("cl_", T0, [touch(0, "Email")])}
    written |= {("deals", k) for k in deal_values("cl_", "linear", {"Email": 1.0}, 1, 2.0)}
    assert written == declared
