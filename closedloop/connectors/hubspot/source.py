"""HubSpot as a source: pipelines, contacts, and deals with stage history and contact links."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId

from closedloop.config.models import HubSpotConfig
from closedloop.connectors.hubspot.client import HubSpotClient
from closedloop.connectors.hubspot.parse import (
    DEAL_PROPERTIES,
    contact_properties_to_fetch,
    parse_association,
    parse_contact,
    parse_deal,
    parse_pipeline,
    parse_stage_history,
    parse_time,
)
from closedloop.connectors.hubspot.search import newest_modified_ms, next_after, search_modified
from closedloop.connectors.hubspot.shape import NO_ID
from closedloop.errors import SkippableRecordError, StalledCursorError
from closedloop.records import Batch, ContactRecord, DealRecord, DeletedRecord, LiveIdSet, QuarantinedRecord

_R = TypeVar("_R", ContactRecord, DealRecord)
HISTORY_BATCH = 50  # reads with propertiesWithHistory take (or list) at most 50 objects
ASSOCIATION_BATCH = 1000
LISTING_AFTER = "listing_after"  # in the deals cursor while the first full listing is under way
CLOCK_MARGIN_MS = 5 * 60 * 1000
DELETIONS_STREAM = "hubspot.deletions"
# Pulled side by side, each from its own cursor.
STREAMS = ("hubspot.pipelines", "hubspot.contacts", "hubspot.deals", DELETIONS_STREAM)
LISTING_PAGE = 100  # the list endpoint's largest page without history


class HubSpotSource:
    name = "hubspot"

    def __init__(
        self,
        client: HubSpotClient,
        config: HubSpotConfig,
        *,
        lifecycle_stages: Sequence[str] = (),
        reconcile_every: timedelta | None = None,
        writeback_properties: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``reconcile_every``: how often the deletions stream lists every live contact id, the
        only way to see GDPR (permanent) deletes; None never does.  ``writeback_properties``
        (object type -> closedloop's own property names) are asked for alongside the others, at
        no extra call, so the write-back knows what the CRM already holds (``crm_values``)."""
        self.reconcile_every = reconcile_every
        self.writeback_properties = {k: list(v) for k, v in (writeback_properties or {}).items()}
        self.client = client
        self.config = config
        self.lifecycle_stages = tuple(lifecycle_stages)
        self.warn = client.caller.log.warn

    def streams(self) -> Sequence[str]:
        return STREAMS

    def pull(self, stream: str, cursor: dict[str, Any] | None, *, now: datetime) -> Iterator[Batch]:
        if stream == "hubspot.pipelines":
            yield self._pull_pipelines()
        elif stream == "hubspot.contacts":
            yield from self.pull_contacts(cursor)
        elif stream == "hubspot.deals":
            yield from self.pull_deals(cursor)
        elif stream == DELETIONS_STREAM:
            batch = self.pull_deletions(cursor)
            yield self.reconcile_contacts(batch, now=now)
        else:
            raise ValueError(f"unknown stream {stream!r}")

    def _pull_pipelines(self) -> Batch:
        data = self.client.call_json(
            "GET /crm/v3/pipelines/deals", self.client.pipelines.get_all_with_http_info, "deals"
        )
        results = data.get("results")
        if not isinstance(results, list) or not results:
            # Every portal has a pipeline: none at all leaves every deal's stage unknown.
            self.warn("pipelines_empty", f"GET /crm/v3/pipelines/deals answered results={results!r:.40}")
            results = []
        records: list[Any] = []
        quarantined: list[QuarantinedRecord] = []
        for obj in results:
            try:
                records.extend(parse_pipeline(obj))
            except SkippableRecordError as exc:
                quarantined.append(_quarantine("hubspot.pipelines", exc, obj))
        return Batch("hubspot.pipelines", records, {}, quarantined)

    def pull_contacts(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        names = self.config.contact_properties
        total, read = [0], 0
        for objects, next_cursor in search_modified(
            self.client,
            "contacts",
            modified_property="lastmodifieddate",
            properties=[
                *contact_properties_to_fetch(names, self.lifecycle_stages),
                *self.writeback_properties.get("contacts", ()),
            ],
            cursor=cursor,
            page_size=self.config.search_page_size,
            on_total=lambda n: total.__setitem__(0, n),
        ):
            read += len(objects)
            records: list[Any] = []
            quarantined: list[QuarantinedRecord] = []
            for obj in objects:
                try:
                    contact = parse_contact(obj, names, self.lifecycle_stages, warn=self.warn)
                    records.append(self._with_crm_values(contact, obj, "contacts"))
                except SkippableRecordError as exc:
                    quarantined.append(_quarantine("hubspot.contacts", exc, obj))
            yield Batch("hubspot.contacts", records, next_cursor, quarantined,
                        position=(read, max(read, total[0])) if total[0] else None)

    def pull_deals(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        """The first pull lists every deal; later pulls search for the ones modified since."""
        if cursor is None or LISTING_AFTER in cursor:
            yield from self.list_all_deals(cursor)
        else:
            yield from self.search_modified_deals(cursor)

    def list_all_deals(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        """Every deal with its stage history in one call per 50 (list with ``propertiesWithHistory``).

        A first pull by search would cost a search call per 200 deals, on search's own
        5-calls-a-second cap, plus a batch read per 50 for the history: listing is both fewer
        calls and off that cap.  The cursor keeps the list's ``after`` so a restart resumes
        the listing, and the time of the newest modification seen *before* the listing began
        (minus a margin for HubSpot's clocks), so the next pull's search picks up every deal
        changed while the listing ran.
        """
        state = dict(cursor or {})
        if "since_ms" not in state:
            newest = newest_modified_ms(self.client, "deals", modified_property="hs_lastmodifieddate")
            state["since_ms"] = None if newest is None else newest - CLOCK_MARGIN_MS
            state["ids_at_since"] = []
        gathered: list[Any] = []
        for page, after in self._listing(
            "GET /crm/v3/objects/deals",
            self.client.deals_basic.get_page_with_http_info,
            after=state.get(LISTING_AFTER) or None,
            limit=HISTORY_BATCH,
            properties=[*DEAL_PROPERTIES, *self.writeback_properties.get("deals", ())],
            properties_with_history=["dealstage"],
            archived="false",  # HubSpot's spelling: the SDK would send Python's "False"
        ):
            gathered.extend(page.get("results") or [])
            if after is None or len(gathered) + HISTORY_BATCH > ASSOCIATION_BATCH:
                next_cursor = {k: v for k, v in state.items() if k != LISTING_AFTER}
                if after is not None:
                    next_cursor[LISTING_AFTER] = after
                yield self._deal_batch(gathered, next_cursor, history_included=True)
                gathered = []

    def search_modified_deals(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        """Deals with their stage history and contacts, one batch per ~1,000 deals.

        Search pages hold 200 deals but an association read takes 1,000, so pages are gathered
        until an association call is full: five times fewer calls, and a crash replays at most
        those five pages.
        """
        gathered: list[Any] = []
        unsent_cursor: dict[str, Any] | None = None
        for objects, next_cursor in search_modified(
            self.client,
            "deals",
            modified_property="hs_lastmodifieddate",
            properties=[*DEAL_PROPERTIES, *self.writeback_properties.get("deals", ())],
            cursor=cursor,
            page_size=self.config.search_page_size,
        ):
            gathered.extend(objects)
            unsent_cursor = next_cursor
            if len(gathered) + self.config.search_page_size > ASSOCIATION_BATCH:
                yield self._deal_batch(gathered, next_cursor)
                gathered, unsent_cursor = [], None
        if unsent_cursor is not None:
            yield self._deal_batch(gathered, unsent_cursor)

    def _deal_batch(self, objects: list[Any], cursor: dict[str, Any], *, history_included: bool = False) -> Batch:
        records: list[Any] = []
        quarantined: list[QuarantinedRecord] = []
        pipelines: dict[str, str | None] = {}
        for obj in objects:
            try:
                deal = self._with_crm_values(parse_deal(obj, warn=self.warn), obj, "deals")
                history = parse_stage_history(obj, deal.pipeline, warn=self.warn) if history_included else []
            except SkippableRecordError as exc:
                quarantined.append(_quarantine("hubspot.deals", exc, obj))
                continue
            records.append(deal)
            records.extend(history)
            pipelines[deal.crm_id] = deal.pipeline
        ids = list(pipelines)
        if not history_included:
            records.extend(self.pull_deal_stage_history(ids, pipelines, quarantined))
        records.extend(self.pull_deal_contact_links(ids, quarantined))
        return Batch("hubspot.deals", records, cursor, quarantined)

    def _with_crm_values(self, record: _R, obj: Any, object_type: str) -> _R:
        """The record with the closedloop values the CRM holds now under ``properties["crm_values"]``
        (a defined property without a value reads as ""; one the portal lacks is left out)."""
        wanted = self.writeback_properties.get(object_type)
        props = obj.get("properties") if isinstance(obj, dict) else None
        if not wanted or not isinstance(props, dict):
            return record
        held = {name: "" if props[name] is None else str(props[name]) for name in wanted if name in props}
        return replace(record, properties={**record.properties, "crm_values": held})

    def pull_deletions(self, cursor: dict[str, Any] | None) -> Batch:
        """Contacts and deals archived (deleted, in the recycle bin) since the cursor: the store purges them.

        HubSpot's list endpoint with ``archived=true`` is the only place deletions show; it has
        no time filter, so the whole bin is paged (ids only, 100 a call) and objects archived
        before the cursor, less a margin for HubSpot's clocks, are skipped.  A first run
        yields the whole bin: purging an id the store never had removes nothing.  A merged-away
        contact is not here (it folds onto its survivor through ``hs_merged_object_ids``).
        """
        state = dict(cursor or {})
        records: list[Any] = []
        for object_type, kind, api in (
            ("contacts", "contact", self.client.contacts_basic),
            ("deals", "deal", self.client.deals_basic),
        ):
            since = parse_time(state.get(object_type))
            floor = since - timedelta(milliseconds=CLOCK_MARGIN_MS) if since else None
            newest = since
            for page, _ in self._listing(
                f"GET /crm/v3/objects/{object_type}?archived=true",
                api.get_page_with_http_info,
                limit=LISTING_PAGE,
                properties=["hs_object_id"],
                archived="true",
            ):
                for obj in page.get("results") or []:
                    if not isinstance(obj, dict) or not obj.get("id"):
                        continue
                    try:
                        at = parse_time(obj.get("archivedAt"))
                    except ValueError:
                        at = None
                    if floor is None or at is None or at >= floor:
                        records.append(DeletedRecord(kind, str(obj["id"]), deleted_at=at))
                    if at is not None and (newest is None or at > newest):
                        newest = at
            state[object_type] = newest.isoformat() if newest else None
        return Batch(DELETIONS_STREAM, records, state)

    def reconcile_contacts(self, batch: Batch, *, now: datetime) -> Batch:
        """Every ``reconcile_every``, the ids of every live contact (100 a call), so the store can
        purge the ones deleted for good.  The first run only starts the clock: it has nothing to
        reconcile yet.  A listing that fails leaves the cursor, so nothing is purged on half a list."""
        if self.reconcile_every is None:
            return batch
        last = parse_time(batch.cursor.get("reconciled_at"))
        if last is None:
            return replace(batch, cursor={**batch.cursor, "reconciled_at": now.isoformat()})
        if now - last < self.reconcile_every:
            return batch
        ids: set[str] = set()
        for page, _ in self._listing(
            "GET /crm/v3/objects/contacts",
            self.client.contacts_basic.get_page_with_http_info,
            limit=LISTING_PAGE,
            properties=["hs_object_id"],
            archived="false",
        ):
            ids.update(str(o["id"]) for o in page.get("results") or [] if isinstance(o, dict) and o.get("id"))
        listed = LiveIdSet("contact", frozenset(ids), listed_at=now)
        cursor = {**batch.cursor, "reconciled_at": now.isoformat()}
        return replace(batch, records=[*batch.records, listed], cursor=cursor)

    def _listing(
        self, endpoint: str, fetch: Callable[..., Any], *, after: str | None = None, **params: Any
    ) -> Iterator[tuple[dict[str, Any], str | None]]:
        """The pages of a list endpoint from ``after``, each with the ``after`` of the next page
        (None with the last), every cursor through ``listing_next``'s stalled-cursor guard."""
        while True:
            page = self.client.call_json(endpoint, fetch, after=after, **params)
            after = listing_next(page, sent=after, endpoint=endpoint)
            yield page, after
            if after is None:
                return

    def pull_deal_stage_history(
        self, deal_ids: list[str], pipelines: dict[str, str | None], quarantined: list[QuarantinedRecord]
    ) -> list[Any]:
        events: list[Any] = []
        for start in range(0, len(deal_ids), HISTORY_BATCH):
            chunk = deal_ids[start : start + HISTORY_BATCH]
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in chunk],
                properties=["dealstage"],
                properties_with_history=["dealstage"],
            )
            data = self.client.call_json(
                "POST /crm/v3/objects/deals/batch/read",
                self.client.deals_batch.read_with_http_info,
                request,
            )
            for obj in data.get("results") or []:
                try:
                    key = str(obj.get("id")) if isinstance(obj, dict) else NO_ID
                    events.extend(parse_stage_history(obj, pipelines.get(key), warn=self.warn))
                except SkippableRecordError as exc:
                    quarantined.append(_quarantine("hubspot.deal_stage_history", exc, obj))
        return events

    def pull_deal_contact_links(self, deal_ids: list[str], quarantined: list[QuarantinedRecord]) -> list[Any]:
        links: list[Any] = []
        for start in range(0, len(deal_ids), ASSOCIATION_BATCH):
            chunk = deal_ids[start : start + ASSOCIATION_BATCH]
            request = BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in chunk])
            data = self.client.call_json(
                "POST /crm/v4/associations/deals/contacts/batch/read",
                self.client.associations.get_page_with_http_info,
                "deals",
                "contacts",
                request,
            )
            label = self.config.primary_contact_label
            for result in data.get("results") or []:
                try:
                    parsed = parse_association(result)
                    if label:  # the contacts whose association carries the configured label
                        marked = {
                            str(to.get("toObjectId"))
                            for to in result.get("to") or []
                            if any(t.get("label") == label for t in to.get("associationTypes") or [])
                        }
                        parsed = [replace(link, is_primary=link.contact_id in marked) for link in parsed]
                    links.extend(parsed)
                except SkippableRecordError as exc:
                    quarantined.append(_quarantine("hubspot.deal_contacts", exc, result))
        # Deals with no contact at all still need their old links cleared by the store.
        return links


def listing_next(page: dict[str, Any], *, sent: str | None, endpoint: str) -> str | None:
    """The next ``after`` of a list endpoint's page, None at the end.  The one guard of every
    listing (live deals, archived contacts and deals, live contact ids): a cursor sent back as it
    was given would read the same page for ever (until the daily limit), so the stream stops."""
    after = next_after(page)
    if after is not None and after == sent:
        raise StalledCursorError(
            f"HubSpot {endpoint} sent back the paging cursor {after!r} it was given; "
            "the listing stops here instead of reading the same page for ever",
            endpoint=endpoint,
        )
    return after


def _quarantine(stream: str, exc: SkippableRecordError, obj: Any) -> QuarantinedRecord:
    return QuarantinedRecord(
        stream=stream,
        record_key=exc.record_key,
        reason=str(exc),
        payload=_payload(obj),
    )


def _payload(obj: Any) -> dict[str, Any]:
    """What a quarantined object was, whatever its shape (it may have no id, or not be an object)."""
    if not isinstance(obj, dict):
        return {"type": type(obj).__name__}
    props = obj.get("properties")
    return {"id": str(obj.get("id")), "properties": dict(props) if isinstance(props, dict) else {}}
