"""Totals reach the progress bar: a pull whose API said how many objects it will return, and a
write-back that knows its plan, hand (stream, done, total) to the sink, and the bar shows an
ETA; a sink that takes only a message (the scheduler's log line) keeps working."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from closedloop.cli.progress import CountingWriter, bars
from closedloop.records import Batch, WebSessionRecord
from closedloop.store.engine import open_store
from closedloop.sync.pipeline import pull_stream, with_steps
from closedloop.sync.scheduler import _throttled

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STREAM = "ga4.sessions"


class Pages:
    """Three pages of sessions; with ``total``, each says how far through the report it is."""

    def __init__(self, sizes: Sequence[int], total: int | None) -> None:
        self.sizes, self.total = sizes, total

    def streams(self) -> Sequence[str]:
        return [STREAM]

    def pull(self, stream: str, cursor: dict[str, Any] | None, *, now: datetime) -> Iterator[Batch]:
        read = 0
        for page, size in enumerate(self.sizes):
            rows = [WebSessionRecord(f"{page}.{i}", NOW - timedelta(minutes=i), "google", "cpc", "b", "/")
                    for i in range(size)]
            read += size
            yield Batch(STREAM, rows, {"page": page}, position=None if self.total is None else (read, self.total))


def test_a_pull_with_a_known_total_passes_it_to_the_sink(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    steps: list[Any] = []
    pull_stream(engine, Pages([4, 3, 2], total=9), STREAM, now=NOW, progress=lambda m, s=None: steps.append(s))
    assert steps == [(STREAM, 4, 9), (STREAM, 7, 9), (STREAM, 9, 9)]
    unknown: list[Any] = []
    pull_stream(engine, Pages([2, 1], total=None), STREAM, now=NOW, progress=lambda m, s=None: unknown.append(s))
    assert unknown == [(STREAM, 2, None), (STREAM, 3, None)]  # records stored, no total


def test_one_argument_sinks_still_work(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    messages: list[str] = []
    pull_stream(engine, Pages([4, 3], total=7), STREAM, now=NOW, progress=messages.append)
    assert messages == [f"{STREAM}: 4 records", f"{STREAM}: 7 records"]
    said: list[str] = []
    scheduler_sink = _throttled(said.append, every_s=0)  # what serve's jobs pass to run_once
    with_steps(scheduler_sink)("hubspot.contacts: 5 records", ("hubspot.contacts", 5, 10))
    assert said == ["hubspot.contacts: 5 records"]


class PlanWriter:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def calls_for(self, updates: Sequence[Any]) -> list[list[Any]]:
        return [list(updates[i : i + 2]) for i in range(0, len(updates), 2)]

    def write(self, updates: Sequence[Any]) -> str:
        self.sent.append(len(updates))
        return "ok"


class PlainWriter:
    def write(self, updates: Sequence[Any]) -> str:
        return "ok"


def test_the_write_back_total_is_the_plan_handed_to_calls_for() -> None:
    steps: list[Any] = []
    writer = CountingWriter(PlanWriter(), lambda m, s=None: steps.append(s), stream="write-back objects")
    split = getattr(writer, "calls_for", None)
    assert split is not None
    for call in split(list("abcde")):
        assert writer.write(call) == "ok"
    assert steps == [("write-back objects", 2, 5), ("write-back objects", 4, 5), ("write-back objects", 5, 5)]
    plain = CountingWriter(PlainWriter(), lambda m, s=None: steps.append(s))
    assert getattr(plain, "calls_for", None) is None  # the write-back then sends as it plans, total unknown


class ListSpool:
    """A spool as the Salesforce writer's: updates added one by one, then calls that each yield
    their outcome a chunk of records at a time (a Bulk job's in several chunks)."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.closed = False

    def add(self, update: str) -> None:
        self.added.append(update)

    def calls(self) -> Iterator[Any]:
        job, rest = self.added[:4], self.added[4:]
        yield lambda: iter([(job[:2], "job part 1"), (job[2:], "job part 2")])
        yield lambda: iter([(rest, "collection")])

    def unsent(self) -> list[str]:
        return []

    def close(self) -> None:
        self.closed = True


class SpoolWriter(PlainWriter):
    def spool(self) -> ListSpool:
        return ListSpool()


def test_a_spooled_write_back_counts_its_plan_and_each_outcome_chunk() -> None:
    steps: list[Any] = []
    writer = CountingWriter(SpoolWriter(), lambda m, s=None: steps.append(s), stream="write-back objects")
    spool = writer.spool()
    for update in "abcde":
        spool.add(update)
    outcomes = [outcome for call in spool.calls() for _updates, outcome in call()]
    assert outcomes == ["job part 1", "job part 2", "collection"]  # passed through unchanged
    assert steps == [("write-back objects", 2, 5), ("write-back objects", 4, 5), ("write-back objects", 5, 5)]
    spool.close()  # the rest is the wrapped spool's own
    assert spool.unsent() == []
    assert getattr(PlainWriter(), "spool", None) is None
    assert not hasattr(CountingWriter(PlainWriter(), lambda m, s=None: None), "spool")


def _render(steps: Sequence[tuple[str, int, int | None]]) -> str:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    with bars(console) as report:
        for step in steps:
            report("pulling", step)
            time.sleep(0.3)  # rich measures the rate over real time, and refreshes 10 times a second
    output = console.file
    assert isinstance(output, io.StringIO)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.getvalue())


def test_the_bar_shows_an_eta_once_a_total_is_known() -> None:
    known = _render([("hubspot.contacts", 100, 1_000), ("hubspot.contacts", 300, 1_000)])
    assert "300/1,000" in known
    assert re.search(r"300/1,000\s+\S+/s\s+0:00:\d\d", known), known  # count, rate, then the time left
    unknown = _render([("hubspot.contacts", 100, None), ("hubspot.contacts", 300, None)])
    assert not re.search(r"\b300\s+\S+/s\s+0:00:\d\d\s+0:00:\d\d", unknown), unknown  # no time left without a total
