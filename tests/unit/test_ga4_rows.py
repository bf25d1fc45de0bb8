"""RowsAside: rows lifted out of report answers only; errors and other calls pass through whole."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests

from closedloop.connectors.ga4.rows import RowsAside, values


def _response(status: int, payload: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(payload).encode()
    return response


REPORT = {
    "rows": [{"dimensionValues": [{"value": "a"}, {}], "metricValues": [{"value": "3"}]}],
    "rowCount": 1,
    "metadata": {"timeZone": "Europe/Berlin"},
}


def test_rows_are_lifted_and_the_rest_is_left_for_the_sdk() -> None:
    aside = RowsAside(lambda url, **kw: _response(200, REPORT))
    response = aside.post("http://ga4/v1beta/properties/1:runReport", data="{}")
    assert json.loads(response.content) == {"rowCount": 1, "metadata": {"timeZone": "Europe/Berlin"}}
    rows = aside.take_rows()
    assert [values(r["dimensionValues"]) for r in rows] == [["a", ""]]
    with pytest.raises(RuntimeError):
        aside.take_rows()  # once only


def test_an_error_answer_reaches_the_sdk_untouched() -> None:
    error = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}}
    aside = RowsAside(lambda url, **kw: _response(429, error))
    response = aside.post("http://ga4/v1beta/properties/1:runReport")
    assert json.loads(response.content) == error
    with pytest.raises(RuntimeError):
        aside.take_rows()


def test_other_calls_are_not_touched() -> None:
    metadata = {"rows": ["not a report"], "name": "properties/1/metadata"}
    aside = RowsAside(lambda url, **kw: _response(200, metadata))
    assert json.loads(aside.post("http://ga4/v1beta/properties/1/metadata").content) == metadata


def test_rows_are_kept_per_thread() -> None:
    def answer(url: str, **kw: Any) -> requests.Response:
        return _response(200, {"rows": [{"dimensionValues": [{"value": threading.current_thread().name}]}]})

    aside = RowsAside(answer)
    seen: dict[str, str] = {}

    def report() -> None:
        aside.post("http://ga4/v1beta/properties/1:runReport")
        seen[threading.current_thread().name] = values(aside.take_rows()[0]["dimensionValues"])[0]

    threads = [threading.Thread(target=report, name=f"t{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {f"t{i}": f"t{i}" for i in range(4)}


def test_summary_rows_the_sdk_still_decodes_keep_their_cells() -> None:
    totals = [{"dimensionValues": [{"value": "RESERVED_TOTAL"}], "metricValues": [{"value": "9"}]}]
    aside = RowsAside(lambda url, **kw: _response(200, {**REPORT, "totals": totals}))
    response = aside.post("http://ga4/v1beta/properties/1:runReport")
    assert json.loads(response.content)["totals"] == totals
    assert aside.take_rows() == [{"dimensionValues": ["a", {}], "metricValues": ["3"]}]
