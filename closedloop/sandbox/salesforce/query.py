"""query, queryAll and Tooling query: SOQL answered in pages that follow ``nextRecordsUrl``.

A query's matching rows are fixed when it runs (a query locator) and served 2,000 a page, or
the ``Sforce-Query-Options: batchSize=N`` asked for (clamped to 200..2,000).  ``nextRecordsUrl``
is ``/services/data/vXX.X/query/<locator>-<offset>``, even after queryAll, as in Salesforce.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError
from closedloop.sandbox.salesforce.soql import SoqlSyntaxError, parse
from closedloop.sandbox.salesforce.soql_eval import Plan, Row, SoqlError, compile_query
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.wire import DATA, Route, both, version
from closedloop.sandbox.server import Request, Response

MAX_BATCH = 2000
MIN_BATCH = 200
_KEEP_LOCATORS = 500


def compile_soql(state: SalesforceState, text: str | None, *, tooling: bool = False) -> Plan:
    """Parse and resolve, or raise the 400 Salesforce gives (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE)."""
    if not text or not text.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        query = parse(text)
        with state.lock:
            return compile_query(query, lambda name: state.object_def(name, tooling=tooling),
                                 state.visible, state.fetch)
    except SoqlSyntaxError as exc:
        raise SalesforceError(400, "MALFORMED_QUERY", exc.message) from None
    except SoqlError as exc:
        raise SalesforceError(400, exc.code, exc.message) from None


def batch_size(header: str | None) -> int:
    for option in (header or "").replace(";", ",").split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(MAX_BATCH, int(value)))
    return MAX_BATCH


@dataclass(slots=True)
class Cursor:
    plan: Plan
    rows: list[Row]
    batch: int
    tooling: bool
    locator: str = ""


class Queries:
    def __init__(self, state: SalesforceState) -> None:
        self.state = state
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            *both("GET", f"{DATA}/query", lambda r, p: self.run(r, p, all_rows=False, tooling=False)),
            *both("GET", f"{DATA}/queryAll", lambda r, p: self.run(r, p, all_rows=True, tooling=False)),
            *both("GET", f"{DATA}/tooling/query", lambda r, p: self.run(r, p, all_rows=False, tooling=True)),
            ("GET", f"{DATA}/query/{{locator}}", self.more),
            ("GET", f"{DATA}/queryAll/{{locator}}", self.more),
            ("GET", f"{DATA}/tooling/query/{{locator}}", self.more),
        ]

    def run(self, request: Request, params: dict[str, str], *, all_rows: bool, tooling: bool) -> Response:
        ver = version(params)
        plan = compile_soql(self.state, request.arg("q"), tooling=tooling)
        with self.state.lock:
            rows = plan.select(self.state.all_rows(plan.sobject.name, include_deleted=all_rows))
        if plan.query.count:
            return Response(200, {"totalSize": len(rows), "done": True, "records": []})
        cursor = Cursor(plan, rows, batch_size(request.headers.get("sforce-query-options")), tooling)
        return Response(200, self._page(cursor, 0, ver))

    def more(self, request: Request, params: dict[str, str]) -> Response:
        ver = version(params)
        locator, _, offset = params["locator"].rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) >= len(cursor.rows):
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return Response(200, self._page(cursor, int(offset), ver))

    def _page(self, cursor: Cursor, start: int, ver: str) -> dict[str, Any]:
        end = min(start + cursor.batch, len(cursor.rows))
        with self.state.lock:
            records = [cursor.plan.rest_record(row, ver) for row in cursor.rows[start:end]]
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows), "records": records}
        if end < len(cursor.rows):
            locator = self._remember(cursor)
            prefix = "tooling/query" if cursor.tooling else "query"
            body["nextRecordsUrl"] = f"/services/data/{ver}/{prefix}/{locator}-{end}"
        return body

    def _remember(self, cursor: Cursor) -> str:
        with self._lock:
            if cursor.locator in self._cursors:
                self._cursors.move_to_end(cursor.locator)
                return cursor.locator
            cursor.locator = locator = self.state.ids.next("QueryLocator")[:15]
            self._cursors[locator] = cursor
            while len(self._cursors) > _KEEP_LOCATORS:
                self._cursors.popitem(last=False)
            return locator
