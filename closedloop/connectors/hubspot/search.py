"""Incremental reads through the CRM search API, past its 10,000-results-per-query cap.

Results are sorted by the last-modified property; when a query nears the cap, a new query
starts at the last timestamp seen.  The cursor is ``{"since_ms": T, "ids_at_since": [...]}``:
the newest timestamp fully or partly read and the ids already read at exactly that instant,
so a restart neither loses nor repeats records at the window edge.  If more than a whole
window shares one timestamp (bulk imports do that), that instant is read in id order instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

from closedloop.connectors.hubspot.client import HubSpotClient
from closedloop.connectors.hubspot.parse import epoch_ms, parse_time
from closedloop.errors import MalformedResponseError, StalledCursorError

SEARCH_RESULT_CAP = 10_000


def _request(filters: list[Filter], sort: str, properties: list[str], limit: int, after: str | None) -> Any:
    return PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=filters)] if filters else [],
        sorts=[{"propertyName": sort, "direction": "ASCENDING"}],
        properties=properties,
        limit=limit,
        after=after,
    )


def search_modified(
    client: HubSpotClient,
    object_type: str,
    *,
    modified_property: str,
    properties: list[str],
    cursor: dict[str, Any] | None,
    page_size: int = 200,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """Yield (new objects of one page, cursor safe to commit after storing them).  ``on_total``
    hears the first answer's ``total`` (objects modified since the cursor): a progress total."""
    since_ms: int | None = (cursor or {}).get("since_ms")
    ids_at_since: set[str] = set((cursor or {}).get("ids_at_since", []))
    api = client.search_api(object_type)
    endpoint = f"POST /crm/v3/objects/{object_type}/search"
    props = sorted({*properties, modified_property, "hs_object_id"})

    def advance(objects: list[Any]) -> list[Any]:
        nonlocal since_ms, ids_at_since
        fresh = []
        for obj in objects:
            oid, stamp = _id_and_stamp(obj, modified_property)
            if oid is None:
                fresh.append(obj)  # the parser quarantines it, with its reason; the cursor ignores it
                continue
            ms = epoch_ms(stamp) if stamp else 0
            if since_ms is not None and (ms < since_ms or (ms == since_ms and oid in ids_at_since)):
                continue
            if since_ms is None or ms > since_ms:
                since_ms, ids_at_since = ms, set()
            ids_at_since.add(oid)
            fresh.append(obj)
        return fresh

    def state() -> dict[str, Any]:
        return {"since_ms": since_ms, "ids_at_since": sorted(ids_at_since)}

    strictly_after = False  # set once an instant has been read whole in id order
    while True:
        window_start = since_ms
        filters = (
            []
            if since_ms is None
            else [
                Filter(property_name=modified_property, operator="GT" if strictly_after else "GTE", value=str(since_ms))
            ]
        )
        after: str | None = None
        exhausted = False
        while True:
            page = client.call_json(
                endpoint, api.do_search_with_http_info, _request(filters, modified_property, props, page_size, after)
            )
            tell, on_total = on_total, None  # the first answer only: later windows count a remainder
            total = page.get("total")
            if tell is not None and isinstance(total, int) and not isinstance(total, bool):
                tell(total)
            yield advance(list(page.get("results") or [])), state()
            nxt = next_after(page)
            if nxt is None:
                exhausted = True
                break
            _check_advanced(endpoint, after, nxt)
            after = nxt
            if int(after) + page_size > SEARCH_RESULT_CAP:
                break
        if exhausted:
            return
        if since_ms == window_start and since_ms is not None:
            yield from _read_instant_by_id(
                client, object_type, modified_property, props, page_size, since_ms, ids_at_since, state
            )
            strictly_after = True
        else:
            strictly_after = False


def _read_instant_by_id(
    client: HubSpotClient,
    object_type: str,
    modified_property: str,
    props: list[str],
    page_size: int,
    instant_ms: int,
    ids_at_since: set[str],
    state: Any,
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """Read every object modified at exactly ``instant_ms`` in id order, in capped windows."""
    api = client.search_api(object_type)
    endpoint = f"POST /crm/v3/objects/{object_type}/search"
    last_id = 0
    while True:
        filters = [
            Filter(property_name=modified_property, operator="EQ", value=str(instant_ms)),
            Filter(property_name="hs_object_id", operator="GT", value=str(last_id)),
        ]
        after: str | None = None
        while True:
            page = client.call_json(
                endpoint, api.do_search_with_http_info, _request(filters, "hs_object_id", props, page_size, after)
            )
            results = list(page.get("results") or [])
            ids = [_id_and_stamp(o, modified_property)[0] for o in results]
            fresh = [o for o, oid in zip(results, ids, strict=True) if oid is None or oid not in ids_at_since]
            ids_at_since.update(oid for oid in ids if oid is not None)
            numeric = [int(oid) for oid in ids if oid is not None and oid.isdigit()]
            if numeric:
                last_id = max(last_id, *numeric)
            yield fresh, state()
            nxt = next_after(page)
            if nxt is None:
                return
            _check_advanced(endpoint, after, nxt)
            after = nxt
            if int(after) + page_size > SEARCH_RESULT_CAP:
                break


def newest_modified_ms(client: HubSpotClient, object_type: str, *, modified_property: str) -> int | None:
    """The newest modification time of any object: where an incremental search may start
    after a full listing that began after this call (one search call)."""
    page = client.call_json(
        f"POST /crm/v3/objects/{object_type}/search",
        client.search_api(object_type).do_search_with_http_info,
        PublicObjectSearchRequest(
            sorts=[{"propertyName": modified_property, "direction": "DESCENDING"}],
            properties=[modified_property],
            limit=1,
        ),
    )
    for obj in page.get("results") or []:
        _oid, stamp = _id_and_stamp(obj, modified_property)
        if stamp is not None:
            return epoch_ms(stamp)
    return None


def next_after(page: dict[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None


def _check_advanced(endpoint: str, sent: str | None, received: str) -> None:
    """A cursor that comes back as sent would read the same page for ever: stop the stream."""
    if not received.isdigit():
        # Search pages by offset; anything else is not a cursor this endpoint gives.
        message = f"HubSpot {endpoint} sent a paging cursor that is not an offset"
        raise MalformedResponseError(message, endpoint=endpoint)
    if received == sent:
        raise StalledCursorError(
            f"HubSpot {endpoint} sent back the paging cursor {received!r} it was given; "
            "the stream stops here instead of reading the same page for ever",
            endpoint=endpoint,
        )


def _id_and_stamp(obj: Any, modified_property: str) -> tuple[str | None, datetime | None]:
    """The object's id and modification time, for the cursor; (None, None) for an object the
    parser will quarantine (not an object, no usable id or time), so the cursor never reads it."""
    if not isinstance(obj, dict) or isinstance(obj.get("id"), bool) or not isinstance(obj.get("id"), str | int):
        return None, None
    props = obj.get("properties")
    try:
        stamp = parse_time(props.get(modified_property) if isinstance(props, dict) else None) or parse_time(
            obj.get("updatedAt")
        )
    except (ValueError, OverflowError, OSError):
        return None, None
    return str(obj["id"]), stamp
