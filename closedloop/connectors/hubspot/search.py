"""Incremental reads through the CRM search API, past its 10,000-results-per-query cap.

Results are sorted by the last-modified property; when a query nears the cap, a new query
starts at the last timestamp seen.  The cursor is ``{"since_ms": T, "ids_at_since": [...]}``:
the newest timestamp fully or partly read and the ids already read at exactly that instant,
so a restart neither loses nor repeats records at the window edge.  If more than a whole
window shares one timestamp (bulk imports do that), that instant is read in id order instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

from closedloop.connectors.hubspot.client import HubSpotClient
from closedloop.connectors.hubspot.parse import epoch_ms, parse_time

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
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """Yield (new objects of one page, cursor safe to commit after storing them)."""
    since_ms: int | None = (cursor or {}).get("since_ms")
    ids_at_since: set[str] = set((cursor or {}).get("ids_at_since", []))
    api = client.search_api(object_type)
    endpoint = f"POST /crm/v3/objects/{object_type}/search"
    props = sorted({*properties, modified_property, "hs_object_id"})

    def advance(objects: list[Any]) -> list[Any]:
        nonlocal since_ms, ids_at_since
        fresh = []
        for obj in objects:
            stamp = parse_time((obj.get("properties") or {}).get(modified_property)) or parse_time(obj.get("updatedAt"))
            ms = epoch_ms(stamp) if stamp else 0
            oid = str(obj["id"])
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
            yield advance(list(page.get("results") or [])), state()
            nxt = next_after(page)
            if nxt is None:
                exhausted = True
                break
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
            fresh = [o for o in results if str(o["id"]) not in ids_at_since]
            ids_at_since.update(str(o["id"]) for o in results)
            if results:
                last_id = max(last_id, *(int(o["id"]) for o in results))
            yield fresh, state()
            nxt = next_after(page)
            if nxt is None:
                return
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
        stamp = parse_time((obj.get("properties") or {}).get(modified_property)) or parse_time(obj.get("updatedAt"))
        if stamp is not None:
            return epoch_ms(stamp)
    return None


def next_after(page: dict[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None
