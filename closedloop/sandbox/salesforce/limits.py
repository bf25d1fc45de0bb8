"""``/limits``, the versions list and the per-version resource list.

The daily allocation itself is counted in ``SalesforceState.count_call`` by the app's gate;
here it is reported in Salesforce's shape, ``{"DailyApiRequests": {"Max", "Remaining"}, ...}``.
"""

from __future__ import annotations

from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.wire import DATA, Route, both, version
from closedloop.sandbox.server import Request, Response

SERVED_VERSIONS = ("57.0", "58.0", "59.0", "60.0", "61.0")
BULK_BATCHES = 15_000
BULK_QUERY_JOBS = 10_000


class Limits:
    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [*both("GET", f"{DATA}/limits", self.limits), *both("GET", DATA, self.resources)]

    def limits(self, request: Request, params: dict[str, str]) -> Response:
        version(params)
        state = self.state
        with state.lock:
            remaining = max(0, state.daily_limit - state.api_usage)
            body = {
                "DailyApiRequests": {"Max": state.daily_limit, "Remaining": remaining},
                "DailyBulkApiBatches": {"Max": BULK_BATCHES, "Remaining": max(0, BULK_BATCHES - state.bulk_batches)},
                "DailyBulkV2QueryJobs": {"Max": BULK_QUERY_JOBS,
                                         "Remaining": max(0, BULK_QUERY_JOBS - state.bulk_query_jobs)},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976_562, "Remaining": 976_562},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
                "FileStorageMB": {"Max": 1024, "Remaining": 1024},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            }
        return Response(200, body)

    def resources(self, request: Request, params: dict[str, str]) -> Response:
        base = f"/services/data/{version(params)}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "tooling", "jobs")
        return Response(200, {name: f"{base}/{name}" for name in names})


def versions(base_url: str) -> Response:
    """``GET /services/data``: the one answer without Sforce-Limit-Info (it needs no session)."""
    return Response(200, [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in SERVED_VERSIONS])
