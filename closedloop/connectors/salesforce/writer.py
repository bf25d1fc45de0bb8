"""Write closedloop's values to their custom fields on Lead, Contact and Opportunity.

Up to ``bulk_threshold`` changed records of one object go through sObject Collections
(``PATCH composite/sobjects``, ``allOrNone: false``).  A call takes up to 200 records of MIXED
types, which Salesforce processes in chunks of consecutive same-type records, at most 10 chunks
a call; so records are sorted by type and packed 200 a call whatever their object, instead of a
part-empty call per object.  The answer is one SaveResult per record in request order, so a
record's failure (its ``statusCode`` and message) comes back as a per-record failure the
write-back keeps and retries on later runs.  Above the threshold one Bulk API 2.0 update job per
object carries them; its ``failedResults`` (``sf__Id``, ``sf__Error``) and unprocessed rows
become the failures.  An empty value clears the field: null in JSON, ``#N/A`` in a Bulk CSV
(where an empty cell means "leave as is").

Whether an object crosses the threshold is known only once every change is planned, so the
write-back puts each planned update into the writer's ``spool`` (spool.py: past the threshold
an object's updates go to a file, not memory) and sends each call it hands out at the end: one
per Bulk 2.0 job, uploaded from a CSV file, one per collections call.  ``calls_for`` makes the
same choice over a list in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.base import ObjectType, PropertySpec, PropertyUpdate, RecordFailure, WriteResult
from closedloop.connectors.salesforce.bulk_upload import update_from_file
from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.connectors.salesforce.errors import describe as describe_error
from closedloop.connectors.salesforce.fields import SOBJECTS_OF, FieldNames, sobject_of
from closedloop.connectors.salesforce.schema import ensure_fields
from closedloop.connectors.salesforce.spool import BulkSpool, Outcomes, Spill
from closedloop.errors import AuthError, BudgetExhaustedError, FatalAPIError

COLLECTION_LIMIT = 200
TYPE_CHUNKS = 10  # chunks of consecutive same-type records one collections call may hold
BULK_NULL = "#N/A"
# Per-record codes that no later attempt can fix.
PERMANENT = frozenset(
    {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "CANNOT_UPDATE_CONVERTED_LEAD", "MALFORMED_ID"}
)


class SalesforceWriter:
    def __init__(
        self,
        client: SalesforceClient,
        config: SalesforceConfig,
        *,
        property_prefix: str,
        batch_size: int = COLLECTION_LIMIT,
    ) -> None:
        self.client = client
        self.config = config
        self.names = FieldNames(property_prefix, config.field_template, config.field_names)
        self.numeric: set[str] = set()
        self.bulk_jobs = 0
        self.batch_size = max(1, min(batch_size, COLLECTION_LIMIT))
        # Read by the write-back: changes of one object above this many go as one Bulk 2.0 job.
        self.bulk_threshold = config.bulk_threshold

    def calls_for(self, updates: Sequence[PropertyUpdate]) -> list[list[PropertyUpdate]]:
        """``updates`` split into the calls ``write`` makes of them, each to be sent on its own.

        An object with more than ``bulk_threshold`` records gets one list (its Bulk 2.0 job); the
        rest are sorted by object and packed ``batch_size`` to a list, types mixed, at most
        ``TYPE_CHUNKS`` runs of one type each.  Ids of no known object go with the rest (``write``
        fails them).
        """
        by_sobject: dict[str, list[PropertyUpdate]] = {}
        for update in updates:
            by_sobject.setdefault(sobject_of(update.object_id) or "", []).append(update)
        calls: list[list[PropertyUpdate]] = []
        rest: list[PropertyUpdate] = []
        for sobject in sorted(by_sobject):
            items = by_sobject[sobject]
            if sobject and len(items) > self.bulk_threshold:
                calls.append(items)
            else:
                rest.extend(items)
        return calls + pack(rest, self.batch_size)

    def ensure_properties(self, specs: Sequence[PropertySpec], *, group_name: str, group_label: str) -> list[str]:
        """Create missing fields (and grants) as the config allows; raise naming what is still missing."""
        self.numeric = {s.name for s in specs if s.type == "number"}
        report = ensure_fields(
            self.client,
            specs,
            self.names,
            create=self.config.create_fields,
            grant=self.config.grant_field_permissions,
            permission_set=self.config.permission_set,
        )
        if report.missing:
            raise FatalAPIError(report.message())
        return report.created

    def write(self, updates: Sequence[PropertyUpdate]) -> WriteResult:
        result = WriteResult()
        by_sobject: dict[str, list[PropertyUpdate]] = {}
        for update in updates:
            refused = self.refusal(update)
            if refused is not None:
                result.failed.append(refused)
                continue
            by_sobject.setdefault(sobject_of(update.object_id) or "", []).append(update)
        rest: list[PropertyUpdate] = []
        for sobject in sorted(by_sobject):
            items = by_sobject[sobject]
            if len(items) > self.bulk_threshold:
                result.extend(self._guarded(items, partial(self._bulk, sobject)))
            else:
                rest.extend(items)
        for chunk in pack(rest, COLLECTION_LIMIT):
            result.extend(self._guarded(chunk, self._collection))
        return result

    def refusal(self, update: PropertyUpdate) -> RecordFailure | None:
        """Why ``update`` is never sent (an id of another object, a field not closedloop's), or None."""
        sobject = sobject_of(update.object_id)
        if sobject is None or sobject not in SOBJECTS_OF[update.object_type]:
            reason = f"id {update.object_id!r} is not a {'/'.join(SOBJECTS_OF[update.object_type])} id"
            return RecordFailure(update.object_type, update.object_id, reason, retriable=False)
        foreign = [p for p in update.properties if not self.names.owns(p)]
        if foreign:
            reason = f"not closedloop's to write: {', '.join(sorted(foreign))}"
            return RecordFailure(update.object_type, update.object_id, reason, retriable=False)
        return None

    def spool(self) -> BulkSpool:
        """Where the write-back puts each planned update as it comes (instead of ``calls_for``
        with all of them at the end): objects past ``bulk_threshold`` go to a file, not memory."""
        return BulkSpool(self, threshold=self.bulk_threshold, batch_size=self.batch_size)

    def field_names(self, update: PropertyUpdate) -> list[str]:
        return [self.names.field(p) for p in update.properties]

    def write_spill(self, sobject: str, spill: Spill) -> Outcomes:
        """One Bulk 2.0 job from a spilled object's file; outcomes a chunk of records at a time.

        The CSV is written to a file beside the spill and streamed from it (bulk_upload.py), so
        neither the rows nor the CSV text of a 100,000-record job is ever held in memory.
        """
        csv_path = self._bulk_csv(spill)
        refused: str | None = None
        failed: dict[str, str] = {}
        try:
            jobs = [
                update_from_file(self.client, sobject, csv_path, records=spill.count, poll_s=self.config.bulk_poll_s)
            ]
            self.bulk_jobs += 1
            failed = self._job_failures(sobject, jobs)
        except (AuthError, BudgetExhaustedError):
            raise
        except FatalAPIError as exc:  # the whole job refused: its records fail, not the run
            refused = str(exc)
        finally:
            csv_path.unlink(missing_ok=True)
        for chunk in spill.read():
            if refused is not None:
                out_chunk = WriteResult(
                    failed=[RecordFailure(u.object_type, u.object_id, refused, retriable=False) for u in chunk]
                )
            else:
                out_chunk = self._job_outcome(chunk, failed)
            yield chunk, out_chunk

    def _bulk_csv(self, spill: Spill) -> Path:
        """The spill as a Bulk 2.0 CSV file beside it: ``Id`` and every field any record sets."""
        csv_path = spill.path.with_suffix(".csv")
        with csv_path.open("w", encoding="utf-8", newline="") as out:
            rows = csv.DictWriter(out, fieldnames=["Id", *spill.fields], lineterminator="\n")
            rows.writeheader()
            for chunk in spill.read():
                rows.writerows(self._bulk_row(u) for u in chunk)
        return csv_path

    def _guarded(self, items: list[PropertyUpdate], send: Callable[[list[PropertyUpdate]], WriteResult]) -> WriteResult:
        """A whole call refused (a field deleted by an admin, a bad request) fails its records, not the run."""
        try:
            return send(items)
        except (AuthError, BudgetExhaustedError):
            raise
        except FatalAPIError as exc:
            return WriteResult(
                failed=[RecordFailure(u.object_type, u.object_id, str(exc), retriable=False) for u in items]
            )

    def _fields(self, update: PropertyUpdate) -> dict[str, Any]:
        return {self.names.field(p): self._json_value(p, v) for p, v in update.properties.items()}

    def _json_value(self, prop: str, value: str) -> Any:
        if value == "":
            return None
        if prop in self.numeric:
            try:
                return float(value)
            except ValueError:
                return value
        return value

    def _collection(self, items: list[PropertyUpdate]) -> WriteResult:
        """One PATCH for records of any of the objects, in the order given (already packed)."""
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": sobject_of(u.object_id)}, "id": u.object_id, **self._fields(u)} for u in items
            ],
        }
        answer = self.client.call(
            "PATCH composite/sobjects", lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body)
        )
        results = answer if isinstance(answer, list) else []
        out = WriteResult()
        for position, update in enumerate(items):
            saved = results[position] if position < len(results) and isinstance(results[position], dict) else None
            if saved is not None and saved.get("success") is True:
                out.written.append(update)
                continue
            code, message = describe_error(list((saved or {}).get("errors") or []))
            reason = f"{code}: {message}" if saved is not None else "no SaveResult for this record"
            out.failed.append(
                RecordFailure(update.object_type, update.object_id, reason[:500], retriable=code not in PERMANENT)
            )
        return out

    def _bulk_row(self, update: PropertyUpdate) -> dict[str, Any]:
        return {"Id": update.object_id, **{k: (BULK_NULL if v is None else v) for k, v in self._fields(update).items()}}

    def _bulk(self, sobject: str, items: list[PropertyUpdate]) -> WriteResult:
        rows = [self._bulk_row(u) for u in items]
        # One job per call: a job that failed part-way is not re-sent whole by the retry (the
        # records it did update are idempotent anyway, PATCH of the same values).
        jobs = self.client.call(
            f"Bulk 2.0 update {sobject}",
            lambda sf: getattr(sf.bulk2, sobject).update(records=rows, wait=self.config.bulk_poll_s),
        )
        self.bulk_jobs += len(jobs)
        return self._job_outcome(items, self._job_failures(sobject, jobs))

    def _job_failures(self, sobject: str, jobs: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Record id -> reason, from the failed and unprocessed rows of jobs that did not all succeed."""
        failed: dict[str, str] = {}
        for job in jobs:
            if int(job.get("numberRecordsFailed") or 0) == 0 and int(job.get("numberRecordsProcessed") or 0) == int(
                job.get("numberRecordsTotal") or 0
            ):
                continue
            job_id = str(job["job_id"])
            failed_csv = self.client.call(
                "GET jobs/ingest/{id}/failedResults",
                lambda sf, j=job_id: getattr(sf.bulk2, sobject).get_failed_records(j),  # type: ignore[misc]
            )
            for row in csv.DictReader(io.StringIO(failed_csv or "")):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                failed[record_id] = (row.get("sf__Error") or "failed in the Bulk 2.0 job")[:500]
            unprocessed = self.client.call(
                "GET jobs/ingest/{id}/unprocessedrecords",
                lambda sf, j=job_id: getattr(sf.bulk2, sobject).get_unprocessed_records(j),  # type: ignore[misc]
            )
            for row in csv.DictReader(io.StringIO(unprocessed or "")):
                failed.setdefault(row.get("Id") or "", "not processed by the Bulk 2.0 job")
        return failed

    @staticmethod
    def _job_outcome(items: Sequence[PropertyUpdate], failed: dict[str, str]) -> WriteResult:
        out = WriteResult()
        for update in items:
            if update.object_id in failed:
                reason = failed[update.object_id]
                code = reason.split(":", 1)[0]
                out.failed.append(
                    RecordFailure(update.object_type, update.object_id, reason, retriable=code not in PERMANENT)
                )
            else:
                out.written.append(update)
        return out

    def read_properties(
        self, object_type: ObjectType, object_ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, str | None]]:
        from closedloop.connectors.salesforce.schema import read_values

        fields = {p: self.names.field(p) for p in properties}
        return read_values(self.client, object_ids, fields, numeric=self.numeric)


def pack(updates: Sequence[PropertyUpdate], size: int) -> list[list[PropertyUpdate]]:
    """Records sorted by object (stable), ``size`` to a call, a call never holding more than
    ``TYPE_CHUNKS`` runs of one object (Salesforce refuses an 11th chunk in one request)."""
    ordered = sorted(updates, key=lambda u: sobject_of(u.object_id) or "")
    calls: list[list[PropertyUpdate]] = []
    current: list[PropertyUpdate] = []
    runs = 0
    for update in ordered:
        new_run = not current or sobject_of(current[-1].object_id) != sobject_of(update.object_id)
        if current and (len(current) >= size or (new_run and runs >= TYPE_CHUNKS)):
            calls.append(current)
            current, runs, new_run = [], 0, True
        current.append(update)
        runs += new_run
    if current:
        calls.append(current)
    return calls
