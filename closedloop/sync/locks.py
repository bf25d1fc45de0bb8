"""Job leases in the store: at most one replica holds a job, and a dead holder's lease runs out.

A lease is one row of ``job_leases``.  Taking it is a single ``INSERT ... ON CONFLICT DO UPDATE
... WHERE expires_at < now OR holder = me``: the database decides atomically, on SQLite and on
PostgreSQL alike, so no replica ever reads-then-writes.  A holder renews its lease from a
heartbeat thread while the job runs; if the process dies, renewal stops and the lease lapses
after ``lease_seconds``.  Expiry compares the replicas' own clocks, so lease_seconds must be
far longer than their skew (NTP keeps it to milliseconds).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from closedloop.store.models import JobLease

Clock = Callable[[], datetime]
_TABLE: Table = JobLease.__table__  # type: ignore[attr-defined]
_log = logging.getLogger("closedloop.locks")


def wall_clock() -> datetime:
    return datetime.now(UTC)


def make_holder_id() -> str:
    """Unique per process and start: host and pid for people, a random suffix for restarts."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobLeases:
    """The leases one replica takes, renews and releases, all under its own holder id."""

    def __init__(self, engine: Engine, *, holder: str, lease_seconds: float) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.engine = engine
        self.holder = holder
        self.lease = timedelta(seconds=lease_seconds)

    def acquire(self, job: str, *, now: datetime) -> bool:
        """Take or extend the lease; False when another live holder has it."""
        _require_aware(now)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        upsert = insert(_TABLE).values(job=job, holder=self.holder, expires_at=now + self.lease)
        stmt = upsert.on_conflict_do_update(
            index_elements=[_TABLE.c.job],
            set_={"holder": upsert.excluded.holder, "expires_at": upsert.excluded.expires_at},
            where=(_TABLE.c.expires_at < now) | (_TABLE.c.holder == self.holder),
        ).returning(_TABLE.c.holder)
        # RETURNING, not rowcount: drivers disagree on the rowcount of an upsert (psycopg2 says -1).
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def renew(self, job: str, *, now: datetime) -> bool:
        """Extend a lease we still hold; False if it lapsed and someone else took it."""
        _require_aware(now)
        stmt = (
            update(_TABLE)
            .where(_TABLE.c.job == job, _TABLE.c.holder == self.holder)
            .values(expires_at=now + self.lease)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def release(self, job: str, *, now: datetime, keep_until: datetime | None = None) -> None:
        """Give the job up; ``keep_until`` keeps other replicas off it until then (the tick guard).

        Only our own row is touched: a lease that already passed to another holder stays theirs.
        """
        _require_aware(now)
        mine = (_TABLE.c.job == job) & (_TABLE.c.holder == self.holder)
        with self.engine.begin() as conn:
            if keep_until is not None and keep_until > now:
                conn.execute(update(_TABLE).where(mine).values(expires_at=keep_until))
            else:
                conn.execute(delete(_TABLE).where(mine))

    def holder_of(self, job: str, *, now: datetime) -> str | None:
        """Who holds the job at ``now`` (None when free or lapsed)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_TABLE.c.holder, _TABLE.c.expires_at).where(_TABLE.c.job == job)).first()
        if row is None or row.expires_at < now:
            return None
        return str(row.holder)

    def hold(self, job: str, *, clock: Clock = wall_clock, heartbeat_seconds: float | None = None) -> HeldLease | None:
        """Acquire and keep renewing in the background; None when another replica has the job."""
        if not self.acquire(job, now=clock()):
            return None
        interval = heartbeat_seconds if heartbeat_seconds is not None else self.lease.total_seconds() / 3
        return HeldLease(self, job, clock=clock, heartbeat_seconds=interval)


class HeldLease:
    """A lease we hold, renewed by a daemon thread until ``release``; ``lost`` says it slipped away.

    Renewal failing because the database is briefly unreachable is retried at the next beat; the
    lease is declared lost only when the row shows another holder, or our expiry has passed.
    """

    def __init__(self, leases: JobLeases, job: str, *, clock: Clock, heartbeat_seconds: float) -> None:
        self.leases = leases
        self.job = job
        self.clock = clock
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._expires = clock() + leases.lease
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_seconds,), name=f"lease-{job}", daemon=True)
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            now = self.clock()
            try:
                renewed = self.leases.renew(self.job, now=now)
            except Exception as exc:
                _log.warning("could not renew the lease of %s: %s", self.job, type(exc).__name__)
                renewed = now < self._expires
                if renewed:
                    continue
            if renewed:
                self._expires = now + self.leases.lease
                continue
            _log.error("lost the lease of %s to another replica; stopping after the batch in flight", self.job)
            self.lost.set()
            return

    def release(self, *, keep_until: datetime | None = None) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.leases.release(self.job, now=self.clock(), keep_until=keep_until)
        except Exception as exc:
            _log.warning("could not release the lease of %s (%s); it lapses by itself", self.job, type(exc).__name__)

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("lease times must be timezone-aware (UTC)")
