"""Write closedloop's properties back to HubSpot, 100 records per batch update.

A 207 answer names the failed ids in ``errors[].context.ids``; those come back as per-record
failures and the rest as written.  A whole batch refused with a 4xx (say a property was deleted
by an admin) fails every record of that batch with the service's reason, never the run; so does
an answer that is still not JSON after the retries (those records are retried on a later run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, BatchReadInputSimplePublicObjectId
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from closedloop.connectors.base import ObjectType, PropertySpec, PropertyUpdate, RecordFailure, WriteResult
from closedloop.connectors.hubspot.client import HubSpotClient
from closedloop.errors import AuthError, FatalAPIError, MalformedResponseError

BATCH_LIMIT = 100


class HubSpotWriter:
    def __init__(self, client: HubSpotClient, *, batch_size: int = BATCH_LIMIT) -> None:
        self.client = client
        self.batch_size = min(batch_size, BATCH_LIMIT)

    def ensure_properties(self, specs: Sequence[PropertySpec], *, group_name: str, group_label: str) -> list[str]:
        return self.check_properties(specs, group_name=group_name, group_label=group_label, create=True)[1]

    def check_properties(
        self, specs: Sequence[PropertySpec], *, group_name: str, group_label: str, create: bool
    ) -> tuple[list[str], list[str]]:
        """(missing, created) as ``object.name``; with ``create`` false nothing is written."""
        missing: list[str] = []
        created: list[str] = []
        for object_type in sorted({s.object_type for s in specs}):
            groups = self.client.call_data(
                f"GET /crm/v3/properties/{object_type}/groups",
                self.client.property_groups.get_all_with_http_info,
                object_type,
            )
            if create and group_name not in {g.name for g in groups.results or []}:
                self.client.call_data(
                    f"POST /crm/v3/properties/{object_type}/groups",
                    self.client.property_groups.create_with_http_info,
                    object_type,
                    PropertyGroupCreate(name=group_name, label=group_label),
                )
            existing = self.client.call_data(
                f"GET /crm/v3/properties/{object_type}",
                self.client.properties.get_all_with_http_info,
                object_type,
            )
            have = {p.name for p in existing.results or []}
            for spec in specs:
                if spec.object_type != object_type or spec.name in have:
                    continue
                if not create:
                    missing.append(f"{object_type}.{spec.name}")
                    continue
                self.client.call_data(
                    f"POST /crm/v3/properties/{object_type}",
                    self.client.properties.create_with_http_info,
                    object_type,
                    PropertyCreate(
                        name=spec.name,
                        label=spec.label,
                        type=spec.type,
                        field_type=spec.field_type,
                        group_name=group_name,
                        description=spec.description,
                    ),
                )
                created.append(f"{object_type}.{spec.name}")
        return missing, created

    def read_properties(
        self, object_type: ObjectType, object_ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, str | None]]:
        out: dict[str, dict[str, str | None]] = {}
        endpoint = f"POST /crm/v3/objects/{object_type}/batch/read"
        for start in range(0, len(object_ids), BATCH_LIMIT):
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in object_ids[start : start + BATCH_LIMIT]], properties=list(properties)
            )
            data = self.client.call_data(endpoint, self.client.batch_api(object_type).read_with_http_info, request)
            for obj in data.results or []:
                out[str(obj.id)] = {p: (obj.properties or {}).get(p) for p in properties}
        return out

    def write(self, updates: Sequence[PropertyUpdate]) -> WriteResult:
        result = WriteResult()
        by_type: dict[str, list[PropertyUpdate]] = {}
        for update in updates:
            by_type.setdefault(update.object_type, []).append(update)
        for object_type, items in by_type.items():
            for start in range(0, len(items), self.batch_size):
                result.extend(self._write_batch(object_type, items[start : start + self.batch_size]))
        return result

    def _write_batch(self, object_type: str, items: list[PropertyUpdate]) -> WriteResult:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": u.object_id, "properties": u.properties} for u in items]
        )
        endpoint = f"POST /crm/v3/objects/{object_type}/batch/update"
        try:
            # Read as plain JSON: the SDK would parse 100 objects' timestamps we never look at.
            data, status = self.client.call_json_status(
                endpoint, self.client.batch_api(object_type).update_with_http_info, body
            )
        except AuthError:
            raise  # the whole run lacks credentials: not a fault of these records
        except FatalAPIError as exc:
            return WriteResult(
                failed=[RecordFailure(u.object_type, u.object_id, str(exc), retriable=False) for u in items]
            )
        except MalformedResponseError as exc:
            # Still garbled after the retries (an HTML page from a proxy, say): whether the update
            # was applied is unknown, so the batch is failed and sent again on a later run.
            return WriteResult(failed=[RecordFailure(u.object_type, u.object_id, str(exc)) for u in items])
        result = WriteResult()
        if status != 207:
            result.written.extend(items)
            return result
        # Trust the results list for success; errors only explain the rest.
        succeeded = {str(r.get("id")) for r in data.get("results") or []}
        reasons = _failed_ids(data)
        for update in items:
            if update.object_id in succeeded and update.object_id not in reasons:
                result.written.append(update)
            else:
                reason = reasons.get(update.object_id, "not confirmed in the 207 results")
                result.failed.append(RecordFailure(update.object_type, update.object_id, reason))
        return result


def _failed_ids(data: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for error in data.get("errors") or []:
        reason = f"{error.get('category') or 'ERROR'}: {error.get('message') or ''}".strip()
        for oid in (error.get("context") or {}).get("ids", []) or []:
            out[str(oid)] = reason[:500]
    return out
