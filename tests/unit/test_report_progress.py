"""Progress: periodic plain lines when not a terminal, bars with count, rate and ETA in one."""

from __future__ import annotations

import io

from rich.console import Console

from closedloop.cli.progress import as_step, bars, log_lines


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain() -> Console:
    return Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)


def lines(console: Console) -> list[str]:
    output = console.file
    assert isinstance(output, io.StringIO)
    return [line.split(" ", 1)[1] for line in output.getvalue().splitlines()]  # without the time of day


def test_a_count_message_is_read_as_a_step() -> None:
    assert as_step("hubspot.contacts: 12,345 records", None) == ("hubspot.contacts", 12_345, None)
    assert as_step("[first run] ga4.sessions: 7 records", None) == ("[first run] ga4.sessions", 7, None)
    assert as_step("pulling hubspot.contacts", None) is None
    assert as_step("anything", ("writeback.contacts", 5, 10)) == ("writeback.contacts", 5, 10)


def test_log_lines_say_each_step_once_and_counts_every_period_with_rate_and_eta() -> None:
    console, clock = plain(), Clock()
    with log_lines(console, every_s=10, clock=clock) as report:
        report("[first run] pulling hubspot.contacts")
        report("[first run] pulling hubspot.contacts")  # same step: not repeated
        report("hubspot.contacts: 100 records")  # first count: logged
        for done in range(200, 1100, 100):
            clock.now += 1
            report(f"hubspot.contacts: {done:,} records")  # within 10 s: quiet
        clock.now += 1  # 10 s after the first count
        report("hubspot.contacts: 1,100 records")
        report("writing back", ("writeback", 500, 2_000))
        clock.now += 10
        report("writing back", ("writeback", 1_500, 2_000))
        report("writing back", ("writeback", 2_000, 2_000))  # the end of a known total is always said
    assert lines(console) == [
        "[first run] pulling hubspot.contacts",  # brackets are text, not markup
        "hubspot.contacts: 100 records",
        "hubspot.contacts: 1,100 records, 100/s",
        "writeback: 500/2,000 records",
        "writeback: 1,500/2,000 records, 100/s, about 5s left",
        "writeback: 2,000/2,000 records, 150/s",
    ]


def test_bars_show_counts_against_the_total() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=True)
    with bars(console) as report:
        report("writing back", ("writeback.contacts", 1_234, 5_000))
        report("ga4.sessions: 777 records")
    output = console.file
    assert isinstance(output, io.StringIO)
    text = output.getvalue()
    assert "1,234/5,000" in text and "777" in text and "writeback.contacts" in text


class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def write(self, updates: list[int]) -> str:
        self.sent.append(len(updates))
        return f"wrote {len(updates)}"

    def calls_for(self, n: int) -> int:
        return n * 2


def test_the_counting_writer_reports_objects_sent_and_stays_the_writer() -> None:
    from closedloop.cli.progress import CountingWriter

    steps: list[tuple[str, tuple[str, int, int | None] | None]] = []
    writer = FakeWriter()
    counting = CountingWriter(writer, lambda message, step=None: steps.append((message, step)))
    assert counting.write([1, 2, 3]) == "wrote 3" and counting.write([4]) == "wrote 1"
    assert writer.sent == [3, 1]
    assert [s for _, s in steps] == [("write-back objects", 3, None), ("write-back objects", 4, None)]
    assert counting.calls_for(5) == 10  # a writer's extras pass through
    assert getattr(counting, "not_there", None) is None
