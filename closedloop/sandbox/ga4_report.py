"""The report engine behind the GA4 emulator: validate a RunReportRequest, GROUP BY, order.

Pure and vendor-free: a JSON request and column tables in, sorted aggregate rows out.  Facts are
kept as parallel columns sorted by local date, so a date range is a slice and a report is one
pass over it; the emulator caches the sorted result so paging does not redo the work.

Requests arrive in Google's JSON mapping of the proto: camelCase, int64 as strings, and enums
either as names or, when the client asks for ``$alt=json;enum-encoding=int`` (the Python SDK
does), as numbers; both are accepted here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

MAX_LIMIT = 250_000
DEFAULT_LIMIT = 10_000
MAX_DATE_RANGES = 4
SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"

# Dimensions every session fact has; the client-id custom dimension is added per property.
SESSION_DIMENSIONS = (
    "date", "dateHour", "dateHourMinute", "sessionSource", "sessionMedium", "sessionSourceMedium",
    "sessionCampaignName", "sessionDefaultChannelGroup", "sessionGoogleAdsCampaignName",
    "landingPage", "landingPagePlusQueryString",
)
# Cost is imported per day and campaign: only these dimensions can split it.
COST_DIMENSIONS = frozenset({
    "date", "sessionSource", "sessionMedium", "sessionSourceMedium", "sessionCampaignName",
    "sessionDefaultChannelGroup", "sessionGoogleAdsCampaignName", "dateRange",
})
METRIC_TYPES = {
    "sessions": "TYPE_INTEGER",
    "engagedSessions": "TYPE_INTEGER",
    "keyEvents": "TYPE_INTEGER",
    "advertiserAdCost": "TYPE_CURRENCY",
}
COST_METRICS = frozenset({"advertiserAdCost"})
METRIC_TYPE_NUMBERS = {"TYPE_INTEGER": 1, "TYPE_FLOAT": 2, "TYPE_CURRENCY": 9}
_MATCH_TYPES = ("MATCH_TYPE_UNSPECIFIED", "EXACT", "BEGINS_WITH", "ENDS_WITH", "CONTAINS",
                "FULL_REGEXP", "PARTIAL_REGEXP")
_ORDER_TYPES = ("ORDER_TYPE_UNSPECIFIED", "ALPHANUMERIC", "CASE_INSENSITIVE_ALPHANUMERIC",
                "NUMERIC")
_REQUEST_FIELDS = frozenset({
    "property", "dimensions", "metrics", "dateRanges", "dimensionFilter", "metricFilter",
    "offset", "limit", "metricAggregations", "orderBys", "currencyCode", "cohortSpec",
    "keepEmptyRows", "returnPropertyQuota", "comparisons",
})
_NOT_EMULATED = ("metricFilter", "metricAggregations", "cohortSpec", "comparisons")
_PLAIN_ORDER = ("ORDER_TYPE_UNSPECIFIED", "ALPHANUMERIC")
_RELATIVE_DAYS = re.compile(r"^(\d+)daysAgo$")


class ReportError(Exception):
    """A request GA4 would refuse; ``status`` is the google.rpc code name."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid(message: str) -> ReportError:
    return ReportError(400, "INVALID_ARGUMENT", message)


@dataclass(frozen=True, slots=True)
class NamedRange:
    name: str
    start: str  # YYYYMMDD, comparable with the ``date`` column
    end: str


@dataclass(frozen=True, slots=True)
class ReportQuery:
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    ranges: tuple[NamedRange, ...]
    dimension_filter: dict[str, Any] | None
    order_bys: tuple[dict[str, Any], ...]
    keep_empty_rows: bool
    limit: int
    offset: int
    return_quota: bool
    currency_code: str

    def cache_key(self) -> tuple[Any, ...]:
        """Everything that shapes the full result; paging and quota reporting do not."""
        return (self.dimensions, self.metrics, self.ranges, repr(self.dimension_filter),
                repr(self.order_bys), self.keep_empty_rows)


class FactTable:
    """Parallel columns of facts sorted by the ``date`` column (YYYYMMDD, property time zone)."""

    def __init__(self, columns: dict[str, list[str]], metrics: dict[str, list[float]]) -> None:
        self.columns = columns
        self.metrics = metrics
        self.dates = columns["date"]

    def __len__(self) -> int:
        return len(self.dates)

    def bounds(self, first: str, last: str) -> tuple[int, int]:
        import bisect

        return bisect.bisect_left(self.dates, first), bisect.bisect_right(self.dates, last)


Row = tuple[tuple[str, ...], tuple[float, ...]]


# ---- parsing --------------------------------------------------------------------------------


def parse_request(body: Any, *, today: date, dimension_names: frozenset[str]) -> ReportQuery:
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in _REQUEST_FIELDS:
            raise invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    for name in _NOT_EMULATED:
        if body.get(name):
            raise invalid(f"{name} is valid in GA4 but not emulated by the closedloop sandbox.")
    dimensions = tuple(_names(body.get("dimensions"), "dimensions"))
    metrics = tuple(_names(body.get("metrics"), "metrics"))
    if not metrics:
        raise invalid("A report must request at least one metric.")
    allowed = dimension_names | {"dateRange"}
    for name in dimensions:
        if name not in allowed:
            raise invalid(f"Field {name} is not a valid dimension. For a list of valid dimensions "
                          f"and metrics, see {SCHEMA_URL}")
    for name in metrics:
        if name not in METRIC_TYPES:
            raise invalid(f"Field {name} is not a valid metric. For a list of valid dimensions "
                          f"and metrics, see {SCHEMA_URL}")
    for names, kind in ((dimensions, "dimension"), (metrics, "metric")):
        if len(set(names)) != len(names):
            raise invalid(f"Duplicate {kind} names are not allowed in a request.")
    if COST_METRICS & set(metrics):
        for name in dimensions:
            if name not in COST_DIMENSIONS:
                raise invalid(f"Please remove {name} to make the request compatible. The "
                              "request's dimensions & metrics are incompatible. To learn more, "
                              "see https://ga-dev-tools.google/ga4/dimensions-metrics-explorer/")
    ranges = _date_ranges(body.get("dateRanges"), today)
    if len(ranges) > 1 and "dateRange" not in dimensions:
        dimensions = (*dimensions, "dateRange")  # GA4 labels rows by range when there are several
    dimension_filter = body.get("dimensionFilter") or None
    if dimension_filter is not None:
        compile_filter(dimension_filter, {n: [] for n in dimension_names})  # validate early
    order_bys = tuple(_order_bys(body.get("orderBys"), dimensions, metrics))
    limit = _int64(body.get("limit", "0"), "limit")
    offset = _int64(body.get("offset", "0"), "offset")
    if limit < 0:
        raise invalid("limit must be positive.")
    if offset < 0:
        raise invalid("offset must be non-negative.")
    return ReportQuery(
        dimensions=dimensions, metrics=metrics, ranges=tuple(ranges),
        dimension_filter=dimension_filter, order_bys=order_bys,
        keep_empty_rows=bool(body.get("keepEmptyRows", False)),
        # limit 0 is the proto default (unset); larger than the cap is served up to the cap.
        limit=min(limit or DEFAULT_LIMIT, MAX_LIMIT), offset=offset,
        return_quota=bool(body.get("returnPropertyQuota", False)),
        currency_code=str(body.get("currencyCode") or ""),
    )


def _names(items: Any, field: str) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid(f"Invalid JSON payload received. {field} must be a list of objects.")
    names = []
    for item in items:
        if set(item) - {"name"}:
            raise invalid(f"{field}: only 'name' is emulated (no expressions).")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"{field}: every entry needs a name.")
        names.append(name)
    return names


def _int64(value: Any, field: str) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value at '{field}' (TYPE_INT64), \"{value}\"") from None


def resolve_date(text: Any, today: date, field: str) -> date:
    """GA4 date syntax: YYYY-MM-DD, ``today``, ``yesterday`` or ``NdaysAgo`` (property zone)."""
    if not isinstance(text, str) or not text:
        raise invalid(f"{field} is required in every dateRange.")
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    relative = _RELATIVE_DAYS.match(text)
    if relative:
        return today - timedelta(days=int(relative.group(1)))
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(f"Invalid {field} \"{text}\". Use YYYY-MM-DD, NdaysAgo, yesterday, "
                      "or today.") from None


def _date_ranges(items: Any, today: date) -> list[NamedRange]:
    if not items:
        raise invalid("A report must specify at least one dateRange.")
    if not isinstance(items, list) or len(items) > MAX_DATE_RANGES:
        raise invalid(f"A report can have at most {MAX_DATE_RANGES} dateRanges.")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - {"startDate", "endDate", "name"}:
            raise invalid("Invalid dateRange: expected startDate, endDate and an optional name.")
        start = resolve_date(item.get("startDate"), today, "startDate")
        end = resolve_date(item.get("endDate"), today, "endDate")
        if start > end:
            raise invalid(f"Invalid dateRange: startDate {start} is after endDate {end}.")
        name = item.get("name") or f"date_range_{index}"
        if item.get("name") and str(name).startswith(("date_range_", "RESERVED_")):
            raise invalid(f"Invalid dateRange name {name!r}.")
        out.append(NamedRange(str(name), start.strftime("%Y%m%d"), end.strftime("%Y%m%d")))
    return out


def _enum(value: Any, names: Sequence[str], field: str) -> str:
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if value in names:
        return str(value)
    raise invalid(f"Invalid value at '{field}', \"{value}\"")


def _order_bys(
    items: Any, dimensions: tuple[str, ...], metrics: tuple[str, ...],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items or []:
        desc = bool(item.get("desc", False))
        if item.get("pivot"):
            raise invalid("Pivot order bys are only valid in a pivot report.")
        if item.get("dimension"):
            name = item["dimension"].get("dimensionName")
            if name not in dimensions:
                raise invalid(f"Field {name} in orderBys must also be in dimensions.")
            kind = _enum(item["dimension"].get("orderType"), _ORDER_TYPES, "orderType")
            out.append({"dimension": dimensions.index(name), "type": kind, "desc": desc})
        elif item.get("metric"):
            name = item["metric"].get("metricName")
            if name not in metrics:
                raise invalid(f"Field {name} in orderBys must also be in metrics.")
            out.append({"metric": metrics.index(name), "desc": desc})
        else:
            raise invalid("Every orderBy needs a dimension or a metric.")
    return out


# ---- filtering ------------------------------------------------------------------------------

Predicate = Callable[[int], bool]


def compile_filter(expression: Any, columns: dict[str, list[str]]) -> Predicate:
    """A dimension filter as a function of a fact's row index."""
    if not isinstance(expression, dict) or len(expression) != 1:
        raise invalid("A FilterExpression needs exactly one of andGroup, orGroup, "
                      "notExpression, filter.")
    kind, inner = next(iter(expression.items()))
    if kind in ("andGroup", "orGroup"):
        parts = [compile_filter(e, columns) for e in (inner or {}).get("expressions", [])]
        if kind == "andGroup":
            return lambda i: all(p(i) for p in parts)
        return lambda i: any(p(i) for p in parts)
    if kind == "notExpression":
        negated = compile_filter(inner, columns)
        return lambda i: not negated(i)
    if kind == "filter":
        return _leaf(inner, columns)
    raise invalid(f'Invalid JSON payload received. Unknown name "{kind}" at \'dimensionFilter\'.')


def _leaf(spec: Any, columns: dict[str, list[str]]) -> Predicate:
    name = spec.get("fieldName") if isinstance(spec, dict) else None
    if name in METRIC_TYPES:
        raise invalid(f"Metric {name} cannot be used in dimensionFilter; use metricFilter.")
    if name not in columns:
        raise invalid(f"Field {name} is not a valid dimension. For a list of valid dimensions "
                      f"and metrics, see {SCHEMA_URL}")
    column = columns[name]
    kinds = set(spec) - {"fieldName"}
    if kinds == {"stringFilter"}:
        test = _string_test(spec["stringFilter"])
    elif kinds == {"inListFilter"}:
        values = spec["inListFilter"].get("values") or []
        if spec["inListFilter"].get("caseSensitive"):
            allowed = frozenset(values)
            test = allowed.__contains__
        else:
            folded = frozenset(v.lower() for v in values)
            def test(v: str) -> bool:
                return v.lower() in folded
    elif kinds == {"emptyFilter"}:
        def test(v: str) -> bool:
            return v in ("", "(not set)")
    else:
        raise invalid(f"Filter on {name}: the sandbox emulates stringFilter, inListFilter and "
                      "emptyFilter for dimensions.")
    return lambda i: test(column[i])


def _string_test(spec: dict[str, Any]) -> Callable[[str], bool]:
    match = _enum(spec.get("matchType"), _MATCH_TYPES, "matchType")
    value = str(spec.get("value", ""))
    sensitive = bool(spec.get("caseSensitive", False))
    if match in ("FULL_REGEXP", "PARTIAL_REGEXP"):
        try:
            pattern = re.compile(value, 0 if sensitive else re.IGNORECASE)
        except re.error as exc:
            raise invalid(f"Invalid regular expression {value!r}: {exc}") from None
        if match == "FULL_REGEXP":
            return lambda v: pattern.fullmatch(v) is not None
        return lambda v: pattern.search(v) is not None
    needle = value if sensitive else value.lower()

    def fold(v: str) -> str:
        return v if sensitive else v.lower()

    if match == "BEGINS_WITH":
        return lambda v: fold(v).startswith(needle)
    if match == "ENDS_WITH":
        return lambda v: fold(v).endswith(needle)
    if match == "CONTAINS":
        return lambda v: needle in fold(v)
    return lambda v: fold(v) == needle  # EXACT, and GA4 treats unspecified as exact


# ---- aggregation ----------------------------------------------------------------------------


def aggregate(query: ReportQuery, tables: Sequence[FactTable]) -> list[Row]:
    """GROUP BY the requested dimensions over every range, drop empty rows, order."""
    groups: dict[tuple[str, ...], list[float]] = {}
    width = len(query.metrics)
    for named in query.ranges:
        for table in tables:
            lo, hi = table.bounds(named.start, named.end)
            if lo >= hi:
                continue
            cols = [
                [named.name] * (hi - lo) if d == "dateRange" else table.columns[d][lo:hi]
                for d in query.dimensions
            ]
            mets = [table.metrics[m][lo:hi] for m in query.metrics]
            keys: Any = zip(*cols, strict=True) if cols else (() for _ in range(hi - lo))
            values: Any = zip(*mets, strict=True)
            if query.dimension_filter is not None:
                keep = compile_filter(query.dimension_filter, table.columns)
                mask = [keep(i) for i in range(lo, hi)]
                keys = (k for k, m in zip(keys, mask, strict=True) if m)
                values = (v for v, m in zip(values, mask, strict=True) if m)
            for key, row in zip(keys, values, strict=False):
                total = groups.get(key)
                if total is None:
                    groups[key] = list(row)
                else:
                    for j in range(width):
                        total[j] += row[j]
    rows: list[Row] = [
        (key, tuple(vals)) for key, vals in groups.items()
        if query.keep_empty_rows or any(vals)
    ]
    return sort_rows(rows, query.order_bys)


def sort_rows(rows: list[Row], order_bys: Sequence[dict[str, Any]]) -> list[Row]:
    """Order by ``order_bys``, ties broken by the whole key so that paging is stable.

    One sort with a composite key when every order runs the same direction (the common case,
    and the expensive one at half a million rows); stable multi-pass sorting otherwise.
    """
    directions = {order["desc"] for order in order_bys}
    if len(directions) <= 1:
        keys = [_order_key(order) for order in order_bys]
        if not keys:
            rows.sort(key=lambda r: r[0])
        elif all(order.get("dimension") == i and order.get("type") in _PLAIN_ORDER
                 for i, order in enumerate(order_bys)):
            rows.sort(key=lambda r: r[0], reverse=bool(directions.pop()))  # key prefix order
        else:
            rows.sort(key=lambda r: (*(k(r) for k in keys), r[0]), reverse=bool(directions.pop()))
        return rows
    rows.sort(key=lambda r: r[0])
    for order in reversed(order_bys):
        rows.sort(key=_order_key(order), reverse=order["desc"])
    return rows


def _order_key(order: dict[str, Any]) -> Callable[[Row], Any]:
    if "metric" in order:
        index = order["metric"]
        return lambda r: r[1][index]
    index, kind = order["dimension"], order["type"]
    if kind == "CASE_INSENSITIVE_ALPHANUMERIC":
        return lambda r: r[0][index].lower()
    if kind == "NUMERIC":
        def numeric(r: Row) -> tuple[int, float]:
            try:
                return (1, float(r[0][index]))
            except ValueError:
                return (0, 0.0)  # non-numbers sort together, below every number
        return numeric
    return lambda r: r[0][index]


def metric_text(value: float, metric_type: str) -> str:
    if metric_type == "TYPE_INTEGER":
        return str(int(value))  # sums of whole counts are exact in a float
    rounded = round(value, 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)
