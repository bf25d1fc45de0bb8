"""The Salesforce writer: Collections answers per record, the Bulk 2.0 path, and what is sent.

The org is a fake at simple-salesforce's surface (``restful`` and ``bulk2``); the client and
writer are the real ones.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import requests

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.base import PropertyUpdate
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.auth import SessionInfo
from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.connectors.salesforce.usage import UsageMeter
from closedloop.connectors.salesforce.writer import SalesforceWriter


class FakeBulkObject:
    def __init__(self, org: FakeOrg, sobject: str) -> None:
        self.org, self.sobject = org, sobject

    def update(self, records: list[dict[str, Any]], wait: float) -> list[dict[str, Any]]:
        self.org.bulk_rows.append((self.sobject, records))
        failed = [r for r in records if r["Id"] in self.org.refuse]
        return [
            {
                "numberRecordsFailed": len(failed),
                "numberRecordsProcessed": len(records),
                "numberRecordsTotal": len(records),
                "job_id": "750000000000001AAA",
            }
        ]

    def get_failed_records(self, job_id: str) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sf__Id", "sf__Error", "Id"])
        for record_id, reason in self.org.refuse.items():
            writer.writerow([record_id, reason, record_id])
        return out.getvalue()

    def get_unprocessed_records(self, job_id: str) -> str:
        return "Id\n"


class FakeBulk2:
    def __init__(self, org: FakeOrg) -> None:
        self.org = org

    def __getattr__(self, name: str) -> FakeBulkObject:
        return FakeBulkObject(self.org, name)


class FakeOrg:
    def __init__(self) -> None:
        self.refuse: dict[str, str] = {}
        self.collection_bodies: list[dict[str, Any]] = []
        self.bulk_rows: list[tuple[str, list[dict[str, Any]]]] = []
        self.bulk2 = FakeBulk2(self)

    def restful(self, path: str, method: str = "GET", json: Any = None) -> Any:
        assert (path, method) == ("composite/sobjects", "PATCH")
        self.collection_bodies.append(json)
        return [
            {
                "id": r["id"],
                "success": False,
                "errors": [{"statusCode": self.refuse[r["id"]].split(":")[0], "message": "no", "fields": []}],
            }
            if r["id"] in self.refuse
            else {"id": r["id"], "success": True, "errors": []}
            for r in json["records"]
        ]


class FakeSignIn:
    def sign_in(self) -> SessionInfo:
        return SessionInfo("s", "https://org.example")


class OrgClient(SalesforceClient):
    def __init__(self, org: FakeOrg) -> None:
        self.org = org
        super().__init__(
            FakeSignIn(), requests.Session(), log=ApiCallLog(), usage=UsageMeter(1.0), sleep=lambda _s: None
        )

    def _build(self, info: SessionInfo) -> Any:
        return self.org


def writer(org: FakeOrg, bulk_threshold: int = 2000) -> SalesforceWriter:
    config = SalesforceConfig(
        auth="session", access_token="x", instance_url="https://org.example", bulk_threshold=bulk_threshold
    )
    out = SalesforceWriter(OrgClient(org), config, property_prefix="closedloop_")
    out.numeric = {"closedloop_touch_count"}
    return out


def lead(i: int) -> str:
    return f"00Q{i:015d}"


def test_collections_send_200_a_call_and_keep_per_record_failures() -> None:
    org = FakeOrg()
    org.refuse = {lead(7): "UNABLE_TO_LOCK_ROW", lead(250): "ENTITY_IS_DELETED"}
    updates = [
        PropertyUpdate("contacts", lead(i), {"closedloop_touch_count": "3", "closedloop_journey": ""})
        for i in range(450)
    ]
    result = writer(org).write(updates)
    assert [len(b["records"]) for b in org.collection_bodies] == [200, 200, 50]
    first = org.collection_bodies[0]
    assert first["allOrNone"] is False
    assert first["records"][0] == {
        "attributes": {"type": "Lead"},
        "id": lead(0),
        "Closedloop_Touch_Count__c": 3.0,
        "Closedloop_Journey__c": None,  # an empty value clears the field
    }
    assert {f.object_id: f.retriable for f in result.failed} == {lead(7): True, lead(250): False}
    assert "UNABLE_TO_LOCK_ROW" in next(f.reason for f in result.failed if f.object_id == lead(7))
    assert len(result.written) == 448


def test_ids_are_sorted_to_their_objects_and_foreign_ids_refused() -> None:
    org = FakeOrg()
    updates = [
        PropertyUpdate("contacts", lead(1), {"closedloop_journey": "a"}),
        PropertyUpdate("contacts", "003000000000000001", {"closedloop_journey": "b"}),
        PropertyUpdate("deals", "006000000000000001", {"closedloop_primary_channel": "x"}),
        PropertyUpdate("deals", lead(2), {"closedloop_primary_channel": "x"}),
        PropertyUpdate("contacts", "001000000000000001", {"closedloop_journey": "c"}),
    ]
    result = writer(org).write(updates)
    assert sorted(b["records"][0]["attributes"]["type"] for b in org.collection_bodies) == [
        "Contact",
        "Lead",
        "Opportunity",
    ]
    assert sorted(f.object_id for f in result.failed) == ["001000000000000001", lead(2)]
    assert not any(f.retriable for f in result.failed)


def test_above_the_threshold_one_bulk_job_and_its_failed_rows() -> None:
    org = FakeOrg()
    org.refuse = {lead(3): "FIELD_CUSTOM_VALIDATION_EXCEPTION:bad"}
    updates = [PropertyUpdate("contacts", lead(i), {"closedloop_journey": "" if i == 0 else f"j{i}"}) for i in range(6)]
    out = writer(org, bulk_threshold=5)
    result = out.write(updates)
    assert org.collection_bodies == []
    [(sobject, rows)] = org.bulk_rows
    assert sobject == "Lead" and len(rows) == 6
    assert rows[0] == {"Id": lead(0), "Closedloop_Journey__c": "#N/A"}  # Bulk's null, not "leave as is"
    assert [f.object_id for f in result.failed] == [lead(3)]
    assert result.failed[0].reason.startswith("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert len(result.written) == 5 and out.bulk_jobs == 1


def test_fields_closedloop_does_not_own_are_never_sent() -> None:
    org = FakeOrg()
    result = writer(org).write(
        [
            PropertyUpdate("contacts", lead(1), {"closedloop_journey": "x"}),
            PropertyUpdate("contacts", lead(2), {"closedloop_journey": "y", "Industry": "Retail"}),
        ]
    )
    [body] = org.collection_bodies
    assert [set(r) - {"attributes", "id"} for r in body["records"]] == [{"Closedloop_Journey__c"}]
    assert [(f.object_id, f.retriable) for f in result.failed] == [(lead(2), False)]
    assert "Industry" in result.failed[0].reason
