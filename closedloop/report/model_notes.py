"""One sentence per attribution model on what it rewards, for people choosing which to believe."""

from __future__ import annotations

from closedloop.config.attribution import AttributionConfig, PositionWeights

NOTES = {
    "first_touch": "Rewards the channel that first brought the person in: discovery.",
    "last_touch": "Rewards the last touch before each conversion: the channel that closed.",
    "last_non_direct": "Rewards the last touch that was not direct traffic: the last channel that "
    "actually brought the person back.",
    "linear": "Splits credit equally over every touch: rewards being present all along the journey.",
    "u_shaped": "Rewards the touch that first brought the person in and the one that made them a lead.",
    "w_shaped": "Rewards first touch, lead creation and opportunity creation alike.",
    "full_path": "Rewards first touch, lead, opportunity and the touch before the win alike.",
    "time_decay": "Rewards recent touches: a touch's credit halves every half-life before the conversion.",
    "j_shaped": "Rewards the closing touch most, the first touch less.",
    "inverse_j": "Rewards the first touch most, the closing touch less.",
    "markov": "Data-driven: credits a channel with the conversions lost if it were removed from every "
    "journey (removal effect).",
    "shapley": "Data-driven: credits a channel with its average added conversion rate over every "
    "combination of channels it joins.",
}


def model_note(name: str, attribution: AttributionConfig) -> str:
    """The sentence for ``name``; a position model adds its weights as configured."""
    weights = attribution.custom_models.get(name) or getattr(attribution, name, None)
    if not isinstance(weights, PositionWeights):
        if name == "time_decay":
            return f"{NOTES[name]} (half-life {attribution.time_decay_half_life_days:g} days)"
        return NOTES.get(name, "A model of your own.")
    parts = [f"{role} {value:g}%" for role, value in weights.model_dump().items() if value]
    sentence = NOTES.get(name, "Your position model.")
    return f"{sentence} ({', '.join(parts)})"
