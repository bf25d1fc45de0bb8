"""Turn HubSpot objects into closedloop records; a record that doesn't parse raises Skippable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from closedloop.config.models import HubSpotContactProperties
from closedloop.connectors.hashing import hash_email
from closedloop.errors import SkippableRecordError
from closedloop.records import ContactRecord, DealRecord, DealStageEvent, PipelineStage


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


def _required_time(props: dict[str, Any], name: str, *, key: str) -> datetime:
    try:
        value = parse_time(props.get(name))
    except ValueError:
        raise SkippableRecordError(f"{name} is not a timestamp: {props.get(name)!r}", record_key=key) from None
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


def parse_contact(obj: Mapping[str, Any], names: HubSpotContactProperties, stages: Sequence[str] = ()) -> ContactRecord:
    """``obj`` is one object of a CRM answer as JSON: ``{"id", "properties", ...}``."""
    props: dict[str, Any] = dict(obj.get("properties") or {})
    key = str(obj["id"])
    created = _required_time(props, "createdate", key=key)
    updated = _required_time(props, "lastmodifieddate", key=key) if props.get("lastmodifieddate") else created
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
            stage: _required_time(props, prop, key=key)
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
]


def _bool(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def parse_deal(obj: Mapping[str, Any]) -> DealRecord:
    props: dict[str, Any] = dict(obj.get("properties") or {})
    key = str(obj["id"])
    created = _required_time(props, "createdate", key=key)
    updated = _required_time(props, "hs_lastmodifieddate", key=key) if props.get("hs_lastmodifieddate") else created
    amount_raw = props.get("amount")
    try:
        amount = float(amount_raw) if amount_raw not in (None, "") else None
    except ValueError:
        raise SkippableRecordError(f"amount is not a number: {amount_raw!r}", record_key=key) from None
    is_won = _bool(props.get("hs_is_closed_won"))
    return DealRecord(
        crm_id=key,
        created_at=created,
        updated_at=updated,
        name=props.get("dealname"),
        pipeline=props.get("pipeline"),
        stage=props.get("dealstage"),
        amount=amount,
        closed_at=parse_time(props.get("closedate")) if (is_won or _bool(props.get("hs_is_closed"))) else None,
        is_won=is_won,
        is_closed=_bool(props.get("hs_is_closed")) or is_won,
    )


def parse_stage_history(obj: Mapping[str, Any], pipeline: str | None) -> list[DealStageEvent]:
    history = (obj.get("propertiesWithHistory") or {}).get("dealstage") or []
    events = []
    for entry in history:
        at = parse_time(entry.get("timestamp"))
        if at is None or not entry.get("value"):
            continue
        events.append(
            DealStageEvent(deal_id=str(obj["id"]), stage=str(entry["value"]), entered_at=at, pipeline=pipeline)
        )
    return events


def parse_pipelines(pipelines: Any) -> list[PipelineStage]:
    out = []
    for pipeline in pipelines:
        for stage in pipeline.stages or []:
            meta = stage.metadata or {}
            is_closed = str(meta.get("isClosed", "false")).lower() == "true"
            probability = meta.get("probability")
            try:
                won = is_closed and probability is not None and float(probability) >= 1.0
            except ValueError:
                won = False
            out.append(
                PipelineStage(
                    pipeline_id=str(pipeline.id),
                    pipeline_label=pipeline.label or "",
                    stage_id=str(stage.id),
                    stage_label=stage.label or "",
                    display_order=int(stage.display_order or 0),
                    is_closed=is_closed,
                    is_won=won,
                )
            )
    return out
