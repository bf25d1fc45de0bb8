"""One sentence per attribution model on what it rewards, for people choosing which to believe."""

from __future__ import annotations

from closedloop.config.attribution import AttributionConfig

NOTES = {
    "first_touch": "Rewards the channel that first brought the person in: discovery.",
    "last_touch": "Rewards the last touch before each conversion: the channel that closed.",
    "last_non_direct": "Rewards the last touch that was not direct traffic: the last channel that "
    "actually brought the person back.",
    "linear": "Splits credit equally over every touch: rewards being present all along the journey.",
    "u_shaped": "Rewards the first touch and the lead-creating touch most (40% each), the touches "
    "between share 20%.",
    "w_shaped": "Rewards first touch, lead creation and opportunity creation (30% each); the rest share 10%.",
    "full_path": "Rewards first touch, lead, opportunity and the touch before the win (22.5% each); "
    "the rest share 10%.",
    "time_decay": "Rewards recent touches: a touch's credit halves every half-life before the conversion.",
    "j_shaped": "Rewards the closing touch most (60%), the first 20%, the middle 20%.",
    "inverse_j": "Rewards the first touch most (60%), the closing touch 20%, the middle 20%.",
    "markov": "Data-driven: credits a channel with the conversions lost if it were removed from every "
    "journey (removal effect).",
    "shapley": "Data-driven: credits a channel with its average added conversion rate over every "
    "combination of channels it joins.",
}


def model_note(name: str, attribution: AttributionConfig) -> str:
    """The sentence for ``name``; a custom position model is described from its weights."""
    if name in NOTES:
        return NOTES[name]
    weights = attribution.custom_models.get(name)
    if weights is None:
        return "A model of your own."
    parts = [f"{field.replace('_', ' ')} {value:g}%" for field, value in weights.model_dump().items()
             if isinstance(value, int | float) and value]
    return "Your position model: " + ", ".join(parts) + "."
