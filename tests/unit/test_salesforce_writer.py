"""The Salesforce writer: Collections answers per record, the Bulk 2.0 path, and what is sent.

The org is a fake at simple-salesforce's surface (``restful`` and ``bulk2``); the client and
writer are the real ones.
"""

from __future__ import annotations

import csv
import gc
import io
from pathlib import Path
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


def live_updates() -> int:
    """PropertyUpdate objects alive in this process (each one a planned record held in memory)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is PropertyUpdate)


class FakeSession:
    """The upload of a streamed Bulk 2.0 CSV: the body must be a file, not text built in memory."""

    def __init__(self, org: FakeOrg) -> None:
        self.org = org

    def request(self, method: str, url: str, headers: dict[str, str], data: Any) -> Any:
        assert (method, url) == ("PUT", self.org.bulk2_url + "ingest/750000000000001AAA/batches")
        assert headers["Content-Type"] == "text/csv" and hasattr(data, "read")
        self.org.live_at_upload.append(live_updates())
        rows = list(csv.DictReader(io.StringIO(data.read().decode("utf-8"))))
        sobject = self.org.jobs[-1]["object"]
        self.org.bulk_rows.append((sobject, rows))
        return Created()


class Created:
    status_code = 201


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
        self.live_at_upload: list[int] = []
        self.jobs: list[Any] = []
        self.session = FakeSession(self)
        self.headers = {"Authorization": "Bearer s"}
        self.bulk2_url = "https://org.example/services/data/v59.0/jobs/"
        self.bulk2 = FakeBulk2(self)

    def restful(self, path: str, method: str = "GET", json: Any = None) -> Any:
        if path.startswith("jobs/ingest"):  # a Bulk 2.0 job's lifecycle, the CSV streamed (FakeSession)
            if method == "POST":
                self.jobs.append(json)
                return {"id": "750000000000001AAA", "state": "Open"}
            if method == "PATCH":
                self.jobs.append(json)
                return None
            _sobject, rows = self.bulk_rows[-1]
            failed = sum(1 for r in rows if r["Id"] in self.refuse)
            return {"state": "JobComplete", "numberRecordsProcessed": len(rows), "numberRecordsFailed": failed}
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
    [body] = org.collection_bodies  # one call: Collections take mixed types
    assert [(r["attributes"]["type"], r["id"]) for r in body["records"]] == [
        ("Contact", "003000000000000001"),
        ("Lead", lead(1)),
        ("Opportunity", "006000000000000001"),
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


def contact(i: int) -> str:
    return f"003{i:015d}"


def opportunity(i: int) -> str:
    return f"006{i:015d}"


def runs(records: list[dict[str, Any]]) -> int:
    """Chunks of consecutive same-type records, as Salesforce processes a collections call."""
    types = [r["attributes"]["type"] for r in records]
    return sum(1 for i, t in enumerate(types) if i == 0 or types[i - 1] != t)


def test_mixed_types_go_200_a_call_sorted_by_type_with_results_mapped_to_their_ids() -> None:
    org = FakeOrg()
    # Interleaved, as the write-back's chunks arrive: a call per type would send 5 calls here.
    ids = [f(i) for i in range(150) for f in (lead, contact)] + [opportunity(i) for i in range(130)]
    org.refuse = {contact(17): "UNABLE_TO_LOCK_ROW", opportunity(129): "ENTITY_IS_DELETED", lead(0): "MALFORMED_ID"}
    updates = [
        PropertyUpdate("deals" if i.startswith("006") else "contacts", i, {"closedloop_touch_count": str(n)})
        for n, i in enumerate(ids)
    ]
    result = writer(org).write(updates)
    assert [len(b["records"]) for b in org.collection_bodies] == [200, 200, 30]
    for body in org.collection_bodies:
        assert runs(body["records"]) <= 3  # sorted: one run per type
        for record in body["records"]:
            assert record["attributes"]["type"] == {"00Q": "Lead", "003": "Contact", "006": "Opportunity"}[
                record["id"][:3]
            ]
    sent = [r["id"] for b in org.collection_bodies for r in b["records"]]
    assert sorted(sent) == sorted(ids)
    value = {r["id"]: r["Closedloop_Touch_Count__c"] for b in org.collection_bodies for r in b["records"]}
    assert value[contact(17)] == float(ids.index(contact(17)))  # each record keeps its own values
    assert {(f.object_id, f.retriable) for f in result.failed} == {
        (contact(17), True),
        (opportunity(129), False),
        (lead(0), False),
    }
    assert {u.object_id for u in result.written} == set(ids) - set(org.refuse)
    assert {u.object_type for u in result.written if u.object_id.startswith("006")} == {"deals"}


def test_pack_never_puts_more_than_ten_type_runs_or_size_records_in_a_call() -> None:
    from closedloop.connectors.salesforce.writer import TYPE_CHUNKS, pack

    makers = (lead, contact, opportunity)
    updates = [PropertyUpdate("contacts", makers[i % 3](i), {}) for i in range(1000)]
    for size in (1, 7, 200):
        calls = pack(updates, size)
        assert all(len(c) <= size for c in calls)
        assert sorted(u.object_id for c in calls for u in c) == sorted(u.object_id for u in updates)
        for call in calls:
            types = [u.object_id[:3] for u in call]
            assert sum(1 for i, t in enumerate(types) if i == 0 or types[i - 1] != t) <= TYPE_CHUNKS
    assert len(pack(updates, 200)) == 5  # full calls whatever the mix


def test_calls_for_gives_one_bulk_job_per_object_above_the_threshold_and_packs_the_rest() -> None:
    org = FakeOrg()
    out = writer(org, bulk_threshold=300)
    updates = (
        [PropertyUpdate("contacts", lead(i), {"closedloop_journey": "x"}) for i in range(301)]
        + [PropertyUpdate("contacts", contact(i), {"closedloop_journey": "x"}) for i in range(300)]
        + [PropertyUpdate("deals", opportunity(i), {"closedloop_primary_channel": "x"}) for i in range(150)]
    )
    calls = out.calls_for(updates)
    # Lead crosses the threshold (one job); Contact at the threshold and Opportunity pack 200 a call.
    assert [len(c) for c in calls] == [301, 200, 200, 50]
    assert {u.object_id[:3] for u in calls[0]} == {"00Q"}
    for call in calls:
        out.write(call)
    assert [(s, len(rows)) for s, rows in org.bulk_rows] == [("Lead", 301)]
    assert out.bulk_jobs == 1
    assert sum(len(b["records"]) for b in org.collection_bodies) == 450
    assert len(org.collection_bodies) == 3


def test_a_configured_batch_size_is_kept_and_capped_at_200() -> None:
    config = SalesforceConfig(auth="session", access_token="x", instance_url="https://org.example")
    updates = [PropertyUpdate("contacts", lead(i), {}) for i in range(450)]
    small = SalesforceWriter(OrgClient(FakeOrg()), config, property_prefix="closedloop_", batch_size=50)
    assert [len(c) for c in small.calls_for(updates)] == [50] * 9
    big = SalesforceWriter(OrgClient(FakeOrg()), config, property_prefix="closedloop_", batch_size=500)
    assert [len(c) for c in big.calls_for(updates)] == [200, 200, 50]


class DescribingOrg(FakeOrg):
    def __init__(self) -> None:
        super().__init__()
        self.describes: list[str] = []

    def restful(self, path: str, method: str = "GET", json: Any = None) -> Any:
        if path.endswith("/describe"):
            self.describes.append(path)
            return {"fields": [{"name": "Id"}, {"name": f"N{len(self.describes)}"}]}
        return super().restful(path, method, json)


def test_describe_is_asked_once_per_object_even_from_threads_until_forgotten() -> None:
    import threading

    org = DescribingOrg()
    client = OrgClient(org)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(client.describe("Opportunity"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert org.describes == ["sobjects/Opportunity/describe"]
    assert all(answer is seen[0] for answer in seen)
    client.describe("Lead")
    assert org.describes[-1] == "sobjects/Lead/describe"
    client.forget_describe("Opportunity")  # fields created: the next look asks the org again
    assert client.describe("Opportunity")["fields"][1]["name"] == "N3"
    assert len(org.describes) == 3


def test_the_spool_keeps_past_the_threshold_on_disk_and_sends_the_same_calls_as_calls_for() -> None:
    """The write-back hands the spool 100,000 people's updates over minutes: past the threshold
    an object's updates must leave memory (a file), and the Bulk job be uploaded from a file."""
    org = FakeOrg()
    out = writer(org, bulk_threshold=100)
    org.refuse = {lead(7): "FIELD_CUSTOM_VALIDATION_EXCEPTION: no"}
    contacts = [f"003{i:015d}" for i in range(30)]
    baseline = live_updates()
    with out.spool() as spool:
        for i in range(3_000):
            spool.add(PropertyUpdate("contacts", lead(i), {"closedloop_touch_count": str(i), "closedloop_journey": ""}))
        for cid in contacts:
            spool.add(PropertyUpdate("contacts", cid, {"closedloop_touch_count": "1"}))
        spool.add(PropertyUpdate("deals", lead(5), {"closedloop_touch_count": "1"}))  # a Lead id is no deal
        # Held: the 30 Contacts (under the threshold) and the refused one; the Leads are on disk.
        assert spool.held() == 31
        assert live_updates() - baseline <= 31
        outcomes = [(updates, result) for call in spool.calls() for updates, result in call()]
        assert not list(Path(spool._dir.name).glob("*.csv"))  # the CSV is removed once uploaded
    assert not Path(spool._dir.name).exists()  # and the spill with the spool
    # While the job was uploaded, nothing but the collections remainder was held.
    assert org.live_at_upload and org.live_at_upload[0] - baseline <= 31
    [(sobject, rows)] = org.bulk_rows
    assert sobject == "Lead" and len(rows) == 3_000 and out.bulk_jobs == 1
    assert [job.get("object") or job.get("state") for job in org.jobs] == ["Lead", "UploadComplete"]
    assert rows[9] == {"Id": lead(9), "Closedloop_Touch_Count__c": "9.0", "Closedloop_Journey__c": "#N/A"}
    assert max(len(updates) for updates, _ in outcomes) <= 200  # outcomes read back a chunk at a time
    failed = [f for _, r in outcomes for f in r.failed]
    written = [u.object_id for _, r in outcomes for u in r.written]
    assert sorted((f.object_id, f.reason.split(":")[0]) for f in failed) == [
        (lead(5), "id '00Q000000000000005' is not a Opportunity id"),
        (lead(7), "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
    ]
    assert len(written) == 3_000 - 1 + 30 and len(set(written)) == len(written)
    # The same calls calls_for chooses: one job for the Leads, the 30 Contacts in one collections call.
    assert [[r["id"] for r in body["records"]] for body in org.collection_bodies] == [contacts]


def test_a_stopped_spool_gives_back_everything_it_did_not_hand_out() -> None:
    out = writer(FakeOrg(), bulk_threshold=3)
    with out.spool() as spool:
        updates = [PropertyUpdate("contacts", lead(i), {"closedloop_touch_count": "1"}) for i in range(5)]
        updates.append(PropertyUpdate("contacts", "00300000000000000A", {"closedloop_touch_count": "2"}))
        for u in updates:
            spool.add(u)
        calls = spool.calls()
        next(calls)  # the Leads' job handed out: sent only once the next call is asked for
        assert sorted(spool.unsent(), key=lambda u: u.object_id) == sorted(updates, key=lambda u: u.object_id)
        next(calls)  # the Contact's call handed out: the Leads' job was taken
        assert list(spool.unsent()) == updates[5:]
    assert list(spool.unsent()) == []
