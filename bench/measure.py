"""Runs ``closedloop run`` as a process of its own and measures it from outside, for the sync benches.

Both benches (``sync.py`` for HubSpot, ``sync_salesforce.py`` for Salesforce) time and weigh the
command users type, ``closedloop run --config <yaml>`` (the console script beside this Python),
not a function called in the bench's process; this module is that machinery, apart from the
sandboxes and the bounds each bench reports against.

What is measured, per run, and how:

- wall time: ``time.monotonic`` from spawn to exit;
- peak RSS: ``ru_maxrss`` from ``wait4`` on that child's pid alone (``RUSAGE_CHILDREN`` would
  count the sandbox's processes too), with ``VmHWM`` read last before the exit beside it;
- peak RSS by phase: ``VmRSS`` from ``/proc/<pid>/status`` sampled every 50 ms, each sample
  counted for the phase the command last named in its stderr progress lines (stderr is a pipe,
  so it prints a line per phase rather than bars); a phase known only afterwards can be placed
  where it began.

The run's own figures (phase seconds, records pulled and written, API calls by endpoint and
status) are read afterwards from the store, where the run recorded them.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLOSEDLOOP = Path(sys.executable).parent.resolve() / "closedloop"  # the console script, as users run it
TAIL_LINES = 20  # stderr lines kept to show when a run fails


def bench_now() -> datetime:
    """The real time, to the second: the company's present and the run's."""
    return datetime.now(UTC).replace(microsecond=0)


# ---- the config the command reads, and its environment --------------------------------------


def write_config(values: dict[str, Any], path: Path, env: Mapping[str, str]) -> Any:
    """Write the YAML and load it as the command will (every file it names checked): a wrong key
    fails here, before the sandbox is kept waiting for a run that cannot start."""
    import yaml

    from closedloop.config.loader import ConfigError, load_config

    path.write_text("# closedloop config for the sync benchmark's sandbox.\n"
                    + yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    try:
        return load_config(path, environ=env, check_files=True)
    except ConfigError as exc:
        raise SystemExit(f"the bench's config is refused: {exc}") from None


def command_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment (and ``extra``) for the command.  Its stderr is a pipe, as under a log
    collector: it prints a line per phase instead of bars; a forced terminal would hide them."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**env, **(extra or {})}


# ---- the command, in a process of its own ---------------------------------------------------

# "HH:MM:SS <message>": a line of closedloop.cli.progress.log_lines.
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<message>.*)$")
# "<stream>: 12,345[/20,000] records[, rate, ETA]": a step's count, not a phase change.
_STEP_LINE = re.compile(r"^(?P<stream>.*?[\w.\-]+): [\d,]+(?:/[\d,]+)? records\b")
# The write-back's batches (closedloop.cli.progress.CountingWriter): its message, and its stream.
WRITEBACK_MESSAGE, WRITEBACK_STREAM = "writing back to the CRM", "write-back objects"


class PhaseMemory:
    """Peak resident memory of a ``closedloop run`` process per phase of its run.

    A thread reads VmRSS (and VmHWM) from ``/proc/<pid>/status`` every 50 ms; each sample counts
    for the phase the process last named on stderr (``line``).  Samples and phase changes are
    kept with their time, so a phase known only afterwards (``mark``) is placed where it began.
    """

    def __init__(self, pid: int, started: float) -> None:
        self.pid = pid
        self.phase = "setup"
        self.hwm_mb = 0.0  # the kernel's high-water mark, last read before the process exited
        self._events: list[tuple[float, str]] = [(started, "setup")]
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def line(self, text: str) -> None:
        """One stderr line of the process: a phase change, a step's count, or anything else."""
        found = _LOG_LINE.match(text)
        if found is None:
            return
        message = found["message"]
        step = _STEP_LINE.match(message)
        if step is None:
            self.progress(message)
        elif step["stream"] == WRITEBACK_STREAM:
            self.progress(WRITEBACK_MESSAGE)

    def progress(self, message: str) -> None:
        if message.startswith(("pulling ", "rebuilding", "writing back")):
            self.name(message.split(" ")[0] + (" " + message.split(" ")[1] if message.startswith("pulling") else ""))

    def name(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self._events.append((time.monotonic(), phase))

    def mark(self, at: float, phase: str) -> None:
        """A phase that began at ``at`` (time.monotonic), learnt after the run."""
        self._events.append((at, phase))

    @property
    def peaks(self) -> dict[str, float]:
        """Peak RSS (MB) per phase, in the order the phases began."""
        events = sorted(self._events, key=lambda e: e[0])
        out: dict[str, float] = {}
        i = 0
        for at, rss in self._samples:
            while i + 1 < len(events) and events[i + 1][0] <= at:
                i += 1
            phase = events[i][1]
            out[phase] = max(out.get(phase, 0.0), rss)
        return out

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            status = _proc_status(self.pid)
            if "VmRSS" not in status:  # exited (a zombie has no memory)
                continue
            self._samples.append((time.monotonic(), status["VmRSS"]))
            self.hwm_mb = max(self.hwm_mb, status.get("VmHWM", 0.0))

    def __enter__(self) -> PhaseMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def _proc_status(pid: int) -> dict[str, float]:
    """The memory lines of ``/proc/<pid>/status``, in MB."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


@dataclass(slots=True)
class Measured:
    """One ``closedloop run`` process as measured from outside."""

    returncode: int
    started: float  # time.monotonic at spawn
    wall_s: float  # spawn to exit
    peak_rss_mb: float  # wait4's ru_maxrss
    hwm_mb: float  # VmHWM read last before the exit
    memory: PhaseMemory
    tail: list[str]


def run_closedloop(config: Path, env: Mapping[str, str], memory: type[PhaseMemory] = PhaseMemory) -> Measured:
    """``closedloop run --config <config>`` as typed, in a process of its own, measured whole.

    Its stderr is read line by line as it comes (the phases); its stdout (the report tables)
    goes to a file beside the config.  The process is reaped with ``wait4`` for the kernel's
    peak RSS of that process alone (RUSAGE_CHILDREN would count the sandbox's processes too).
    The kernel's figure also counts the image ``exec`` replaced, this bench's (small) process.
    """
    command = [str(CLOSEDLOOP), "run", "--config", str(config)]
    with open(config.with_suffix(".out"), "ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=dict(env), cwd=config.parent)
    sampled = memory(proc.pid, started)
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(text)
            sampled.line(text)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    with sampled:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: its pid stays its own
        ended = time.monotonic()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it
    reader.join(10)
    if proc.stderr is not None:
        proc.stderr.close()
    return Measured(proc.returncode, started, ended - started, usage.ru_maxrss / 1024, sampled.hwm_mb, sampled,
                    list(tail))


def failed(title: str, measured: Measured) -> bool:
    """Whether the run exited non-zero; if so, its last stderr lines are printed."""
    if measured.returncode == 0:
        return False
    print(f"\n{title}: `closedloop run` exited with {measured.returncode}; its last stderr lines:", file=sys.stderr)
    for line in measured.tail:
        print(f"  {line}", file=sys.stderr)
    return True


def stored_run(db: Path) -> dict[str, Any]:
    """The newest run the store recorded: status, errors, stats (``RunReport.stats()``: seconds,
    pulled, usage, writeback, duration_s) and API calls by endpoint and status."""
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT id, status, stats, api_calls, errors FROM sync_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    run_id, status, stats, api_calls, errors = row
    return {
        "run_id": run_id,
        "status": status,
        "stats": json.loads(stats or "{}"),
        "api_calls": json.loads(api_calls or "{}"),
        "errors": list(json.loads(errors or "{}").get("messages") or []),
    }


# ---- figures of a run -----------------------------------------------------------------------


def calls_by_endpoint(run: dict[str, Any], service: str) -> Counter[str]:
    """One service's API calls in a stored run (``stored_run``), by endpoint, all statuses summed."""
    out: Counter[str] = Counter()
    for key, statuses in run["api_calls"].items():
        svc, _, endpoint = key.partition(" ")
        if svc == service:
            out[endpoint] += sum(statuses.values())
    return out


def print_run(title: str, run: dict[str, Any], measured: Measured) -> None:
    stats = run["stats"]
    seconds = ", ".join(f"{k} {v:,.1f} s" for k, v in (stats.get("seconds") or {}).items())
    print(f"\n{title}: status {run['status']}, process {measured.wall_s:,.1f} s spawn to exit; "
          f"run {stats.get('duration_s', 0.0):,.1f} s ({seconds})")
    if run["errors"]:
        print(f"  errors: {run['errors']}")
    for stream, counts in (stats.get("pulled") or {}).items():
        print(f"  pulled {stream}: {dict(counts)}")
    wb = stats.get("writeback")
    if wb is not None:
        print(f"  written: {wb['objects_written']:,} objects, {wb['properties_written']:,} values, "
              f"{wb['records_failed']} failed")


def _own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_memory(runs: list[tuple[str, Measured]]) -> None:
    """Each run's peak RSS (wait4, VmHWM beside it) and its peak by phase."""
    for title, measured in runs:
        print(f"peak RSS of the {title} `closedloop run` process: {measured.peak_rss_mb:,.0f} MB "
              f"(wait4; VmHWM just before exit {measured.hwm_mb:,.0f} MB; target < 400 MB)")
    print(f"  (the bench's own process, which the wait4 figure would show were it the larger: "
          f"{_own_peak_rss_mb():,.0f} MB)")
    for title, measured in runs:
        phases = ", ".join(f"{k} {v:,.0f} MB" for k, v in measured.memory.peaks.items())
        print(f"  peak RSS by phase of the {title} run: {phases}")
