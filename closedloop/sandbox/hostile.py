"""Hostile answers: the emulator's real answer, rewritten the ways a broken service breaks it.

A ``rewrite`` rule forwards the request to the emulator (so its state, gates and writes are
real) and hands the answer to a ``Rewrite``: a function from (request, answer) to the answer
the client gets.  The corpus below is what closedloop must survive per record or per stream,
never per run: records without ``id`` or ``null``, wrong types, naive timestamps, values longer
than any column, unknown stages, a ``null`` body, truncated JSON, invalid UTF-8, an HTML error
page with status 200, the wrong content type, and a paging cursor that does not advance.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from closedloop.sandbox.faults import Forward, Rule
from closedloop.sandbox.server import Request, Response

Rewrite = Callable[[Request, Response], Response]

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
             b"<body><h1>Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>")


def rewrite(change: Rewrite, *, endpoint: str, skip: int = 0, times: int | None = 1, name: str = "hostile") -> Rule:
    """A rule that passes the request on and rewrites the emulator's answer with ``change``."""

    def act(request: Request, forward: Forward) -> Response:
        return change(request, forward(request))

    return Rule(act, endpoint=endpoint, skip=skip, times=times, name=name)


def _json_body(response: Response) -> Any:
    body = response.body
    if isinstance(body, bytes):
        return json.loads(body)
    return copy.deepcopy(body)


def _with_body(response: Response, body: Any) -> Response:
    return replace(response, body=body, headers=dict(response.headers))


# ---- whole-page breakage: a stream-level (retriable, then failed) error ----------------------


def null_body(_request: Request, response: Response) -> Response:
    return _with_body(response, b"null")


def truncated_json(_request: Request, response: Response) -> Response:
    raw = response.encode()
    return _with_body(response, raw[: max(1, len(raw) // 2)])


def invalid_utf8(_request: Request, response: Response) -> Response:
    raw = response.encode()
    cut = max(1, len(raw) // 2)
    return _with_body(response, raw[:cut] + b"\xff\xfe\xc3(" + raw[cut:])


def html_page(_request: Request, response: Response) -> Response:
    return Response(200, HTML_PAGE, {}, content_type="text/html; charset=utf-8")


def wrong_content_type(_request: Request, response: Response) -> Response:
    return replace(response, body=response.encode(), content_type="text/plain")


def stalled_cursor(request: Request, response: Response) -> Response:
    """``paging.next.after`` equal to the ``after`` just sent (query or search body); on the
    first page, where nothing was sent, the cursor of the page itself is sent back next time."""
    body = _json_body(response)
    if not isinstance(body, dict):
        return response
    sent = request.arg("after")
    if sent is None and request.body:
        try:
            sent = (json.loads(request.body) or {}).get("after")
        except ValueError:
            sent = None
    body["paging"] = {"next": {"after": str(sent or "0"), "link": "?after=" + str(sent or "0")}}
    return _with_body(response, body)


# ---- one record broken: quarantined or warned, the rest goes on ------------------------------


def _on_result(change: Callable[[list[Any]], None], key: str = "results") -> Rewrite:
    def apply(_request: Request, response: Response) -> Response:
        body = _json_body(response)
        if not isinstance(body, dict) or not body.get(key):
            return response
        change(body[key])
        return _with_body(response, body)

    return apply


def _first(results: list[Any], edit: Callable[[dict[str, Any]], None]) -> None:
    for item in results:
        if isinstance(item, dict):
            edit(item)
            return


def record_without_id(results: list[Any]) -> None:
    _first(results, lambda obj: obj.pop("id", None))


def null_record(results: list[Any]) -> None:
    results.insert(0, None)


def properties_as_list(results: list[Any]) -> None:
    _first(results, lambda obj: obj.__setitem__("properties", ["createdate", 1]))


def set_property(name: str, value: Any) -> Callable[[list[Any]], None]:
    def edit(results: list[Any]) -> None:
        _first(results, lambda obj: (obj.setdefault("properties", {}) or {}).__setitem__(name, value))

    return edit


def history_entry_broken(results: list[Any]) -> None:
    """One stage-history entry without a value, one with a timestamp that is not one, one null."""

    def edit(obj: dict[str, Any]) -> None:
        history = (obj.get("propertiesWithHistory") or {}).get("dealstage")
        if isinstance(history, list):
            history.extend([None, {"timestamp": "yesterday", "value": "x"}, {"timestamp": 5, "value": None}])

    _first(results, edit)


def association_broken(results: list[Any]) -> None:
    """One association result without ``from``, one ``to`` entry without an id."""
    results.insert(0, {"to": [{"toObjectId": "1"}]})
    _first(results[1:], lambda obj: obj.setdefault("to", []).append({"associationTypes": []}))


def results(change: Callable[[list[Any]], None], key: str = "results") -> Rewrite:
    """Apply ``change`` to the answer's ``results`` list (or another list under ``key``)."""
    return _on_result(change, key)


def results_null(_request: Request, response: Response) -> Response:
    body = _json_body(response)
    if not isinstance(body, dict):
        return response
    body["results"] = None
    return _with_body(response, body)


def ga4_rows(change: Callable[[list[Any]], None]) -> Rewrite:
    """Apply ``change`` to a GA4 report's ``rows``."""
    return _on_result(change, key="rows")


SESSION_DIMENSIONS = 6


def ga4_row_broken(rows: list[Any]) -> None:
    """A null row, a row with too few cells, a row whose minute is not one, a number cell as a dict.

    Only a sessions report's page is changed (client id, minute, source, medium, campaign,
    landing page: six dimensions); the ad-cost report that runs beside it is left as it is, so
    a test knows which stream the broken rows went to whichever report answers first.
    """
    if not rows or not isinstance(rows[0], dict) or len(rows[0].get("dimensionValues") or ()) < SESSION_DIMENSIONS:
        return
    rows.insert(0, None)
    rows.insert(1, {"dimensionValues": [{"value": "only-one"}], "metricValues": []})
    bad = copy.deepcopy(rows[2])
    if isinstance(bad, dict) and isinstance(bad.get("dimensionValues"), list) and len(bad["dimensionValues"]) > 1:
        bad["dimensionValues"][1] = {"value": "not-a-minute"}
        rows.insert(2, bad)
    rows.insert(3, {"dimensionValues": "oops", "metricValues": [{"value": {"x": 1}}]})
