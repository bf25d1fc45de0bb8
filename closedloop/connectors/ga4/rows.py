"""Report rows as plain JSON, beside the SDK's decoding of everything else.

The REST transport of ``google-analytics-data`` decodes every answer with protobuf's pure-Python
``json_format``: for a 50,000-row page that is seconds of CPU, and most of a large pull's.  The
SDK still builds, authorises and sends each request, maps HTTP errors to its exceptions and
decodes the metadata, quota and row count; this wrapper around its HTTP session only lifts the
``rows`` array out of a successful ``runReport`` answer first (``json.loads`` in C), so the SDK
decodes a few hundred bytes and the rows are read as lists of dicts.

The rows are kept per thread: the SDK call and the reading of its rows happen in one thread,
and two reports of one client may run side by side in two.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from closedloop.errors import MalformedResponseError

_REPORT_SUFFIX = ":runReport"


class RowsAside:
    """Takes the place of the transport session's ``post``; the session object itself stays
    (the SDK keys its wrapped methods by objects that hold it)."""

    def __init__(self, post: Any) -> None:
        self._post = post
        self._local = threading.local()

    def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        response = self._post(url, *args, **kwargs)
        self._local.rows = None
        if response.status_code < 400 and url.split("?", 1)[0].endswith(_REPORT_SUFFIX):
            payload = json.loads(response.content or b"{}", object_hook=_compact_cell)
            if not isinstance(payload, dict) or not isinstance(payload.get("rows") or [], list):
                raise MalformedResponseError(f"GA4 {url.rsplit('/', 1)[-1]} answered with no report object")
            self._local.rows = payload.pop("rows", None) or []
            for summary in _SUMMARY_ROWS:  # rows the SDK still decodes get their cells back
                if summary in payload:
                    payload[summary] = [_expanded(row) for row in payload[summary]]
            response._content = json.dumps(payload).encode()  # what the SDK decodes: no rows
        return response

    def take_rows(self) -> list[dict[str, Any]]:
        """The rows of this thread's last report answer (once)."""
        rows: list[dict[str, Any]] | None = getattr(self._local, "rows", None)
        if rows is None:
            raise RuntimeError("no runReport answer was received in this thread")
        self._local.rows = None
        return rows


def install(client: Any) -> RowsAside:
    """Wrap the HTTP session of a REST-transport client; returns the wrapper to take rows from."""
    session = getattr(client._transport, "_session", None)
    if session is None:
        raise TypeError("closedloop reads GA4 over the SDK's REST transport (transport='rest')")
    existing: RowsAside | None = getattr(session, "_closedloop_rows_aside", None)
    if existing is not None:
        return existing
    aside = RowsAside(session.post)
    session.post = aside.post
    session._closedloop_rows_aside = aside
    return aside


_SUMMARY_ROWS = ("totals", "maximums", "minimums")


def _compact_cell(obj: dict[str, Any]) -> Any:
    """A ``{"value": "x"}`` cell becomes ``"x"`` as it is decoded: a third of a row's memory."""
    if len(obj) == 1 and "value" in obj:
        return obj["value"]
    return obj


def _expanded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [{"value": cell} if isinstance(cell, str) else cell for cell in cells]
        if key in ("dimensionValues", "metricValues")
        else cells
        for key, cells in row.items()
    }


def values(cells: list[Any] | None) -> list[str]:
    """``dimensionValues`` / ``metricValues`` as strings; proto3 JSON may omit an empty value."""
    return [cell if isinstance(cell, str) else str((cell or {}).get("value", "")) for cell in cells or ()]


# Client ids GA4 answers when a row is no one: the dimension was not set, the row folds rows
# past the table's cardinality limit together ("(other)"), or the value is empty.  Such a row
# is many visitors, never one person's journey.
NOT_A_PERSON = frozenset({"(not set)", "(other)", ""})


def is_person(client_id: str | None) -> bool:
    return (client_id or "").strip() not in NOT_A_PERSON


def metadata_counts(metadata: Any) -> dict[str, int]:
    """What a report page says about its own completeness, as counts for the run record.

    GA4's ``ResponseMetaData``: ``subjectToThresholding`` (rows withheld so no one can be
    identified), ``dataLossFromOtherRow`` (rows folded into "(other)"), ``samplingMetadatas``
    (events read of the events there were, per date range).  Each flag counts the pages that
    carried it.  Only non-zero figures are returned, so a clean pull adds nothing to its totals.
    (Rows of no one are counted by the rebuild, which keeps them out of journeys.)
    """
    counts = {
        "pages_subject_to_thresholding": int(bool(getattr(metadata, "subject_to_thresholding", False))),
        "pages_with_other_row_loss": int(bool(getattr(metadata, "data_loss_from_other_row", False))),
    }
    sampling = list(getattr(metadata, "sampling_metadatas", None) or ())
    if sampling:
        counts["pages_sampled"] = 1
        counts["sampled_events_read"] = sum(int(s.samples_read_count or 0) for s in sampling)
        counts["sampled_events_total"] = sum(int(s.sampling_space_size or 0) for s in sampling)
    return {k: v for k, v in counts.items() if v}
