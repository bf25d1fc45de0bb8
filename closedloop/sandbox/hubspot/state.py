"""The portal's data, in memory and thread-safe: objects, property history, definitions, links.

Every handler reads and writes through one ``HubSpotState`` under its re-entrant lock, so a
threaded server never shows a half-applied batch.  Ids are kept as sorted integers so list
paging is a bisect, not a scan, even at 100,000 contacts.  ``version`` moves on every write;
search caches its sorted result lists under it.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from closedloop.sandbox.company import Company, SyntheticContact, SyntheticDeal, SyntheticPipeline
from closedloop.sandbox.hubspot.definitions import (
    MODIFIED_DATE_PROPERTIES,
    builtin_definitions,
    builtin_groups,
    definition,
    options,
)
from closedloop.sandbox.hubspot.values import format_instant

OBJECT_TYPE_ALIASES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
}
# HubSpot-defined association type ids (v4): deal -> contact is 3, contact -> deal is 4.
ASSOCIATION_TYPE_IDS = {("deals", "contacts"): 3, ("contacts", "deals"): 4}


def canonical_object_type(raw: str) -> str | None:
    return OBJECT_TYPE_ALIASES.get(raw.lower())


@dataclass(slots=True)
class HistoryEntry:
    value: str
    at: datetime
    source_type: str


@dataclass(slots=True)
class StoredObject:
    id: str
    created_at: datetime
    updated_at: datetime
    properties: dict[str, str | None]
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)  # oldest first
    archived: bool = False
    archived_at: datetime | None = None


class HubSpotState:
    """One portal.  Public methods lock; handlers that read several things hold ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.version = 0
        self._objects: dict[str, dict[str, StoredObject]] = {"contacts": {}, "deals": {}}
        self._sorted_ids: dict[str, list[int]] = {"contacts": [], "deals": []}
        self._definitions = builtin_definitions()
        self._groups = builtin_groups()
        self._pipelines: dict[str, list[dict[str, Any]]] = {"deals": []}
        self._links: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(dict)
        self._unique_index: dict[tuple[str, str], dict[str, str]] = {}
        self._next_id = 1
        # (deal id, contact id) -> the association's user-defined label, served by v4 reads.
        self.association_labels: dict[tuple[str, str], str] = {}
        self.gdpr_blocklist: set[str] = set()  # emails of GDPR-deleted contacts (HubSpot blocks them)

    # ---- loading -------------------------------------------------------------------------

    def load_company(self, company: Company) -> None:
        """Replace nothing, add everything: contacts, deals, stage history, links, pipelines."""
        with self.lock:
            for pipeline in company.pipelines:
                self._add_pipeline(pipeline)
            for contact in company.contacts:
                self._insert(
                    "contacts",
                    _require_digits(contact.id),
                    contact.created_at,
                    contact.updated_at,
                    _contact_properties(contact),
                    "IMPORT",
                )
            stage_closed = {
                stage.id: (stage.is_closed, stage.is_closed and stage.probability >= 1.0)
                for pipeline in company.pipelines
                for stage in pipeline.stages
            }
            for deal in company.deals:
                self._load_deal(deal, stage_closed)
            for name in sorted({k for c in company.contacts for k in c.extra}):
                if name not in self._definitions["contacts"]:
                    self._definitions["contacts"][name] = definition(
                        name, "string", "contactinformation", hubspot_defined=False
                    )
            for ids in self._sorted_ids.values():
                ids.sort()
            self._unique_index.clear()
            self.version += 1

    def _load_deal(self, deal: SyntheticDeal, stage_closed: dict[str, tuple[bool, bool]]) -> None:
        deal_id = _require_digits(deal.id)
        current = deal.stage_history[-1].stage if deal.stage_history else ""
        closed, won = stage_closed.get(current, (False, False))
        properties: dict[str, str | None] = {
            "dealname": deal.name,
            "amount": _number_text(deal.amount),
            "dealstage": current or None,
            "pipeline": deal.pipeline,
            "closedate": format_instant(deal.closed_at) if deal.closed_at else None,
            "hs_is_closed": "true" if closed else "false",
            "hs_is_closed_won": "true" if won else "false",
        }
        if deal.currency is not None:
            properties["deal_currency_code"] = deal.currency
        if deal.amount_home is not None:
            properties["amount_in_home_currency"] = _number_text(deal.amount_home)
        stored = self._insert(
            "deals", deal_id, deal.created_at, deal.updated_at, properties, "CRM_UI"
        )
        stored.history["dealstage"] = [
            HistoryEntry(change.stage, change.at, "CRM_UI") for change in deal.stage_history
        ]
        for contact_id in deal.contact_ids:
            self._link("deals", deal_id, "contacts", _require_digits(contact_id))

    def _add_pipeline(self, pipeline: SyntheticPipeline) -> None:
        stages = [
            {
                "id": stage.id,
                "label": stage.label,
                "displayOrder": stage.display_order,
                "metadata": {
                    "isClosed": "true" if stage.is_closed else "false",
                    "probability": str(float(stage.probability)),
                },
                "createdAt": "1970-01-01T00:00:00.000Z",
                "updatedAt": "1970-01-01T00:00:00.000Z",
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for stage in pipeline.stages
        ]
        pipelines = self._pipelines["deals"]
        pipelines[:] = [p for p in pipelines if p["id"] != pipeline.id]
        pipelines.append(
            {
                "id": pipeline.id,
                "label": pipeline.label,
                "displayOrder": len(pipelines),
                "stages": stages,
                "createdAt": "1970-01-01T00:00:00.000Z",
                "updatedAt": "1970-01-01T00:00:00.000Z",
                "archived": False,
            }
        )
        deal_defs = self._definitions["deals"]
        deal_defs["pipeline"]["options"] = options([p["id"] for p in pipelines])
        deal_defs["dealstage"]["options"] = options(
            [s["id"] for p in pipelines for s in p["stages"]]
        )

    def _insert(
        self,
        object_type: str,
        object_id: str,
        created_at: datetime,
        updated_at: datetime,
        properties: dict[str, str | None],
        source_type: str,
    ) -> StoredObject:
        props: dict[str, str | None] = {
            "hs_object_id": object_id,
            "createdate": format_instant(created_at),
        }
        for name in MODIFIED_DATE_PROPERTIES[object_type]:
            props[name] = format_instant(updated_at)
        props.update(properties)
        stored = StoredObject(object_id, created_at, updated_at, props)
        for name, value in props.items():
            if value is not None and name not in MODIFIED_DATE_PROPERTIES[object_type]:
                stored.history[name] = [HistoryEntry(value, created_at, source_type)]
        existed = object_id in self._objects[object_type]
        self._objects[object_type][object_id] = stored
        if not existed:
            self._sorted_ids[object_type].append(int(object_id))
        self._next_id = max(self._next_id, int(object_id) + 1)
        return stored

    # ---- objects ---------------------------------------------------------------------------

    def get(self, object_type: str, object_id: str) -> StoredObject | None:
        with self.lock:
            return self._objects[object_type].get(object_id)

    def get_properties(self, object_type: str, object_id: str) -> dict[str, str | None]:
        with self.lock:
            stored = self._objects[object_type].get(object_id)
            if stored is None:
                raise KeyError(f"no {object_type} object with id {object_id}")
            return dict(stored.properties)

    def all_objects(self, object_type: str) -> list[StoredObject]:
        """Live objects in id order (the order list paging and unsorted search use)."""
        with self.lock:
            objects = self._objects[object_type]
            return [
                objects[str(i)]
                for i in self._sorted_ids[object_type]
                if not objects[str(i)].archived
            ]

    def page(
        self, object_type: str, after: int | None, limit: int, archived: bool
    ) -> tuple[list[StoredObject], int | None]:
        """Up to ``limit`` objects with id > after; the cursor is the next id to start from."""
        with self.lock:
            ids = self._sorted_ids[object_type]
            objects = self._objects[object_type]
            position = bisect.bisect_left(ids, after) if after is not None else 0
            page: list[StoredObject] = []
            while position < len(ids) and len(page) < limit:
                stored = objects[str(ids[position])]
                if stored.archived == archived:
                    page.append(stored)
                position += 1
            while position < len(ids) and objects[str(ids[position])].archived != archived:
                position += 1
            return page, (ids[position] if position < len(ids) else None)

    def find_unique(self, object_type: str, property_name: str, value: str) -> StoredObject | None:
        """Lookup by a unique property (idProperty); the index is rebuilt lazily after writes."""
        with self.lock:
            if property_name == "hs_object_id":
                return self._objects[object_type].get(value)
            key = (object_type, property_name)
            index = self._unique_index.get(key)
            if index is None:
                index = {}
                for stored in self._objects[object_type].values():
                    found = stored.properties.get(property_name)
                    if found:
                        index.setdefault(found.lower(), stored.id)
                self._unique_index[key] = index
            object_id = index.get(value.lower())
            return self._objects[object_type].get(object_id) if object_id else None

    def write(
        self,
        object_type: str,
        object_id: str,
        properties: dict[str, str | None],
        *,
        now: datetime,
        source_type: str = "INTEGRATION",
    ) -> StoredObject:
        """Apply already-validated values; moves the modified dates and appends history."""
        with self.lock:
            stored = self._objects[object_type][object_id]
            for name, value in properties.items():
                if stored.properties.get(name) == value:
                    continue
                stored.properties[name] = value
                stored.history.setdefault(name, []).append(
                    HistoryEntry(value or "", now, source_type)
                )
            stored.updated_at = now
            for name in MODIFIED_DATE_PROPERTIES[object_type]:
                stored.properties[name] = format_instant(now)
            self._touch()
            return stored

    def create(
        self, object_type: str, properties: dict[str, str | None], *, now: datetime
    ) -> StoredObject:
        with self.lock:
            object_id = str(self._next_id)
            created = properties.get("createdate")
            stored = self._insert(object_type, object_id, now, now, {}, "INTEGRATION")
            for name, value in properties.items():
                if value is not None:
                    stored.properties[name] = value
                    stored.history[name] = [HistoryEntry(value, now, "INTEGRATION")]
            if created:
                stored.properties["createdate"] = created
            self._touch()
            return stored

    def _touch(self) -> None:
        self._unique_index.clear()
        self.version += 1

    # ---- associations ----------------------------------------------------------------------

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        forward = self._links[(from_type, to_type)].setdefault(from_id, [])
        if to_id not in forward:
            forward.append(to_id)
        backward = self._links[(to_type, from_type)].setdefault(to_id, [])
        if from_id not in backward:
            backward.append(from_id)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        with self.lock:
            self._link(from_type, from_id, to_type, to_id)
            self.version += 1

    def associated_ids(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Live objects only: an archived or deleted contact is no longer on its deals."""
        with self.lock:
            objects = self._objects[to_type]
            return [
                i
                for i in self._links.get((from_type, to_type), {}).get(from_id, [])
                if i in objects and not objects[i].archived
            ]

    # ---- deleting, archiving, merging --------------------------------------------------------

    def archive(self, object_type: str, object_id: str, *, now: datetime) -> bool:
        """DELETE /objects/{type}/{id}: to the recycle bin, listed with ``archived=true``."""
        with self.lock:
            stored = self._objects[object_type].get(object_id)
            if stored is None or stored.archived:
                return False
            stored.archived, stored.archived_at = True, now
            self._touch()
            return True

    def gdpr_delete(self, object_id: str, *, id_property: str | None = None) -> bool:
        """Permanent: the contact leaves every listing (archived too) and its email is blocked."""
        with self.lock:
            stored = (
                self.find_unique("contacts", id_property, object_id)
                if id_property
                else self._objects["contacts"].get(object_id)
            )
            if stored is None:
                if id_property == "email":
                    self.gdpr_blocklist.add(object_id.lower())
                return False
            email = stored.properties.get("email")
            if email:
                self.gdpr_blocklist.add(email.lower())
            self._remove("contacts", stored.id)
            return True

    def merge(self, object_type: str, primary_id: str, merged_id: str, *, now: datetime) -> StoredObject:
        """The merged object folds onto the primary: its links move over, its id joins the
        primary's ``hs_merged_object_ids``, and it leaves every listing."""
        with self.lock:
            objects = self._objects[object_type]
            primary, merged = objects[primary_id], objects[merged_id]
            for (from_type, to_type), links in list(self._links.items()):
                if from_type != object_type or merged_id not in links:
                    continue
                for other in list(links[merged_id]):
                    self._link(object_type, primary_id, to_type, other)
            ids = [i for i in (primary.properties.get("hs_merged_object_ids") or "").split(";") if i]
            ids += [i for i in (merged.properties.get("hs_merged_object_ids") or "").split(";") if i]
            ids.append(merged_id)
            self._remove(object_type, merged_id)
            return self.write(
                object_type,
                primary_id,
                {"hs_merged_object_ids": ";".join(dict.fromkeys(ids))},
                now=now,
                source_type="CRM_UI",
            )

    def _remove(self, object_type: str, object_id: str) -> None:
        del self._objects[object_type][object_id]
        self._sorted_ids[object_type].remove(int(object_id))
        for (from_type, to_type), links in self._links.items():
            if from_type == object_type:
                links.pop(object_id, None)
            elif to_type == object_type:
                for targets in links.values():
                    if object_id in targets:
                        targets.remove(object_id)
        self._touch()

    # ---- definitions and pipelines ---------------------------------------------------------

    def property_definitions(self, object_type: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._definitions[object_type])

    def property_definition(self, object_type: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self._definitions[object_type].get(name)

    def add_property(self, object_type: str, new: dict[str, Any]) -> None:
        with self.lock:
            self._definitions[object_type][new["name"]] = new

    def groups(self, object_type: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._groups[object_type])

    def add_group(self, object_type: str, new: dict[str, Any]) -> None:
        with self.lock:
            self._groups[object_type][new["name"]] = new

    def pipelines(self, object_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._pipelines.get(object_type, []))


def _require_digits(object_id: str) -> str:
    if not object_id.isdigit():
        raise ValueError(f"HubSpot object ids are strings of digits; got {object_id!r}")
    return str(int(object_id))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _contact_properties(contact: SyntheticContact) -> dict[str, str | None]:
    def text(value: str) -> str | None:
        return value or None

    properties: dict[str, str | None] = {
        "email": text(contact.email),
        "lifecyclestage": text(contact.lifecycle_stage),
        "ga_client_id": text(";".join(contact.ga_client_ids)),
        "hs_analytics_source": text(contact.original_source),
        "hs_analytics_source_data_1": text(contact.original_source_detail_1),
        "hs_analytics_source_data_2": text(contact.original_source_detail_2),
        "utm_source": text(contact.utm_source),
        "utm_medium": text(contact.utm_medium),
        "utm_campaign": text(contact.utm_campaign),
        "hs_google_click_id": text(contact.gclid),
    }
    properties.update({k: text(v) for k, v in contact.extra.items()})
    return properties
