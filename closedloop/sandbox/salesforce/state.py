"""The emulated org's data and bookkeeping, in memory and thread-safe under one re-entrant lock.

Rows are plain dicts keyed by canonical field names, per sObject, in id order (ids are issued
in order, so insertion order is id order, which is also Salesforce's order without ORDER BY).
Deletion only sets ``IsDeleted``: the row stays for queryAll and getDeleted, as in the Recycle
Bin.  The state also holds what the app's gate needs: sessions, the daily API allocation and
its usage, the API user's permission sets, and injected per-record failures.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from closedloop.sandbox.salesforce.ids import PREFIXES, IdIssuer, to_18
from closedloop.sandbox.salesforce.schema import (
    CUSTOM_DATE_FIELDS,
    CUSTOM_TEXT_FIELDS,
    FieldDef,
    ObjectDef,
    build_catalog,
)

if TYPE_CHECKING:
    from closedloop.sandbox.company import Company

Row = dict[str, Any]
SF_USERNAME = "integration@closedloop.sandbox"
PERMISSION_SET = "Closedloop_Integration"
_BY_PREFIX = {prefix: name for name, prefix in PREFIXES.items()}


def _compound_name(sobject: str, row: Row) -> None:
    if sobject in ("Lead", "Contact"):
        row["Name"] = " ".join(part for part in (row.get("FirstName"), row.get("LastName")) if part) or None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SalesforceState:
    """One org.  Public methods lock; handlers reading several things hold ``lock`` themselves."""

    def __init__(self, *, multicurrency: bool = False, daily_limit: int = 100_000,
                 now: Callable[[], datetime] = _utc_now) -> None:
        self.lock = threading.RLock()
        self.now = now
        self.multicurrency = multicurrency
        self.catalog = build_catalog(multicurrency=multicurrency)
        self.ids = IdIssuer()
        self.rows: dict[str, dict[str, Row]] = {obj.name: {} for obj in self.catalog.values()}
        self.deleted_at: dict[str, datetime] = {}
        self.daily_limit = daily_limit
        self.api_usage = 0
        self.bulk_query_jobs = 0
        self.bulk_batches = 0
        self._sessions: set[str] = set()
        self._failures: dict[str, list[tuple[str, str, list[str]]]] = {}
        self.failed_attempts: Counter[str] = Counter()
        epoch = datetime(2020, 1, 1, tzinfo=UTC)
        self.org_id = self.ids.next("Organization")
        self.user_id = self.insert("User", {"Username": SF_USERNAME, "Name": "Closedloop Integration",
                                            "Email": SF_USERNAME, "IsActive": True}, at=epoch)["Id"]
        self.permission_set_id = self.insert("PermissionSet", {
            "Name": PERMISSION_SET, "Label": "Closedloop Integration", "IsOwnedByProfile": False}, at=epoch)["Id"]
        self.insert("PermissionSetAssignment", {"PermissionSetId": self.permission_set_id,
                                                "AssigneeId": self.user_id}, at=epoch)

    # ---- catalog and visibility ------------------------------------------------------------

    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef | None:
        obj = self.catalog.get(name.lower())
        return obj if obj is not None and obj.tooling == tooling else None

    def _granted(self, obj: ObjectDef, fd: FieldDef, permission: str) -> bool:
        assigned = {r["PermissionSetId"] for r in self.rows["PermissionSetAssignment"].values()
                    if r["AssigneeId"] == self.user_id and not r["IsDeleted"]}
        wanted = f"{obj.name}.{fd.name}".lower()
        return any(r["ParentId"] in assigned and not r["IsDeleted"] and r[permission]
                   and str(r["Field"]).lower() == wanted for r in self.rows["FieldPermissions"].values())

    def visible(self, obj: ObjectDef, fd: FieldDef) -> bool:
        """A field created at run time is invisible to the API user until FieldPermissions grant Read."""
        with self.lock:
            return not fd.needs_grant or self._granted(obj, fd, "PermissionsRead")

    def editable(self, obj: ObjectDef, fd: FieldDef) -> bool:
        with self.lock:
            if not fd.updateable:
                return False
            return not fd.needs_grant or self._granted(obj, fd, "PermissionsEdit")

    # ---- rows ------------------------------------------------------------------------------

    def insert(self, sobject: str, fields: dict[str, Any], *, at: datetime | None = None,
               modified: datetime | None = None) -> Row:
        """A new row with system fields; ``modified`` (default ``at``) sets LastModifiedDate/SystemModstamp."""
        with self.lock:
            obj = self.catalog[sobject.lower()]
            created = at or self.now()
            row: Row = {f.name: None for f in obj.fields.values()}
            row.update({"Id": self.ids.next(obj.name), "IsDeleted": False, "CreatedDate": created,
                        "CreatedById": getattr(self, "user_id", None)})
            if "LastModifiedDate" in row:
                row["LastModifiedDate"] = modified or created
                row["LastModifiedById"] = row["CreatedById"]
            if "SystemModstamp" in row:
                row["SystemModstamp"] = modified or created
            for name in ("IsConverted", "IsWon", "IsClosed", "HasResponded", "IsPrimary", "IsActive"):
                if name in row and row[name] is None:
                    row[name] = False
            if "OwnerId" in row:
                row["OwnerId"] = getattr(self, "user_id", None)
            row.update(fields)
            _compound_name(obj.name, row)
            self.rows[obj.name][row["Id"]] = row
            return row

    def sobject_of(self, record_id: str) -> str | None:
        return _BY_PREFIX.get(record_id[:3])

    def get(self, sobject: str, record_id: str, *, include_deleted: bool = False) -> Row | None:
        with self.lock:
            row = self.rows.get(sobject, {}).get(to_18(record_id))
            if row is None or (row["IsDeleted"] and not include_deleted):
                return None
            return row

    def fetch(self, sobject: str, record_id: str) -> Row | None:
        """For relationship paths: a parent, deleted or not (as Salesforce returns ids of deleted contacts)."""
        return self.rows.get(sobject, {}).get(record_id)

    def all_rows(self, sobject: str, *, include_deleted: bool = False) -> Iterable[Row]:
        with self.lock:
            rows = list(self.rows[sobject].values())
        return rows if include_deleted else [r for r in rows if not r["IsDeleted"]]

    def update(self, sobject: str, record_id: str, fields: dict[str, Any], *, at: datetime | None = None) -> Row:
        """Apply already-checked values; every update moves LastModifiedDate and SystemModstamp."""
        with self.lock:
            row = self.rows[sobject][to_18(record_id)]
            moment = at or self.now()
            row.update(fields)
            _compound_name(sobject, row)
            if "LastModifiedDate" in row:
                row["LastModifiedDate"] = moment
                row["LastModifiedById"] = self.user_id
            if "SystemModstamp" in row:
                row["SystemModstamp"] = moment
            return row

    def delete(self, sobject: str, record_id: str, *, at: datetime | None = None) -> None:
        """Into the Recycle Bin: gone from query, still in queryAll (IsDeleted) and getDeleted."""
        with self.lock:
            row = self.rows[sobject][to_18(record_id)]
            moment = at or self.now()
            row["IsDeleted"] = True
            if "SystemModstamp" in row:
                row["SystemModstamp"] = moment
            self.deleted_at[row["Id"]] = moment

    def convert_lead(self, lead_id: str, *, at: datetime | None = None, account_id: str | None = None,
                     opportunity_id: str | None = None, contact_id: str | None = None) -> str:
        """Convert a Lead: a new Contact (or the one given) carrying its fields; returns the Contact id."""
        with self.lock:
            moment = at or self.now()
            lead = self.rows["Lead"][to_18(lead_id)]
            if lead["IsConverted"]:
                raise ValueError(f"lead {lead_id} is already converted")
            if account_id is None:
                account_id = self.insert("Account", {"Name": lead["Company"] or lead["LastName"]}, at=moment)["Id"]
            if contact_id is None:
                carried = {k: lead[k] for k in ("FirstName", "LastName", "Email", "LeadSource", *CUSTOM_TEXT_FIELDS,
                                                *CUSTOM_DATE_FIELDS)}
                if self.multicurrency:
                    carried["CurrencyIsoCode"] = lead["CurrencyIsoCode"]
                contact_id = self.insert("Contact", {**carried, "AccountId": account_id}, at=moment)["Id"]
            self.update("Lead", lead["Id"], {
                "IsConverted": True, "ConvertedDate": moment.date(), "ConvertedContactId": contact_id,
                "ConvertedAccountId": account_id, "ConvertedOpportunityId": opportunity_id,
                "Status": "Closed - Converted"}, at=moment)
            for member in self.rows["CampaignMember"].values():
                if member["LeadId"] == lead["Id"] and member["ContactId"] is None:
                    member["ContactId"] = contact_id
            return contact_id

    # ---- custom fields ---------------------------------------------------------------------

    def add_custom_field(self, obj: ObjectDef, fd: FieldDef, metadata: dict[str, Any]) -> Row:
        with self.lock:
            obj.add(fd)
            for row in self.rows[obj.name].values():
                row.setdefault(fd.name, None)
            return self.insert("CustomField", {
                "DeveloperName": fd.name.removesuffix("__c"), "TableEnumOrId": obj.name,
                "FullName": f"{obj.name}.{fd.name}", "NamespacePrefix": None, "Metadata": metadata})

    def grant_field(self, full_name: str, *, edit: bool = True) -> Row:
        """What an admin does in Setup: FieldPermissions on the integration permission set."""
        sobject = full_name.partition(".")[0]
        return self.insert("FieldPermissions", {"ParentId": self.permission_set_id, "SobjectType": sobject,
                                                "Field": full_name, "PermissionsRead": True, "PermissionsEdit": edit})

    # ---- sessions and the daily allocation -------------------------------------------------

    def issue_session(self) -> str:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
        with self.lock:
            self._sessions.add(token)
        return token

    def session_valid(self, token: str) -> bool:
        with self.lock:
            return token in self._sessions

    def expire_sessions(self) -> None:
        """Every session issued so far now answers 401 INVALID_SESSION_ID (new logins work)."""
        with self.lock:
            self._sessions.clear()

    def set_daily_limit(self, limit: int, *, used: int | None = None) -> None:
        with self.lock:
            self.daily_limit = limit
            if used is not None:
                self.api_usage = used

    def count_call(self) -> bool:
        """One API call against the allocation; False (and not counted) once it is spent."""
        with self.lock:
            if self.api_usage >= self.daily_limit:
                return False
            self.api_usage += 1
            return True

    def limit_info(self) -> str:
        with self.lock:
            return f"api-usage={self.api_usage}/{self.daily_limit}"

    # ---- injected per-record failures ------------------------------------------------------

    def fail_records(self, ids: Iterable[str], *, code: str = "UNABLE_TO_LOCK_ROW",
                     message: str = "unable to obtain exclusive access to this record or 1 records",
                     times: int = 1, fields: list[str] | None = None) -> None:
        """The next ``times`` writes of each id (collections or Bulk 2.0) fail with this error."""
        with self.lock:
            for record_id in ids:
                self._failures[to_18(record_id)] = [(code, message, list(fields or []))] * times

    def take_failure(self, record_id: str) -> tuple[str, str, list[str]] | None:
        with self.lock:
            queue = self._failures.get(record_id)
            if not queue:
                return None
            self.failed_attempts[record_id] += 1
            return queue.pop(0)

    # ---- loading ---------------------------------------------------------------------------

    def load_company(self, company: Company) -> None:
        from closedloop.sandbox.salesforce.load import load_company

        with self.lock:
            load_company(self, company)
