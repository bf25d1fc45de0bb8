"""The CRM properties closedloop owns, and their values computed from touchpoints and credits.

Pure: plain rows in, ``{property: text}`` out.  Values are text because that is what both CRMs
accept on the wire; numbers are written without trailing zeros so equal values compare equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from closedloop.connectors.base import PropertySpec


def property_specs(prefix: str, model: str) -> list[PropertySpec]:
    p = prefix
    return [
        PropertySpec(
            "contacts",
            f"{p}first_touch_channel",
            "First touch channel",
            description="closedloop: channel of the first known touch",
        ),
        PropertySpec(
            "contacts",
            f"{p}first_touch_source",
            "First touch source",
            description="closedloop: normalised source of the first touch",
        ),
        PropertySpec(
            "contacts",
            f"{p}first_touch_campaign",
            "First touch campaign",
            description="closedloop: campaign of the first touch",
        ),
        PropertySpec(
            "contacts",
            f"{p}lead_channel",
            "Lead creation channel",
            description="closedloop: channel of the touch that created the lead",
        ),
        PropertySpec(
            "contacts",
            f"{p}last_touch_channel",
            "Last touch channel",
            description="closedloop: channel of the latest touch",
        ),
        PropertySpec(
            "contacts",
            f"{p}touch_count",
            "Touch count",
            type="number",
            field_type="number",
            description="closedloop: known touches of this contact",
        ),
        PropertySpec(
            "contacts",
            f"{p}journey",
            "Channel journey",
            field_type="textarea",
            description="closedloop: channels in order, repeats collapsed",
        ),
        PropertySpec(
            "deals",
            f"{p}primary_channel",
            "Primary channel",
            description=f"closedloop: channel with the most credit under {model}",
        ),
        PropertySpec(
            "deals",
            f"{p}channel_split",
            "Channel split",
            field_type="textarea",
            description=f"closedloop: credit per channel under {model}",
        ),
        PropertySpec(
            "deals",
            f"{p}touch_count",
            "Touch count",
            type="number",
            field_type="number",
            description="closedloop: touches in the deal's journey",
        ),
        PropertySpec(
            "deals",
            f"{p}days_to_close",
            "Days lead to won",
            type="number",
            field_type="number",
            description="closedloop: days from the first lead creation to won",
        ),
        PropertySpec(
            "deals",
            f"{p}attribution_model",
            "Attribution model",
            description="closedloop: the model behind primary channel and split",
        ),
    ]


def owned_names(prefix: str, model: str) -> dict[str, list[str]]:
    """Object type -> closedloop's property names: what a source asks the CRM for besides its
    own fields, so a first run knows which values the CRM already holds."""
    out: dict[str, list[str]] = {}
    for spec in property_specs(prefix, model):
        out.setdefault(spec.object_type, []).append(spec.name)
    return out


def same_value(held: str, wanted: str) -> bool:
    """A value the CRM holds equals the one computed: the same text, or the same number (a CRM
    may answer ``3.0`` for the ``3`` written, or ``2.50`` for ``2.5``)."""
    if held == wanted:
        return True
    try:
        return float(held) == float(wanted)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class TouchView:
    occurred_at: datetime
    channel: str
    source: str
    campaign: str


def number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def contact_values(prefix: str, created_at: datetime, touches: Sequence[TouchView]) -> dict[str, str]:
    """Touches must be in time order.  A contact with no touch gets empty values, not stale ones."""
    p = prefix
    if not touches:
        return {
            f"{p}first_touch_channel": "",
            f"{p}first_touch_source": "",
            f"{p}first_touch_campaign": "",
            f"{p}lead_channel": "",
            f"{p}last_touch_channel": "",
            f"{p}touch_count": "0",
            f"{p}journey": "",
        }
    first, last = touches[0], touches[-1]
    before_lead = [t for t in touches if t.occurred_at <= created_at]
    journey: list[str] = []
    for t in touches:
        if not journey or journey[-1] != t.channel:
            journey.append(t.channel)
    return {
        f"{p}first_touch_channel": first.channel,
        f"{p}first_touch_source": first.source,
        f"{p}first_touch_campaign": first.campaign,
        f"{p}lead_channel": before_lead[-1].channel if before_lead else "",
        f"{p}last_touch_channel": last.channel,
        f"{p}touch_count": str(len(touches)),
        f"{p}journey": " > ".join(journey)[:1000],
    }


def deal_values(
    prefix: str,
    model: str,
    credit_by_channel: dict[str, float],
    touch_count: int,
    days_to_close: float | None,
) -> dict[str, str]:
    p = prefix
    ranked = sorted(credit_by_channel.items(), key=lambda kv: (-kv[1], kv[0]))
    split = " | ".join(f"{channel} {weight * 100:.0f}%" for channel, weight in ranked if weight > 0)
    return {
        f"{p}primary_channel": ranked[0][0] if ranked else "",
        f"{p}channel_split": split,
        f"{p}touch_count": str(touch_count),
        f"{p}days_to_close": number(round(days_to_close, 1)) if days_to_close is not None else "",
        f"{p}attribution_model": model,
    }
