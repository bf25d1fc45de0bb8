"""Job leases on both stores: one holder at a time, expiry frees a dead holder's job, the tick guard."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from closedloop.sync.locks import JobLeases


def test_one_holder_at_a_time_until_expiry(engine: Engine, now: datetime) -> None:
    a = JobLeases(engine, holder="a", lease_seconds=30)
    b = JobLeases(engine, holder="b", lease_seconds=30)
    assert a.acquire("run", now=now)
    assert not b.acquire("run", now=now + timedelta(seconds=29))
    assert a.holder_of("run", now=now + timedelta(seconds=29)) == "a"
    assert a.acquire("run", now=now + timedelta(seconds=10)), "the holder may extend its own lease"
    assert not b.acquire("run", now=now + timedelta(seconds=39))
    assert b.acquire("run", now=now + timedelta(seconds=41)), "a lapsed lease passes on"
    assert b.holder_of("run", now=now + timedelta(seconds=41)) == "b"
    assert not a.renew("run", now=now + timedelta(seconds=42)), "the old holder learns it lost the lease"


def test_jobs_are_independent(engine: Engine, now: datetime) -> None:
    a = JobLeases(engine, holder="a", lease_seconds=30)
    b = JobLeases(engine, holder="b", lease_seconds=30)
    assert a.acquire("run", now=now)
    assert b.acquire("other", now=now)


def test_release_frees_now_or_guards_until_the_tick_is_over(engine: Engine, now: datetime) -> None:
    a = JobLeases(engine, holder="a", lease_seconds=30)
    b = JobLeases(engine, holder="b", lease_seconds=30)
    assert a.acquire("run", now=now)
    a.release("run", now=now)
    assert a.holder_of("run", now=now) is None
    assert b.acquire("run", now=now)
    b.release("run", now=now, keep_until=now + timedelta(seconds=5))
    assert not a.acquire("run", now=now + timedelta(seconds=4))
    assert a.acquire("run", now=now + timedelta(seconds=6))


def test_release_never_frees_another_holders_lease(engine: Engine, now: datetime) -> None:
    a = JobLeases(engine, holder="a", lease_seconds=1)
    b = JobLeases(engine, holder="b", lease_seconds=30)
    assert a.acquire("run", now=now)
    assert b.acquire("run", now=now + timedelta(seconds=2))
    a.release("run", now=now + timedelta(seconds=3))
    assert b.holder_of("run", now=now + timedelta(seconds=3)) == "b"


def test_naive_times_are_refused(engine: Engine, now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        JobLeases(engine, holder="a", lease_seconds=5).acquire("run", now=now.replace(tzinfo=None))


def test_concurrent_acquires_have_exactly_one_winner(engine: Engine, now: datetime) -> None:
    contenders = [JobLeases(engine, holder=f"r{i}", lease_seconds=30) for i in range(8)]
    wins: Counter[str] = Counter()
    barrier = threading.Barrier(len(contenders))
    lock = threading.Lock()

    def contend(leases: JobLeases, round_no: int) -> None:
        barrier.wait()
        if leases.acquire(f"job{round_no}", now=now):
            with lock:
                wins[f"job{round_no}"] += 1

    for round_no in range(5):
        threads = [threading.Thread(target=contend, args=(c, round_no)) for c in contenders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wins == Counter({f"job{r}": 1 for r in range(5)})


def test_heartbeat_keeps_a_short_lease_alive_and_release_stops_it(engine: Engine) -> None:
    a = JobLeases(engine, holder="a", lease_seconds=1.0)
    b = JobLeases(engine, holder="b", lease_seconds=1.0)
    held = a.hold("run", heartbeat_seconds=0.2)
    assert held is not None
    time.sleep(1.6)  # longer than the lease: only renewal keeps it
    assert b.hold("run") is None
    assert not held.lost.is_set()
    held.release()
    again = b.hold("run", heartbeat_seconds=0.2)
    assert again is not None
    again.release()


def test_heartbeat_reports_a_lease_taken_over(engine: Engine, now: datetime) -> None:
    clock_now = [now]
    a = JobLeases(engine, holder="a", lease_seconds=5)
    held = a.hold("run", clock=lambda: clock_now[0], heartbeat_seconds=0.05)
    assert held is not None
    # Simulate a long pause of this process: its lease lapsed and another replica took the job.
    assert JobLeases(engine, holder="b", lease_seconds=5).acquire("run", now=now + timedelta(seconds=6))
    clock_now[0] = now + timedelta(seconds=7)
    assert held.lost.wait(2.0)
    held.release()
    assert a.holder_of("run", now=clock_now[0]) == "b"
