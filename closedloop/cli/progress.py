"""Progress of long work: bars with counts, rate and ETA in a terminal; plain, periodic log lines
otherwise (piped, under ``docker exec``, in a log file), so a long pull is never silent.

A part reports through one callable, ``progress(message, step=None)``: ``message`` says what is
happening; ``step``, when given, is ``(stream, done, total)`` with ``total`` None while unknown
(a pull does not know how many records it will get; a write-back knows its plan).  Parts that
only pass a message like ``"hubspot.contacts: 12,345 records"`` are read as a step too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Sized
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Step = tuple[str, int, int | None]
# "<stream>: 12,345 records", perhaps after a prefix ("[first run] "): the prefix is part of the name.
_COUNT_LINE = re.compile(r"^(?P<stream>.*?[\w.\-]+): (?P<done>[\d,]+) records$")
LOG_EVERY_S = 10.0


class ProgressSink(Protocol):
    def __call__(self, message: str, step: Step | None = None) -> None: ...


def as_step(message: str, step: Step | None) -> Step | None:
    """The step given, or one read from a ``"<stream>: <n> records"`` message."""
    if step is not None:
        return step
    found = _COUNT_LINE.match(message)
    return (found["stream"], int(found["done"].replace(",", "")), None) if found else None


class RateColumn(ProgressColumn):
    """Records a second, from rich's moving window of updates."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")


class CountColumn(MofNCompleteColumn):
    """'done/total' when the total is known, else just 'done'."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(f"{int(task.completed):,}", style="progress.download")
        return Text(f"{int(task.completed):,}/{int(task.total):,}", style="progress.download")


@contextmanager
def bars(console: Console) -> Iterator[ProgressSink]:
    """One bar per stream (count, rate, ETA once the total is known) under a line for the step."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24), CountColumn(),
                  RateColumn(), TimeRemainingColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        status = progress.add_task("starting", total=None)
        tasks: dict[str, TaskID] = {}

        def report(message: str, step: Step | None = None) -> None:
            found = as_step(message, step)
            if found is None:
                progress.update(status, description=escape(message))
                return
            stream, done, total = found
            if stream not in tasks:
                tasks[stream] = progress.add_task(escape(stream), total=total)
            progress.update(tasks[stream], completed=done, total=total)

        yield report


@contextmanager
def log_lines(console: Console, *, every_s: float = LOG_EVERY_S,
              clock: Callable[[], float] = time.monotonic) -> Iterator[ProgressSink]:
    """A line when the step changes, and for each stream at most every ``every_s`` seconds."""
    last_message = ""
    last_logged: dict[str, float] = {}
    first_seen: dict[str, tuple[float, int]] = {}

    def report(message: str, step: Step | None = None) -> None:
        nonlocal last_message
        found = as_step(message, step)
        now = clock()
        if found is None:
            if message != last_message:
                console.print(f"{time.strftime('%H:%M:%S')} {message}", markup=False, highlight=False, soft_wrap=True)
                last_message = message
            return
        stream, done, total = found
        start, base = first_seen.setdefault(stream, (now, done))
        finished = total is not None and done >= total
        if not finished and now - last_logged.get(stream, -every_s - 1) < every_s:
            return
        last_logged[stream] = now
        rate = (done - base) / (now - start) if now > start else 0.0
        line = f"{stream}: {done:,}" + (f"/{total:,}" if total is not None else "") + " records"
        if rate > 0:
            line += f", {rate:,.0f}/s"
            if total is not None and done < total:
                line += f", about {(total - done) / rate:,.0f}s left"
        console.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False, soft_wrap=True)

    yield report


class CountingWriter:
    """A CRM writer that reports each batch it sends as a write-back step (objects sent so far),
    so a long write-back shows a count and a rate without the write-back itself knowing.

    Everything else (``ensure_properties``, ``read_properties``, a writer's optional extras) is
    the wrapped writer's own.  Batches go out from several threads; the count is locked.
    """

    def __init__(self, writer: Any, report: ProgressSink, *, stream: str = "write-back objects") -> None:
        self._writer = writer
        self._report = report
        self._stream = stream
        self._sent = 0
        self._planned: int | None = None
        self._lock = threading.Lock()

    def write(self, updates: Sequence[Any]) -> Any:
        result = self._writer.write(updates)
        self._sent_records(len(updates))
        return result

    def _planned_records(self, n: int) -> None:
        with self._lock:
            self._planned = (self._planned or 0) + n

    def _sent_records(self, n: int) -> None:
        with self._lock:
            self._sent += n
            sent, planned = self._sent, self._planned
        self._report("writing back to the CRM", (self._stream, sent, planned))

    def _calls_for(self, updates: Sequence[Any]) -> Any:
        """A writer that splits the whole plan into calls (``calls_for``) is handed every planned
        change at once: their number is the bar's total, so the write-back shows an ETA."""
        if isinstance(updates, Sized):  # anything else passes through uncounted
            self._planned_records(len(updates))
        return self._writer.calls_for(updates)

    def _spool(self) -> _CountingSpool:
        """A writer with a spool (Salesforce) sends its calls from it, not through ``write``:
        each planned update is counted into the total, each record whose outcome came back
        (a collections call's, or a Bulk 2.0 job's read back a chunk at a time) as sent."""
        return _CountingSpool(self._writer.spool(), self)

    def __getattr__(self, name: str) -> Any:
        # Only where the writer has them: the write-back checks with getattr / hasattr.
        if name == "calls_for" and hasattr(self._writer, "calls_for"):
            return self._calls_for
        if name == "spool" and hasattr(self._writer, "spool"):
            return self._spool
        return getattr(self._writer, name)


class _CountingSpool:
    """A writer's spool whose updates and sent records reach a ``CountingWriter``'s count."""

    def __init__(self, spool: Any, counter: CountingWriter) -> None:
        self._spool = spool
        self._counter = counter

    def add(self, update: Any) -> None:
        self._spool.add(update)
        self._counter._planned_records(1)

    def calls(self) -> Iterator[Callable[[], Iterator[Any]]]:
        for call in self._spool.calls():
            yield self._counted(call)

    def _counted(self, call: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
        def counted() -> Iterator[Any]:
            for updates, result in call():
                self._counter._sent_records(len(updates))
                yield updates, result

        return counted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)
