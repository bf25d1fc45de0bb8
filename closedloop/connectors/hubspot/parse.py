"""Turn HubSpot objects into closedloop records; a record that doesn't parse raises Skippable."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from closedloop.config.models import HubSpotContactProperties
from closedloop.connectors.hashing import hash_email
from closedloop.connectors.hubspot.shape import Warn, no_warn, object_key, properties, timestamp
from closedloop.errors import SkippableRecordError
from closedloop.records import ContactRecord, DealContactLink, DealRecord, DealStageEvent, PipelineStage


def parse_time(value: Any) -> datetime | None:
    """HubSpot v3 sends ISO-8601; older properties and filters use epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def split_values(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    parts = (p.strip() for p in value.replace(",", ";").split(";"))
    return tuple(dict.fromkeys(p for p in parts if p))


def _required_time(props: dict[str, Any], name: str, *, key: str, warn: Warn = no_warn) -> datetime:
    value = timestamp(props.get(name), name=name, key=key, warn=warn)
    if value is None:
        raise SkippableRecordError(f"{name} is missing", record_key=key)
    return value


def lifecycle_date_properties(names: HubSpotContactProperties, stages: Sequence[str]) -> dict[str, str]:
    """Stage id -> the property holding when the contact entered it."""
    return {stage: names.lifecycle_stage_date.format(stage=stage) for stage in stages}


def contact_properties_to_fetch(names: HubSpotContactProperties, stages: Sequence[str] = ()) -> list[str]:
    fields = [v for k, v in names.model_dump().items() if v and k != "lifecycle_stage_date"]
    dates = lifecycle_date_properties(names, stages).values()
    return sorted({*fields, *dates, "createdate", "lastmodifieddate", "hs_object_id"})


def parse_contact(
    obj: Mapping[str, Any], names: HubSpotContactProperties, stages: Sequence[str] = (), *, warn: Warn = no_warn
) -> ContactRecord:
    """``obj`` is one object of a CRM answer as JSON: ``{"id", "properties", ...}``."""
    key = object_key(obj)
    props: dict[str, Any] = properties(obj, key)
    created = _required_time(props, "createdate", key=key, warn=warn)
    updated = created
    if props.get("lastmodifieddate"):
        updated = _required_time(props, "lastmodifieddate", key=key, warn=warn)
    email = props.get(names.email)
    click_ids = {
        kind: str(props[prop]).strip()
        for kind, prop in (("gclid", names.gclid), ("fbclid", names.fbclid), ("msclkid", names.msclkid))
        if prop and props.get(prop)
    }
    utm = {
        k: str(props[p])
        for k, p in (("source", names.utm_source), ("medium", names.utm_medium), ("campaign", names.utm_campaign))
        if props.get(p)
    }
    return ContactRecord(
        crm_id=key,
        created_at=created,
        updated_at=updated,
        email_hash=hash_email(email) if email else None,
        lifecycle_stage=props.get(names.lifecycle_stage) or None,
        ga_client_ids=split_values(props.get(names.ga_client_id)),
        click_ids=click_ids,
        original_source=props.get(names.original_source) or None,
        original_source_detail_1=props.get(names.original_source_detail_1) or None,
        original_source_detail_2=props.get(names.original_source_detail_2) or None,
        utm=utm,
        merged_ids=tuple(i for i in split_values(props.get(names.merged_ids)) if i != key),
        lifecycle_dates={
            stage: _required_time(props, prop, key=key, warn=warn)
            for stage, prop in lifecycle_date_properties(names, stages).items()
            if props.get(prop)
        },
        properties={},
    )


DEAL_PROPERTIES = [
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "createdate",
    "closedate",
    "hs_lastmodifieddate",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_object_id",
    # The deal's currency and HubSpot's own conversion into the portal's home currency: deals
    # in several currencies are never summed raw.
    "deal_currency_code",
    "amount_in_home_currency",
]


def _bool(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def parse_deal(obj: Mapping[str, Any], *, warn: Warn = no_warn) -> DealRecord:
    key = object_key(obj)
    props: dict[str, Any] = properties(obj, key)
    created = _required_time(props, "createdate", key=key, warn=warn)
    updated = created
    if props.get("hs_lastmodifieddate"):
        updated = _required_time(props, "hs_lastmodifieddate", key=key, warn=warn)
    amount = _number(props, "amount", key=key)
    amount_home = _number(props, "amount_in_home_currency", key=key)
    currency = str(props.get("deal_currency_code") or "").strip().upper() or None
    is_won = _bool(props.get("hs_is_closed_won"))
    closes = is_won or _bool(props.get("hs_is_closed"))
    return DealRecord(
        crm_id=key,
        created_at=created,
        updated_at=updated,
        name=props.get("dealname"),
        pipeline=props.get("pipeline"),
        stage=props.get("dealstage"),
        amount=amount,
        closed_at=timestamp(props.get("closedate"), name="closedate", key=key, warn=warn) if closes else None,
        is_won=is_won,
        is_closed=_bool(props.get("hs_is_closed")) or is_won,
        currency=currency,
        amount_home=amount_home,
    )


def _number(props: dict[str, Any], name: str, *, key: str) -> float | None:
    """A finite number, or None where HubSpot holds no value; anything else quarantines the deal."""
    raw = props.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SkippableRecordError(f"{name} is not a number: {raw!r}", record_key=key) from None
    if not math.isfinite(value):
        raise SkippableRecordError(f"{name} is not a finite number: {raw!r}", record_key=key)
    return value


def parse_stage_history(obj: Mapping[str, Any], pipeline: str | None, *, warn: Warn = no_warn) -> list[DealStageEvent]:
    """The deal's ``dealstage`` history; entries without a value or time are skipped (HubSpot
    sends such for a cleared stage), an entry whose time is not one quarantines the history."""
    key = object_key(obj)
    history = properties_with_history(obj, key)
    events = []
    for entry in history:
        if not isinstance(entry, Mapping) or not entry.get("value"):
            continue
        at = timestamp(entry.get("timestamp"), name="dealstage history timestamp", key=key, warn=warn)
        value = entry["value"]
        if at is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise SkippableRecordError(f"a dealstage history value is a {type(value).__name__}", record_key=key)
        events.append(DealStageEvent(deal_id=key, stage=str(value), entered_at=at, pipeline=pipeline))
    return events


def properties_with_history(obj: Mapping[str, Any], key: str) -> list[Any]:
    raw = obj.get("propertiesWithHistory")
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise SkippableRecordError("propertiesWithHistory is not an object", record_key=key)
    history = raw.get("dealstage")
    if history is None:
        return []
    if not isinstance(history, list):
        raise SkippableRecordError("the dealstage history is not a list", record_key=key)
    return history


def parse_pipeline(obj: Any) -> list[PipelineStage]:
    """One pipeline of ``GET /crm/v3/pipelines/deals`` (plain JSON) as its stages."""
    key = object_key(obj)
    stages = obj.get("stages")
    if stages is None:
        return []
    if not isinstance(stages, list):
        raise SkippableRecordError("stages is not a list", record_key=key)
    out = []
    for stage in stages:
        stage_id = object_key(stage) if isinstance(stage, Mapping) else None
        if stage_id is None:
            raise SkippableRecordError("a stage is not an object", record_key=key)
        meta = properties(stage, key, field="metadata")
        is_closed = str(meta.get("isClosed") or "false").lower() == "true"
        probability = meta.get("probability")
        try:
            won = is_closed and probability is not None and float(probability) >= 1.0
        except ValueError:
            won = False
        try:
            order = int(stage.get("displayOrder") or 0)
        except (TypeError, ValueError, OverflowError):
            raise SkippableRecordError(f"stage {stage_id} displayOrder is not a number", record_key=key) from None
        out.append(
            PipelineStage(
                pipeline_id=key,
                pipeline_label=_text(obj.get("label")),
                stage_id=stage_id,
                stage_label=_text(stage.get("label")),
                display_order=order,
                is_closed=is_closed,
                is_won=won,
            )
        )
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def parse_association(result: Any) -> list[DealContactLink]:
    """One result of the v4 associations batch read: ``{"from": {"id"}, "to": [{"toObjectId"}]}``."""
    if not isinstance(result, Mapping):
        raise SkippableRecordError(f"the association is {type(result).__name__}, not an object", record_key="(no id)")
    deal_id = object_key(result.get("from"))
    targets = result.get("to") or []
    if not isinstance(targets, list):
        raise SkippableRecordError("the association's to is not a list", record_key=deal_id)
    return [DealContactLink(deal_id=deal_id, contact_id=object_key(to, field="toObjectId")) for to in targets]
