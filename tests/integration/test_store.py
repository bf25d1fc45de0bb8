"""The store on SQLite and PostgreSQL: migrations, UTC, idempotent ingest, diffs, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

from closedloop.records import (
    Batch,
    ContactRecord,
    DealContactLink,
    DealRecord,
    DealStageEvent,
    QuarantinedRecord,
    WebSessionRecord,
)
from closedloop.store import models as m
from closedloop.store.diff import replace_scope
from closedloop.store.engine import migrate, session_scope
from closedloop.store.ingest import store_batch
from closedloop.store.upsert import upsert
from closedloop.sync.cursors import load_cursor

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrate_twice_is_a_no_op(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is not None


def test_times_round_trip_as_aware_utc(engine: Engine) -> None:
    eastern = datetime(2026, 3, 1, 7, 0, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))
    with session_scope(engine) as s:
        store_batch(s, Batch("hubspot.contacts", [ContactRecord("1", eastern, eastern)], {"since_ms": 1}), now=T0)
    with Session(engine) as s:
        contact = s.get(m.Contact, "1")
    assert contact is not None
    assert contact.created_at.tzinfo is not None
    assert contact.created_at == datetime(2026, 3, 1, 7, 0, tzinfo=UTC)


def _batch() -> Batch:
    contact = ContactRecord(
        "10", T0, T0, email_hash="ab" * 32, ga_client_ids=("111.1", "222.2"), click_ids={"gclid": "Cj0"}
    )
    deal = DealRecord(
        "d1",
        T0,
        T0,
        name="Acme",
        pipeline="default",
        stage="closedwon",
        amount=5000.0,
        closed_at=T0 + timedelta(days=9),
        is_won=True,
        is_closed=True,
    )
    return Batch(
        "hubspot.deals",
        [
            contact,
            deal,
            DealStageEvent("d1", "appointmentscheduled", T0, "default"),
            DealStageEvent("d1", "closedwon", T0 + timedelta(days=9), "default"),
            DealContactLink("d1", "10"),
            WebSessionRecord("111.1", T0 - timedelta(days=2), "google", "cpc", "brand", "/pricing"),
        ],
        {"since_ms": 42, "ids_at_since": ["d1"]},
    )


def test_ingest_is_idempotent_and_commits_the_cursor(engine: Engine) -> None:
    for _ in range(2):  # a replayed batch changes nothing
        with session_scope(engine) as s:
            counts = store_batch(s, _batch(), now=T0)
    assert counts["contacts"] == 1 and counts["deals"] == 1 and counts["web_sessions"] == 1
    assert _count(engine, m.Contact) == 1
    assert _count(engine, m.ContactIdentity) == 4  # two client ids, email hash, gclid
    assert _count(engine, m.DealStageEvent) == 2
    assert _count(engine, m.DealContact) == 1
    assert _count(engine, m.WebSession) == 1
    with Session(engine) as s:
        assert load_cursor(s, "hubspot.deals") == {"since_ms": 42, "ids_at_since": ["d1"]}
        assert load_cursor(s, "hubspot.contacts") is None


def test_removed_identity_and_association_stop_matching(engine: Engine) -> None:
    with session_scope(engine) as s:
        store_batch(s, _batch(), now=T0)
        store_batch(s, Batch("hubspot.contacts", [ContactRecord("10", T0, T0, ga_client_ids=("111.1",))], {}), now=T0)
        store_batch(s, Batch("hubspot.deals", [DealRecord("d1", T0, T0)], {}), now=T0)
    with Session(engine) as s:
        kinds = sorted(k for (k,) in s.execute(select(m.ContactIdentity.kind)))
    assert kinds == ["ga_client_id"]
    assert _count(engine, m.DealContact) == 0


def test_merged_contacts_point_at_the_survivor(engine: Engine) -> None:
    with session_scope(engine) as s:
        store_batch(s, Batch("c", [ContactRecord("5", T0, T0)], {}), now=T0)
        store_batch(s, Batch("c", [ContactRecord("6", T0, T0, merged_ids=("5",))], {}), now=T0)
    with Session(engine) as s:
        loser = s.get(m.Contact, "5")
    assert loser is not None and loser.merged_into == "6"


def test_quarantine_counts_repeats_instead_of_duplicating(engine: Engine) -> None:
    bad = QuarantinedRecord("hubspot.contacts", "77", "createdate is missing", {"id": "77"})
    for _ in range(3):
        with session_scope(engine) as s:
            store_batch(s, Batch("hubspot.contacts", [], {}, [bad]), now=T0)
    with Session(engine) as s:
        rows = s.execute(select(m.QuarantinedRow)).scalars().all()
    assert len(rows) == 1
    assert rows[0].times_seen == 3 and rows[0].reason == "createdate is missing"


def test_replace_scope_writes_only_differences(engine: Engine) -> None:
    table = m.Conversion.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "id": f"contact_created:{i}",
            "kind": "contact_created",
            "contact_id": str(i),
            "deal_id": None,
            "occurred_at": T0 + timedelta(hours=i),
            "value": 0.0,
        }
        for i in range(5)
    ]
    with session_scope(engine) as s:
        first = replace_scope(s, table, scope_column="kind", scope_values=["contact_created"], rows=rows, key=("id",))
    assert (first.inserted, first.updated, first.deleted) == (5, 0, 0)
    with session_scope(engine) as s:
        same = replace_scope(s, table, scope_column="kind", scope_values=["contact_created"], rows=rows, key=("id",))
    assert same.changed == 0
    changed = [dict(r) for r in rows[1:]]
    changed[0]["value"] = 12.5
    with session_scope(engine) as s:
        third = replace_scope(
            s, table, scope_column="kind", scope_values=["contact_created"], rows=changed, key=("id",)
        )
    assert (third.inserted, third.updated, third.deleted) == (0, 1, 1)
    assert _count(engine, m.Conversion) == 4


def test_bulk_upsert_of_plain_rows_inserts_then_updates(engine: Engine) -> None:
    """Credits take the driver's executemany directly; both backends must insert and update."""
    table = m.Credit.__table__  # type: ignore[attr-defined]
    rows = [{"conversion_id": f"deal_won:{i % 7}", "touchpoint_id": 10**15 + i, "model": "linear",
             "channel": "Email", "campaign": "", "weight": 0.5, "revenue": 10.0 * i} for i in range(25_000)]
    with session_scope(engine) as s:
        assert upsert(s, table, rows, key=("conversion_id", "touchpoint_id", "model")) == 25_000
    changed = [{**r, "weight": 0.25} for r in rows[:100]]
    with session_scope(engine) as s:
        upsert(s, table, changed, key=("conversion_id", "touchpoint_id", "model"))
    with Session(engine) as s:
        weights = [w for (w,) in s.execute(select(m.Credit.weight).order_by(m.Credit.touchpoint_id))]
        biggest = s.execute(select(func.max(m.Credit.touchpoint_id))).scalar_one()
    assert len(weights) == 25_000
    assert weights[:100] == [0.25] * 100 and set(weights[100:]) == {0.5}
    assert biggest == 10**15 + 24_999  # BIGINT ids survive
