"""Bulk API 2.0: ingest jobs (create, PUT CSV, UploadComplete, results) and query jobs (CSV pages).

CSV columns are matched to fields by header name, in any order and any case, as Salesforce
does (simple-salesforce builds its header from a set).  An unknown column fails the whole job;
a bad value fails its row, which then appears in ``failedResults`` with ``sf__Error``.  A job
runs when it is closed but reports InProgress to its first poll, so clients see the lifecycle.
Query results come ``maxRecords`` at a time with ``Sforce-Locator`` ("null" on the last page).
"""

from __future__ import annotations

import base64
import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from closedloop.sandbox.salesforce.errors import SalesforceError, not_found
from closedloop.sandbox.salesforce.query import compile_soql
from closedloop.sandbox.salesforce.soql_eval import Plan, Row
from closedloop.sandbox.salesforce.state import SalesforceState
from closedloop.sandbox.salesforce.values import from_csv, rest_value
from closedloop.sandbox.salesforce.wire import DATA, Route, both, csv_response, json_object, version
from closedloop.sandbox.salesforce.writes import RecordFailure, prepare_create, prepare_update
from closedloop.sandbox.server import Handler, Request, Response

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
INGEST_OPERATIONS = frozenset({"insert", "update", "upsert", "delete", "hardDelete"})
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass(slots=True)
class Job:
    id: str
    kind: str  # ingest | query
    operation: str
    sobject: str
    created: datetime
    api_version: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id: str | None = None
    state: str = "Open"
    polls_left: int = 1
    data: str | None = None
    error: str | None = None
    header: list[str] = field(default_factory=list)
    successes: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    failures: list[tuple[str, str, list[str]]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    plan: Plan | None = None
    rows: list[Row] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.sobject, "createdById": "",
            "createdDate": rest_value(self.created), "systemModstamp": rest_value(self.created), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.api_version[1:]),
            "lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
            "jobType": "V2Ingest" if self.kind == "ingest" else "V2Query",
        }
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/{self.api_version}/jobs/ingest/{self.id}/batches"
            if self.external_id:
                out["externalIdFieldName"] = self.external_id
        if self.state in TERMINAL:
            processed = len(self.successes) + len(self.failures) if self.kind == "ingest" else len(self.rows)
            out.update(numberRecordsProcessed=processed, numberRecordsFailed=len(self.failures), retries=0,
                       totalProcessingTime=1, apiActiveProcessingTime=1, apexProcessingTime=0)
            if self.error:
                out["errorMessage"] = self.error
        return out

    @property
    def newline(self) -> str:
        return "\r\n" if self.line_ending == "CRLF" else "\n"


class Bulk2:
    def __init__(self, state: SalesforceState, *, polls_in_progress: int = 1) -> None:
        self.state = state
        self.polls_in_progress = polls_in_progress
        self.jobs: dict[str, Job] = {}

    def routes(self) -> list[Route]:
        return [(method, template, self._locked(handler)) for method, template, handler in self._routes()]

    def _locked(self, handler: Handler) -> Handler:
        """Job transitions under the org's lock: simple-salesforce runs up to ten jobs at once."""

        def locked(request: Request, params: dict[str, str]) -> Response:
            with self.state.lock:
                return handler(request, params)

        return locked

    def _routes(self) -> list[Route]:
        ingest, query = f"{DATA}/jobs/ingest", f"{DATA}/jobs/query"
        return [
            *both("POST", ingest, self.create_ingest), *both("GET", ingest, lambda r, p: self.list_jobs(p, "ingest")),
            ("GET", f"{ingest}/{{job}}", self.get_job), ("PATCH", f"{ingest}/{{job}}", self.set_state),
            ("DELETE", f"{ingest}/{{job}}", self.delete_job), ("PUT", f"{ingest}/{{job}}/batches", self.upload),
            ("GET", f"{ingest}/{{job}}/successfulResults", lambda r, p: self.results(p, "successful")),
            ("GET", f"{ingest}/{{job}}/failedResults", lambda r, p: self.results(p, "failed")),
            ("GET", f"{ingest}/{{job}}/unprocessedrecords", lambda r, p: self.results(p, "unprocessed")),
            ("GET", f"{ingest}/{{job}}/unprocessedRecords", lambda r, p: self.results(p, "unprocessed")),
            *both("POST", query, self.create_query), *both("GET", query, lambda r, p: self.list_jobs(p, "query")),
            ("GET", f"{query}/{{job}}", self.get_job), ("PATCH", f"{query}/{{job}}", self.set_state),
            ("DELETE", f"{query}/{{job}}", self.delete_job), ("GET", f"{query}/{{job}}/results", self.query_results),
        ]

    def _job(self, params: dict[str, str], kind: str | None = None) -> Job:
        job = self.jobs.get(params["job"])
        if job is None or (kind is not None and job.kind != kind):
            raise not_found("The requested job does not exist")
        return job

    def _new(self, kind: str, operation: str, sobject: str, ver: str, body: dict[str, Any]) -> Job:
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in DELIMITERS or line_ending not in ("LF", "CRLF"):
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : columnDelimiter or lineEnding is not valid")
        job = Job(self.state.ids.next("BulkJob"), kind, operation, sobject, self.state.now(), ver, delimiter,
                  line_ending, body.get("externalIdFieldName"), polls_left=self.polls_in_progress)
        self.jobs[job.id] = job
        return job

    def create_ingest(self, request: Request, params: dict[str, str]) -> Response:
        ver, body = version(params), json_object(request)
        obj = self.state.object_def(str(body.get("object") or ""))
        operation = str(body.get("operation") or "")
        if obj is None:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
        if operation not in INGEST_OPERATIONS or (operation == "upsert" and not body.get("externalIdFieldName")):
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if body.get("contentType", "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        return Response(200, self._new("ingest", operation, obj.name, ver, body).info())

    def upload(self, request: Request, params: dict[str, str]) -> Response:
        job = self._job(params, "ingest")
        if not request.headers.get("content-type", "").lower().startswith("text/csv"):
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : Content-Type of the job data must be text/csv")
        if job.state != "Open" or job.data is not None:
            raise SalesforceError(409, "INVALIDJOBSTATE", "Found multiple contents for job or the job is not Open")
        job.data = request.body.decode("utf-8")
        return Response(201)

    def set_state(self, request: Request, params: dict[str, str]) -> Response:
        job = self._job(params)
        wanted = json_object(request).get("state")
        if wanted == "Aborted" and job.state not in TERMINAL:
            job.state = "Aborted"
        elif wanted == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            job.state = "UploadComplete"
            self._run_ingest(job)
        else:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Invalid state transition from {job.state} to {wanted}")
        return Response(200, job.info())

    def get_job(self, request: Request, params: dict[str, str]) -> Response:
        job = self._job(params)
        if job.state in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                job.state = "Failed" if job.error else "JobComplete"
        return Response(200, job.info())

    def list_jobs(self, params: dict[str, str], kind: str) -> Response:
        version(params)
        records = [job.info() for job in self.jobs.values() if job.kind == kind]
        return Response(200, {"done": True, "records": records, "nextRecordsUrl": None})

    def delete_job(self, request: Request, params: dict[str, str]) -> Response:
        job = self._job(params)
        if job.state not in TERMINAL:
            raise SalesforceError(400, "INVALIDJOBSTATE", "Only jobs in a terminal state can be deleted")
        del self.jobs[job.id]
        return Response(204)

    # ---- ingest --------------------------------------------------------------------------

    def _run_ingest(self, job: Job) -> None:
        obj = self.state.object_def(job.sobject)
        assert obj is not None
        reader = csv.reader(io.StringIO(job.data or "", newline=""), delimiter=DELIMITERS[job.delimiter])
        lines = [line for line in reader if line]
        if not lines:
            job.error = "InvalidBatch : The job has no data"
            return
        job.header, rows = lines[0], lines[1:]
        self.state.bulk_batches += max(1, math.ceil(len(rows) / 10_000))
        with self.state.lock:
            for name in job.header:
                fd = obj.field(name)
                if name.lower() != "id" and (fd is None or not self.state.visible(obj, fd)):
                    job.error = f"InvalidBatch : Field name not found : {name}"
                    job.unprocessed = rows
                    return
            for cells in rows:
                self._ingest_row(job, obj.name, cells)

    def _ingest_row(self, job: Job, sobject: str, cells: list[str]) -> None:
        obj = self.state.object_def(sobject)
        assert obj is not None
        raw = {name: value for name, value in zip(job.header, cells, strict=False) if value != ""}
        record_id = next((v for k, v in raw.items() if k.lower() == "id"), "")
        try:
            if job.operation in ("delete", "hardDelete"):
                record_id, _ = prepare_update(self.state, obj, record_id, {}, from_csv)
                self.state.delete(obj.name, record_id)
                job.successes.append((record_id, False, cells))
            elif job.operation == "update" or (job.operation == "upsert" and record_id):
                record_id, values = prepare_update(self.state, obj, record_id, raw, from_csv)
                self.state.update(obj.name, record_id, values)
                job.successes.append((record_id, False, cells))
            else:
                row = self.state.insert(obj.name, prepare_create(self.state, obj, raw, from_csv))
                job.successes.append((row["Id"], True, cells))
        except RecordFailure as failure:
            fields = ":".join(failure.fields)
            job.failures.append((record_id, f"{failure.code}:{failure.message}:{fields} --", cells))

    def results(self, params: dict[str, str], which: str) -> Response:
        job = self._job(params, "ingest")
        if job.state not in TERMINAL:
            raise SalesforceError(400, "INVALIDJOBSTATE", "The job is not complete")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=job.newline, quoting=csv.QUOTE_ALL)
        if which == "successful":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows([rid, "true" if made else "false", *cells] for rid, made, cells in job.successes)
        elif which == "failed":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows([rid, error, *cells] for rid, error, cells in job.failures)
        else:
            writer.writerow(job.header)
            writer.writerows(job.unprocessed)
        return csv_response(out.getvalue())

    # ---- query ---------------------------------------------------------------------------

    def create_query(self, request: Request, params: dict[str, str]) -> Response:
        ver, body = version(params), json_object(request)
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        plan = compile_soql(self.state, body.get("query"))
        if plan.query.count:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0")
        with self.state.lock:
            self.state.bulk_query_jobs += 1
            rows = plan.select(self.state.all_rows(plan.sobject.name, include_deleted=operation == "queryAll"))
        job = self._new("query", operation, plan.sobject.name, ver, body)
        job.plan, job.rows, job.state = plan, rows, "UploadComplete"
        return Response(200, job.info())

    def query_results(self, request: Request, params: dict[str, str]) -> Response:
        job = self._job(params, "query")
        if job.state != "JobComplete" or job.plan is None:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"The job is not complete: {job.state}")
        max_records = request.arg("maxRecords") or "50000"
        if not max_records.isdigit() or int(max_records) < 1:
            raise SalesforceError(400, "INVALIDJOB", "maxRecords must be a positive integer")
        start = _offset(request.arg("locator"))
        end = min(start + int(max_records), len(job.rows))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=job.newline, quoting=csv.QUOTE_ALL,
                            delimiter=DELIMITERS[job.delimiter])
        writer.writerow(job.plan.csv_header())
        with self.state.lock:
            writer.writerows(job.plan.csv_row(row) for row in job.rows[start:end])
        locator = _locator(end) if end < len(job.rows) else "null"
        return csv_response(out.getvalue(), {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(end - start)})


def _locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        raise SalesforceError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
