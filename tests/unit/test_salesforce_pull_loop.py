"""The one pull loop: resumes a broken query where it stopped, renews once, stops on usage.

The org is a fake behind ``query_all_iter`` (a list of rows and a SOQL filter on the cursor
field); the client is the real one, built on a fake sign-in, so renewal and retries are ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.auth import SessionInfo
from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.connectors.salesforce.source import SalesforceSource
from closedloop.connectors.salesforce.usage import UsageMeter
from closedloop.errors import AuthError, BudgetExhaustedError
from closedloop.records import ContactRecord, DeletedRecord

NOW = datetime(2024, 6, 1, tzinfo=UTC)
EXPIRED = b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]'


class FakeOrg:
    """Contacts with SystemModstamps, some sharing a second; faults raised after N rows."""

    def __init__(self, n: int) -> None:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        self.rows: list[dict[str, Any]] = [
            {
                "Id": f"003{i:015d}",
                "CreatedDate": start.isoformat(),
                # Three rows per second, with milliseconds, as the org stores them.
                "SystemModstamp": (start + timedelta(seconds=i // 3, milliseconds=i % 3)).isoformat(),
                "IsDeleted": False,
                "Email": f"p{i}@example.com",
            }
            for i in range(n)
        ]
        self.faults: list[tuple[int, Exception]] = []  # (after this many rows of a query, raise)
        self.queries: list[str] = []
        self.sessions: list[str] = []

    def query_all_iter(self, soql: str, session: str, include_deleted: bool) -> Iterator[dict[str, Any]]:
        self.queries.append(soql)
        self.sessions.append(session)
        match = re.search(r"SystemModstamp >= (\S+)", soql)
        assert match, soql
        since = datetime.fromisoformat(match.group(1))
        rows = [
            r
            for r in self.rows
            if datetime.fromisoformat(r["SystemModstamp"]) >= since and r["IsDeleted"] == ("IsDeleted = true" in soql)
        ]
        rows.sort(key=lambda r: r["SystemModstamp"])
        fault = self.faults.pop(0) if self.faults else None
        for count, row in enumerate(rows):
            if fault is not None and count == fault[0]:
                raise fault[1]
            yield row


class FakeSF:
    def __init__(self, org: FakeOrg, session: str) -> None:
        self.org, self.session = org, session

    def query_all_iter(self, soql: str, include_deleted: bool = False, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert kwargs["headers"] == {"Sforce-Query-Options": "batchSize=200"}
        return self.org.query_all_iter(soql, self.session, include_deleted)


class FakeSignIn:
    def __init__(self) -> None:
        self.sign_ins = 0

    def sign_in(self) -> SessionInfo:
        self.sign_ins += 1
        return SessionInfo(f"session-{self.sign_ins}", "https://org.example")


class OrgClient(SalesforceClient):
    def __init__(self, org: FakeOrg, usage: UsageMeter) -> None:
        self.org = org
        self.sleeps: list[float] = []
        super().__init__(FakeSignIn(), requests.Session(), log=ApiCallLog(), usage=usage, sleep=self.sleeps.append)

    def _build(self, info: SessionInfo) -> Any:
        return FakeSF(self.org, info.session_id)


def config() -> SalesforceConfig:
    return SalesforceConfig(
        auth="session", access_token="x", instance_url="https://org.example", query_batch_size=200, multicurrency=False
    )


def pull(
    org: FakeOrg, cursor: dict[str, Any] | None = None, *, share: float = 1.0
) -> tuple[list[Any], list[Any], OrgClient]:
    client = OrgClient(org, UsageMeter(share))
    batches = list(SalesforceSource(client, config()).pull("salesforce.contacts", cursor, now=NOW))
    return batches, [r for b in batches for r in b.records], client


def test_every_row_once_in_pages_of_the_batch_size() -> None:
    org = FakeOrg(650)
    batches, records, _ = pull(org)
    assert [r.crm_id for r in records] == [r["Id"] for r in org.rows]
    assert [len(b.records) for b in batches] == [200, 200, 200, 50]  # no deletions: no batch for them
    assert all(isinstance(r, ContactRecord) for r in records)


def test_a_query_broken_mid_way_resumes_after_the_last_row_read() -> None:
    org = FakeOrg(650)
    org.faults = [(301, SalesforceGeneralError("u", 503, "query", b"")), (5, requests.ConnectionError("reset"))]
    _, records, client = pull(org)
    assert [r.crm_id for r in records] == [r["Id"] for r in org.rows]  # none lost, none twice
    assert len(client.sleeps) == 2
    # The restarts asked from the second of the last row read, not from the beginning.
    assert "2024-01-01T00:01:40+00:00" in org.queries[1]


def test_expired_session_is_renewed_once_then_refused() -> None:
    org = FakeOrg(300)
    org.faults = [(250, SalesforceExpiredSession("u", 401, "query", EXPIRED))]
    _, records, _ = pull(org)
    assert len(records) == 300
    assert org.sessions[:2] == ["session-1", "session-2"]
    org2 = FakeOrg(300)
    org2.faults = [(10, SalesforceExpiredSession("u", 401, "query", EXPIRED))] * 2
    with pytest.raises(AuthError, match="after renewing the session once"):
        pull(org2)


def test_next_run_reads_only_what_changed_and_deletions() -> None:
    org = FakeOrg(90)
    batches, _, _ = pull(org)
    cursor = batches[-1].cursor
    assert cursor["deleted"]["since"] == (NOW - timedelta(minutes=5)).isoformat()
    org.rows[10]["SystemModstamp"] = datetime(2024, 7, 1, tzinfo=UTC).isoformat()
    org.rows[20].update(IsDeleted=True, SystemModstamp=datetime(2024, 7, 2, tzinfo=UTC).isoformat())
    org.rows.append({**org.rows[0], "Id": "003NEW", "SystemModstamp": org.rows[89]["SystemModstamp"]})
    _, records, _ = pull(org, cursor)
    changed = [r.crm_id for r in records if isinstance(r, ContactRecord)]
    assert sorted(changed) == sorted(["003NEW", str(org.rows[10]["Id"])])
    assert [r.crm_id for r in records if isinstance(r, DeletedRecord)] == [org.rows[20]["Id"]]


def test_usage_past_the_share_stops_before_the_next_page() -> None:
    org = FakeOrg(650)
    client = OrgClient(org, UsageMeter(0.5))
    source = SalesforceSource(client, config())
    pulled = source.pull("salesforce.contacts", None, now=NOW)
    first = next(pulled)
    client.usage.observe("api-usage=600/1000")
    with pytest.raises(BudgetExhaustedError, match="600 of the org's 1,000"):
        next(pulled)
    assert len(first.records) == 200


def test_unparseable_rows_are_quarantined_not_dropped() -> None:
    org = FakeOrg(5)
    org.rows[2]["CreatedDate"] = "garbage"
    batches, records, _ = pull(org)
    quarantined = [q for b in batches for q in b.quarantined]
    assert [q.record_key for q in quarantined] == [org.rows[2]["Id"]]
    assert "CreatedDate" in quarantined[0].reason
    assert len(records) == 4
