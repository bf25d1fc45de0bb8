"""One Bulk API 2.0 update job whose CSV is streamed from a file.

simple-salesforce's ``bulk2.<Object>.update(csv_file=...)`` reads the whole file into a list of
rows, writes them back into one string and encodes it twice before the upload: for 78,000 Leads
about 100 MB held at once, three jobs in parallel at the end of a run (the full-size bench
peaked there).  The job's lifecycle is four kinds of call (create, upload, close, poll), each
through the SDK's own ``restful`` and ``call_salesforce`` with the session it signed in with,
so the body can be the open file, which requests streams from disk.  Each step is a call of its
own: an expired session or a retriable error repeats that step, not the whole job.
"""

from __future__ import annotations

import math
from contextlib import suppress
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.util import call_salesforce

from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.errors import FatalAPIError

MAX_POLL_S = 2.0  # as simple-salesforce: the wait between status reads grows to this
DONE, REFUSED = "JobComplete", ("Failed", "Aborted")


def update_from_file(
    client: SalesforceClient, sobject: str, csv_path: Path, *, records: int, poll_s: float
) -> dict[str, Any]:
    """Run the job to its end; its figures in the shape ``bulk2.update`` returns one job's.

    A job that ends Failed or Aborted raises ``FatalAPIError`` (the caller fails its records);
    a step that fails for good aborts the job first, so no open job is left behind.
    """
    created = client.call(
        "POST jobs/ingest",
        lambda sf: sf.restful(
            "jobs/ingest",
            method="POST",
            json={"object": sobject, "operation": "update", "contentType": "CSV", "lineEnding": "LF",
                  "columnDelimiter": "COMMA"},
        ),
    )
    job_id = str((created or {})["id"])
    try:
        client.call("PUT jobs/ingest/{id}/batches", lambda sf: _upload(sf, job_id, csv_path))
        client.call(
            "PATCH jobs/ingest/{id}",
            lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"}),
        )
        info = _wait(client, job_id, poll_s)
    except BaseException:
        with suppress(Exception):  # the first error is the one to report
            client.call(
                "PATCH jobs/ingest/{id}",
                lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json={"state": "Aborted"}),
            )
        raise
    return {
        "numberRecordsFailed": int(info.get("numberRecordsFailed") or 0),
        "numberRecordsProcessed": int(info.get("numberRecordsProcessed") or 0),
        "numberRecordsTotal": records,
        "job_id": job_id,
    }


def _upload(sf: Salesforce, job_id: str, csv_path: Path) -> None:
    headers = {**sf.headers, "Content-Type": "text/csv", "Accept": "application/json"}
    with csv_path.open("rb") as body:  # requests sends a file with its length, read in blocks
        call_salesforce(
            url=f"{sf.bulk2_url}ingest/{job_id}/batches", method="PUT", session=sf.session, headers=headers, data=body
        )


def _wait(client: SalesforceClient, job_id: str, poll_s: float) -> dict[str, Any]:
    """Read the job's state until it is done, the wait growing from ``poll_s`` to ``MAX_POLL_S``."""
    wait, polls = poll_s, 0
    while True:
        client.sleep(wait)
        answer = client.call("GET jobs/ingest/{id}", lambda sf: sf.restful(f"jobs/ingest/{job_id}"))
        info: dict[str, Any] = dict(answer or {})
        state = info.get("state")
        if state == DONE:
            return info
        if state in REFUSED:
            raise FatalAPIError(f"Bulk 2.0 job {job_id} {state}: {str(info.get('errorMessage') or '')[:300]}")
        polls += 1
        wait = max(poll_s, min(MAX_POLL_S, poll_s + math.exp(min(polls, 10)) / 1000))
