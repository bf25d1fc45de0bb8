"""Write back only what changed, remember what was written, retry what failed (up to a limit).

``writeback_state`` holds the last value closedloop wrote per (object, property).  A desired
value equal to it is not sent, so an immediate second run writes nothing.  A failed record
keeps its old value, gains an attempt and its reason, and is tried again on later runs until
``max_attempts``; a new desired value starts its attempts afresh.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from functools import partial

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from closedloop.config.models import Config
from closedloop.connectors.base import CRMWriter, ObjectType, PropertyUpdate, WriteResult
from closedloop.store import models as m
from closedloop.store.engine import plain_rows
from closedloop.sync.interrupt import ShouldStop, never
from closedloop.sync.properties import TouchView, contact_values, deal_values, property_specs, same_value
from closedloop.sync.readahead import read_ahead
from closedloop.sync.sender import ParallelSender
from closedloop.sync.writeback_state import (
    OutcomeLog,
    PropertyChange,
    WritebackStats,
    clear_in_flight,
    count_given_up,
    mark_in_flight,
    reconcile_in_flight,
    record_outcome,
)

CHUNK = 2000


def desired_values(
    engine: Engine, config: Config, *, contact_chunks: Iterable[Sequence[str]] | None = None
) -> Iterator[list[tuple[ObjectType, str, dict[str, str]]]]:
    """Every object's closedloop properties as they should read now, a chunk of objects at a time.

    ``contact_chunks`` (ids, in any grouping) lets a rebuild running at the same time hand over
    contacts as soon as their touchpoints are committed; deals follow once it is exhausted,
    which the rebuild arranges to be after its credits are committed.  Without it, every
    contact in the store is read.
    """
    prefix, model = config.writeback.property_prefix, config.attribution.primary_model
    with Session(engine) as session:
        for ids in contact_chunks if contact_chunks is not None else _stored_contact_chunks(session):
            yield list(_contact_chunk(session, list(ids), prefix))
        deal_ids = [d for (d,) in plain_rows(session, select(col(m.Deal.id)).order_by(col(m.Deal.id)))]
        for start in range(0, len(deal_ids), CHUNK):
            chunk_ids = deal_ids[start : start + CHUNK]
            yield list(_deal_chunk(session, chunk_ids, prefix, model))


def _stored_contact_chunks(session: Session) -> Iterator[list[str]]:
    ids = [cid for (cid,) in plain_rows(session, select(col(m.Contact.id)).order_by(col(m.Contact.id)))]
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _contact_chunk(
    session: Session, contact_ids: list[str], prefix: str
) -> Iterator[tuple[ObjectType, str, dict[str, str]]]:
    chunk = plain_rows(
        session,
        select(col(m.Contact.id), col(m.Contact.created_at))
        .where(col(m.Contact.id).in_(contact_ids), col(m.Contact.merged_into).is_(None))
        .order_by(col(m.Contact.id)),
    ).all()
    touches: dict[str, list[TouchView]] = defaultdict(list)
    for cid, at, channel, source, campaign in plain_rows(
        session,
        select(
            col(m.Touchpoint.contact_id),
            col(m.Touchpoint.occurred_at),
            col(m.Touchpoint.channel),
            col(m.Touchpoint.source),
            col(m.Touchpoint.campaign),
        )
        .where(col(m.Touchpoint.contact_id).in_([c for c, _ in chunk]))
        .order_by(col(m.Touchpoint.contact_id), col(m.Touchpoint.occurred_at), col(m.Touchpoint.key)),
    ):
        touches[cid].append(TouchView(at, channel, source, campaign))
    for cid, created in chunk:
        yield "contacts", cid, contact_values(prefix, created, touches.get(cid, []))


def _deal_chunk(
    session: Session, deal_ids: list[str], prefix: str, model: str
) -> Iterator[tuple[ObjectType, str, dict[str, str]]]:
    conv_ids = [f"deal_won:{d}" for d in deal_ids] + [f"deal_created:{d}" for d in deal_ids]
    occurred: dict[str, datetime] = {}
    person: dict[str, str] = {}  # deal id -> its primary contact (mapping.primary), as the rebuild stored it
    for conv_id, at, deal_id, contact_id in plain_rows(
        session,
        select(
            col(m.Conversion.id), col(m.Conversion.occurred_at), col(m.Conversion.deal_id), col(m.Conversion.contact_id)
        ).where(col(m.Conversion.id).in_(conv_ids)),
    ):
        occurred[conv_id] = at
        if contact_id is not None:
            person[deal_id] = contact_id
    split: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    touches: dict[str, set[int]] = defaultdict(set)
    for conv_id, tp_id, channel, weight in plain_rows(
        session,
        select(
            col(m.Credit.conversion_id), col(m.Credit.touchpoint_id), col(m.Credit.channel), col(m.Credit.weight)
        ).where(col(m.Credit.conversion_id).in_(conv_ids), col(m.Credit.model) == model),
    ):
        split[conv_id][channel] += weight
        touches[conv_id].add(tp_id)
    # Days to won count from the deal's primary contact's creation: the one rule ROI uses too.
    created_at = dict(
        plain_rows(
            session,
            select(col(m.Contact.id), col(m.Contact.created_at)).where(col(m.Contact.id).in_(set(person.values()))),
        ).all()
    )
    lead_at = {deal_id: created_at[cid] for deal_id, cid in person.items() if cid in created_at}
    for deal_id in deal_ids:
        won = f"deal_won:{deal_id}"
        conv = won if won in occurred else f"deal_created:{deal_id}"
        days = None
        if won in occurred and deal_id in lead_at:
            days = max(0.0, (occurred[won] - lead_at[deal_id]).total_seconds() / 86400)
        yield "deals", deal_id, deal_values(prefix, model, dict(split.get(conv, {})), len(touches.get(conv, ())), days)


def plan_changes(
    engine: Engine,
    config: Config,
    *,
    contact_chunks: Iterable[Sequence[str]] | None = None,
    stats: WritebackStats | None = None,
) -> Iterator[list[PropertyChange]]:
    """Chunks of property changes that differ from what was last written and may still be tried.

    "Last written" is ``writeback_state``; where it holds nothing (a fresh store, a new
    property), the value the CRM held when the record was last pulled (``crm_values``) is the
    old value instead, so a first run on a portal that already has values writes only the real
    differences.  Those found already right are counted in ``stats.already_right``.
    """
    max_attempts = config.writeback.max_attempts

    def plan(chunk: list[tuple[ObjectType, str, dict[str, str]]]) -> list[PropertyChange]:
        keys = {(t, i) for t, i, _ in chunk}
        state: dict[tuple[str, str, str], tuple[str | None, str | None, int]] = {}
        held: dict[tuple[str, str], dict[str, str]] = {}
        with Session(engine) as session:
            for object_type in {t for t, _ in keys}:
                ids = [i for t, i in keys if t == object_type]
                for row in plain_rows(
                    session,
                    select(
                        col(m.WritebackState.object_id),
                        col(m.WritebackState.property),
                        col(m.WritebackState.value),
                        col(m.WritebackState.pending_value),
                        col(m.WritebackState.attempts),
                    ).where(col(m.WritebackState.object_type) == object_type, col(m.WritebackState.object_id).in_(ids)),
                ):
                    state[(object_type, row[0], row[1])] = (row[2], row[3], row[4])
                held.update(_crm_values(session, object_type, ids))
        changes = []
        for object_type, object_id, values in chunk:
            crm = held.get((object_type, object_id), {})
            for prop, new in values.items():
                known = state.get((object_type, object_id, prop))
                if known is None and prop in crm:
                    if same_value(crm[prop], new):
                        if stats is not None:
                            stats.already_right += 1
                        continue
                    known = (crm[prop], None, 0)
                old, pending, attempts = known or (None, None, 0)
                if old == new or (old is None and new == ""):
                    continue
                if pending == new and attempts >= max_attempts:
                    continue  # given up on this value; reported by the run
                changes.append(PropertyChange(object_type, object_id, prop, old, new))
        return changes

    # A chunk is planned as soon as it arrives: with a rebuild running beside, the next chunk
    # may be seconds away, and its contacts' changes should be on their way meanwhile.
    for chunk in desired_values(engine, config, contact_chunks=contact_chunks):
        if chunk:
            yield plan(chunk)


def _crm_values(session: Session, object_type: ObjectType, ids: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """The closedloop values each record held in the CRM when last pulled (its ``crm_values``)."""
    model: type[m.Contact] | type[m.Deal] = m.Contact if object_type == "contacts" else m.Deal
    out: dict[tuple[str, str], dict[str, str]] = {}
    for object_id, props in plain_rows(
        session, select(col(model.id), col(model.properties)).where(col(model.id).in_(ids))
    ):
        values = (props or {}).get("crm_values")
        if isinstance(values, dict) and values:
            out[(object_type, object_id)] = {k: str(v) for k, v in values.items() if v is not None}
    return out


def run_writeback(
    engine: Engine,
    config: Config,
    writer: CRMWriter,
    *,
    now: datetime,
    should_stop: ShouldStop = never,
    contact_chunks: Iterable[Sequence[str]] | None = None,
    stats: WritebackStats | None = None,
) -> WritebackStats:
    """Send every change in full batches, a few calls in flight.

    Bookkeeping is per planned chunk, not per call: a chunk's changes are marked in flight in
    one transaction before any of them is sent, and outcomes are recorded ten batches at a
    time.  Two store transactions around every call were most of a call's time while a rebuild
    beside it held the store's write lock; a crash in between still leaves marks that the next
    run reconciles, so nothing is sent twice.
    """
    # The caller's, where given: a run stopped half-way still reports what it wrote.
    stats = stats if stats is not None else WritebackStats()
    wb = config.writeback
    specs = property_specs(wb.property_prefix, config.attribution.primary_model)
    stats.properties_created = writer.ensure_properties(specs, group_name=wb.group_name, group_label=wb.group_label)
    stats.reconciled = reconcile_in_flight(engine, writer, now=now)
    owned = {(s.object_type, s.name) for s in specs}
    # One buffer per object type, so every batch call but the last of each type is full.
    pending: dict[ObjectType, list[PropertyUpdate]] = {"contacts": [], "deals": []}
    # A writer that chooses its calls from the count of changes per object (calls_for) gets
    # them all once planned, and splits them into the calls to send.
    split = getattr(writer, "calls_for", None)
    # A writer with a spool (Salesforce) takes each update as planned and keeps past its bulk
    # threshold on disk, not in memory; at the end it hands out the calls, each with its outcomes.
    spool = writer.spool() if hasattr(writer, "spool") else None
    unsent = _Unsent()

    def planned_and_marked() -> Iterator[dict[tuple[ObjectType, str], list[PropertyChange]]]:
        for changes in plan_changes(engine, config, contact_chunks=contact_chunks, stats=stats):
            for change in changes:
                if (change.object_type, change.property) not in owned:  # never touch what isn't ours
                    raise AssertionError(f"refusing to write {change.property}: not a closedloop property")
            mark_in_flight(engine, changes)
            yield unsent.add(changes)

    try:
        with OutcomeLog(engine, now=now, stats=stats) as outcomes, ParallelSender(
            wb.parallel_requests, should_stop=should_stop, describe=lambda: f"after {stats.objects_written:,} objects"
        ) as sender:

            def send(updates: list[PropertyUpdate]) -> None:
                keys = [(u.object_type, u.object_id) for u in updates]
                batch = unsent.get(keys)
                sender.submit(lambda: outcomes.add(writer.write(updates), batch))
                unsent.discard(keys)  # sent (or sending): no longer ours to unmark

            # The next chunk is planned and marked in flight (store reads and a write, which may
            # wait for a rebuild's transaction) while this one's batches are sent; in turn, the
            # window stood idle for a fraction of a second every chunk.
            with closing(read_ahead(planned_and_marked(), budget=1, name="plan")) as planned:
                for by_object in planned:
                    for (object_type, object_id), items in by_object.items():
                        update = PropertyUpdate(object_type, object_id, {c.property: c.new for c in items})
                        if spool is None:
                            pending[object_type].append(update)
                        else:  # the spool holds its values from here on, and unmarks them if unsent
                            spool.add(update)
                            unsent.discard([(object_type, object_id)])
                    for queue in pending.values():
                        while split is None and len(queue) >= wb.batch_size:
                            send(queue[: wb.batch_size])
                            del queue[: wb.batch_size]
            record, recording = partial(record_outcome, engine, now=now, stats=stats), threading.Lock()
            for call in spool.calls() if spool is not None else ():  # each records its own outcomes
                sender.submit(partial(_send_spooled, call, record, recording))
            for batch in split(pending["contacts"] + pending["deals"]) if split and spool is None else pending.values():
                if batch:
                    send(batch)
    finally:
        # Marked but never sent (the run stopped): not in flight, so no read-back next run.
        spooled = _changes_of(spool.unsent()) if spool is not None else {}
        clear_in_flight(engine, unsent.remaining() + [c for changes in spooled.values() for c in changes])
        if spool is not None:
            spool.close()
    stats.records_given_up = count_given_up(engine, wb.max_attempts)
    return stats


def _send_spooled(
    call: Callable[[], Iterator[tuple[list[PropertyUpdate], WriteResult]]],
    record: Callable[[WriteResult, dict[tuple[ObjectType, str], list[PropertyChange]]], None],
    lock: threading.Lock,
    every: int = 10,
) -> None:
    """A spooled call's outcomes, recorded here ``every`` chunks a transaction (a Bulk job's may
    be 100,000 records).  Not through the OutcomeLog's thread: a job's outcome is read back from
    disk far faster than the store takes it while the rebuild writes credits, and queued there
    whole it was 114 MB at full size; recording here makes the read-back wait for the store."""
    result, changes, chunks = WriteResult(), {}, 0
    for updates, chunk in call():
        result.extend(chunk)
        changes.update(_changes_of(updates))
        chunks += 1
        if chunks % every == 0:
            with lock:
                record(result, changes)
            result, changes = WriteResult(), {}
    if chunks % every:
        with lock:
            record(result, changes)


def _changes_of(updates: Iterable[PropertyUpdate]) -> dict[tuple[ObjectType, str], list[PropertyChange]]:
    """The changes an update carries, as the outcome recording takes them (``old`` is not read)."""
    return {
        (u.object_type, u.object_id): [PropertyChange(u.object_type, u.object_id, p, None, v) for p, v in ps.items()]
        for u in updates
        for ps in (u.properties,)
    }


class _Unsent:
    """Changes marked in flight and not yet handed to a send, by object (the planning thread
    adds, the sending thread takes; what is left when the run stops is unmarked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes: dict[tuple[ObjectType, str], list[PropertyChange]] = {}

    def add(self, changes: Sequence[PropertyChange]) -> dict[tuple[ObjectType, str], list[PropertyChange]]:
        """The chunk's changes by object (each object is planned once a run)."""
        by_object: dict[tuple[ObjectType, str], list[PropertyChange]] = defaultdict(list)
        for change in changes:
            by_object[(change.object_type, change.object_id)].append(change)
        with self._lock:
            self._changes.update(by_object)
        return by_object

    def get(self, keys: Iterable[tuple[ObjectType, str]]) -> dict[tuple[ObjectType, str], list[PropertyChange]]:
        with self._lock:
            return {key: self._changes[key] for key in keys}

    def discard(self, keys: Iterable[tuple[ObjectType, str]]) -> None:
        with self._lock:
            for key in keys:
                self._changes.pop(key, None)

    def remaining(self) -> list[PropertyChange]:
        with self._lock:
            return [c for items in self._changes.values() for c in items]


def dry_run(engine: Engine, config: Config) -> Sequence[PropertyChange]:
    return [change for changes in plan_changes(engine, config) for change in changes]
