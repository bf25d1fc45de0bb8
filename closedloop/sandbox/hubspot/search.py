"""POST /crm/v3/objects/{type}/search: filters, sorts, offset paging and the 10,000-result cap.

A query's full result list is filtered and sorted once, then cached under the state's version,
so paging a large query costs a slice per page rather than a scan per page.  Paging to
``after`` >= 10,000 is refused with 400 as HubSpot does, even though ``total`` counts everything.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from closedloop.sandbox.hubspot.errors import validation_error
from closedloop.sandbox.hubspot.state import HubSpotState, StoredObject
from closedloop.sandbox.hubspot.values import comparable
from closedloop.sandbox.hubspot.wire import (
    BadRequest,
    object_type_of,
    read_json,
    render,
    string_list,
)
from closedloop.sandbox.server import Handler, Request, Response

MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
RESULT_CAP = 10_000
DEFAULT_LIMIT = 10
_CACHE_SIZE = 32
VALUE_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
OPERATORS = VALUE_OPERATORS | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
QUERY_PROPERTIES = {
    "contacts": ("email", "firstname", "lastname", "phone", "company"),
    "deals": ("dealname",),
}
_TOKEN_SPLIT = re.compile(r"[\s;,]+")

Predicate = Callable[[StoredObject], bool]


class Search:
    def __init__(self, state: HubSpotState) -> None:
        self.state = state
        self._cache: OrderedDict[tuple[str, int, str], list[StoredObject]] = OrderedDict()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/crm/v3/objects/{objectType}/search", self.search)]

    def search(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        body = read_json(request)
        limit = _integer(body.get("limit"), "limit", DEFAULT_LIMIT)
        if limit < 0 or limit > MAX_LIMIT:
            raise BadRequest(
                validation_error(f"limit must be between 0 and {MAX_LIMIT}; got {limit}")
            )
        after = _integer(body.get("after"), "after", 0)
        if after < 0:
            raise BadRequest(validation_error(f"after must not be negative; got {after}"))
        if after >= RESULT_CAP:
            raise BadRequest(
                validation_error(
                    f"Search results are limited to {RESULT_CAP} per query; "
                    f"after={after} pages past it. "
                    "Narrow the filters or sort by hs_object_id and restart from the last id.",
                    after=[str(after)],
                )
            )
        groups = _filter_groups(body.get("filterGroups"))
        sorts = _sorts(body.get("sorts"))
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise BadRequest(validation_error("query must be a string"))
        properties = string_list(body.get("properties"), "properties") or None
        canon = json.dumps([groups, sorts, query or ""], sort_keys=True)
        with self.state.lock:
            matches = self._matches(object_type, canon, groups, sorts, query or "")
            page = matches[after : after + limit]
            results = [render(self.state, object_type, stored, properties) for stored in page]
        response: dict[str, Any] = {"total": len(matches), "results": results}
        if limit and after + limit < len(matches):
            response["paging"] = {
                "next": {"after": str(after + limit), "link": "?after=" + str(after + limit)}
            }
        return Response(200, response)

    def _matches(
        self,
        object_type: str,
        canon: str,
        groups: list[list[dict[str, Any]]],
        sorts: list[tuple[str, bool]],
        query: str,
    ) -> list[StoredObject]:
        key = (object_type, self.state.version, canon)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        predicates = [[self._predicate(object_type, f) for f in group] for group in groups]
        candidates = self.state.all_objects(object_type)
        if query:
            needle = query.lower()
            fields = QUERY_PROPERTIES[object_type]
            candidates = [
                o
                for o in candidates
                if any(needle in (o.properties.get(f) or "").lower() for f in fields)
            ]
        if predicates:
            candidates = [
                o for o in candidates if any(all(p(o) for p in group) for group in predicates)
            ]
        for name, descending in reversed(sorts):
            candidates = self._sorted(object_type, candidates, name, descending)
        self._cache[key] = candidates
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return candidates

    def _kind(self, object_type: str, name: str) -> str:
        definition = self.state.property_definition(object_type, name)
        return str(definition.get("type", "string")) if definition else "string"

    def _sorted(
        self, object_type: str, objects: list[StoredObject], name: str, descending: bool
    ) -> list[StoredObject]:
        """Stable, so ties keep the earlier order (ids ascending); missing values go last."""
        kind = self._kind(object_type, name)
        keyed = [(comparable(kind, o.properties.get(name)), o) for o in objects]
        present = [(k, o) for k, o in keyed if k is not None]
        present.sort(key=lambda pair: pair[0], reverse=descending)
        return [o for _, o in present] + [o for k, o in keyed if k is None]

    def _predicate(self, object_type: str, spec: dict[str, Any]) -> Predicate:
        name: str = spec["propertyName"]
        operator: str = spec["operator"]
        kind = self._kind(object_type, name)

        def value_of(o: StoredObject) -> float | str | None:
            return comparable(kind, o.properties.get(name))

        if operator == "HAS_PROPERTY":
            return lambda o: bool(o.properties.get(name))
        if operator == "NOT_HAS_PROPERTY":
            return lambda o: not o.properties.get(name)
        if operator in ("IN", "NOT_IN"):
            wanted = {comparable(kind, v) for v in spec["values"]}
            if operator == "IN":
                return lambda o: value_of(o) in wanted
            return lambda o: value_of(o) not in wanted
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(spec["value"]).lower()
            contains = _token_matcher(pattern)
            if operator == "CONTAINS_TOKEN":
                return lambda o: contains(o.properties.get(name))
            return lambda o: not contains(o.properties.get(name))
        target = comparable(kind, str(spec["value"]))
        if target is None:
            raise BadRequest(
                validation_error(f"Invalid filter value {spec['value']!r} for property {name}")
            )
        if operator == "BETWEEN":
            high = comparable(kind, str(spec.get("highValue")))
            if high is None:
                raise BadRequest(validation_error(f"BETWEEN on {name} needs a valid highValue"))
            return lambda o: _between(value_of(o), target, high)
        if operator == "EQ":
            return lambda o: value_of(o) == target
        if operator == "NEQ":
            return lambda o: value_of(o) != target
        compare = {
            "LT": lambda a, b: a < b,
            "LTE": lambda a, b: a <= b,
            "GT": lambda a, b: a > b,
            "GTE": lambda a, b: a >= b,
        }[operator]
        return lambda o: _ordered(value_of(o), target, compare)


def _ordered(
    value: float | str | None, target: float | str, compare: Callable[[Any, Any], bool]
) -> bool:
    if value is None or type(value) is not type(target):
        return False
    return compare(value, target)


def _between(value: float | str | None, low: float | str, high: float | str) -> bool:
    if value is None or type(value) is not type(low) or type(value) is not type(high):
        return False
    return low <= value <= high  # type: ignore[operator]


def _token_matcher(pattern: str) -> Callable[[str | None], bool]:
    def contains(raw: str | None) -> bool:
        if not raw:
            return False
        text = raw.lower()
        tokens = [t for t in _TOKEN_SPLIT.split(text) if t] + [text]
        if "*" in pattern:
            return any(fnmatch.fnmatchcase(t, pattern) for t in tokens)
        return pattern in tokens or pattern in re.split(r"[^a-z0-9]+", text)

    return contains


def _integer(raw: object, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise BadRequest(validation_error(f"{name} must be an integer"))
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    raise BadRequest(validation_error(f"{name} must be an integer; got {raw!r}"))


def _filter_groups(raw: object) -> list[list[dict[str, Any]]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(validation_error("filterGroups must be a list"))
    if len(raw) > MAX_FILTER_GROUPS:
        raise BadRequest(
            validation_error(f"Too many filter groups: {len(raw)} (max {MAX_FILTER_GROUPS})")
        )
    groups: list[list[dict[str, Any]]] = []
    total = 0
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise BadRequest(validation_error("each filter group needs a filters list"))
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise BadRequest(
                validation_error(
                    f"Too many filters in a group: {len(filters)} (max {MAX_FILTERS_PER_GROUP})"
                )
            )
        total += len(filters)
        groups.append([_filter(f) for f in filters])
    if total > MAX_FILTERS:
        raise BadRequest(
            validation_error(f"Too many filters: {total} (max {MAX_FILTERS} in all groups)")
        )
    return groups


def _filter(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise BadRequest(validation_error("each filter needs a propertyName"))
    operator = raw.get("operator", "EQ")
    if operator not in OPERATORS:
        raise BadRequest(validation_error(f"Unknown filter operator {operator!r}"))
    spec: dict[str, Any] = {"propertyName": raw["propertyName"], "operator": operator}
    if operator in VALUE_OPERATORS or operator == "BETWEEN":
        if raw.get("value") is None:
            raise BadRequest(
                validation_error(f"Operator {operator} on {raw['propertyName']} needs a value")
            )
        spec["value"] = str(raw["value"])
    if operator == "BETWEEN":
        spec["highValue"] = raw.get("highValue")
    if operator in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise BadRequest(
                validation_error(f"Operator {operator} on {raw['propertyName']} needs values")
            )
        spec["values"] = [str(v) for v in values]
    return spec


def _sorts(raw: object) -> list[tuple[str, bool]]:
    """Sorts as objects, JSON strings, or ``"name"`` / ``"-name"``; True means descending."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(validation_error("sorts must be a list"))
    out: list[tuple[str, bool]] = []
    for item in raw:
        if isinstance(item, str) and item.strip().startswith("{"):
            try:
                item = json.loads(item)
            except ValueError:
                raise BadRequest(validation_error(f"Invalid sort {item!r}")) from None
        if isinstance(item, dict):
            name = item.get("propertyName")
            direction = item.get("direction", "ASCENDING")
            if not isinstance(name, str) or direction not in ("ASCENDING", "DESCENDING"):
                raise BadRequest(validation_error(f"Invalid sort {item!r}"))
            out.append((name, direction == "DESCENDING"))
        elif isinstance(item, str) and item.strip("-"):
            out.append((item.lstrip("-"), item.startswith("-")))
        else:
            raise BadRequest(validation_error(f"Invalid sort {item!r}"))
    return out
