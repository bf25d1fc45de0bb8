"""`closedloop run` under SIGTERM in each phase, and a SIGKILLed run marked abandoned by the next.

The phases and how the signal is sent are in signal_helpers: the sandbox's fault hook signals the
run at the request that marks a phase, after serving it.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from signal_helpers import BATCH_UPDATES, PHASES, run_cli, sent_twice, sigterm_at, sync_runs, write_config

from closedloop.sandbox.company import Company
from closedloop.sandbox.faults import FaultPlan, kill_process
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import RunningSandbox, start_sandbox

pytestmark = pytest.mark.slow
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=150, seed=5, now=NOW)


@pytest.fixture
def sandbox(company: Company) -> Iterator[RunningSandbox]:
    with start_sandbox(company, now=NOW, latency=0.01, burst_limit=100_000) as running:
        yield running


def _run(config: Path, started: list[subprocess.Popen[str]]) -> subprocess.CompletedProcess[str]:
    return run_cli(["run", "--json"], config, started)


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigterm_in_each_phase_records_interrupted_and_exits_0(
    sandbox: RunningSandbox, tmp_path: Path, phase: str
) -> None:
    started: list[subprocess.Popen[str]] = []
    plan = sigterm_at(phase, lambda: started[-1].pid if started else None, sandbox)
    done = _run(write_config(sandbox, tmp_path), started)
    assert plan.fired("kill_process") == 1, f"the {phase} phase was never reached"
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SIGTERM received" in done.stderr
    [run] = sync_runs(tmp_path)
    assert run.status == "interrupted", (run.status, run.errors)
    assert run.finished_at is not None
    assert not any("locked" in m for m in run.errors.get("messages", [])), run.errors
    if phase == "write-back":  # what was written before the signal is reported, not lost with the run
        answered = sum(len(exchange.request_body["inputs"]) for exchange in plan.recorded(BATCH_UPDATES))
        assert answered > 0
        assert run.stats["writeback"]["objects_written"] == answered, (run.stats["writeback"], answered)
    again = _run(write_config(sandbox, tmp_path), started)  # the next run resumes and finishes
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r.status for r in sync_runs(tmp_path)] == ["interrupted", "ok"]
    assert plan.recorded("POST */batch/update"), "the next run writes back"
    assert sent_twice(plan) == []


def test_a_sigkilled_run_is_marked_abandoned_by_the_next(sandbox: RunningSandbox, tmp_path: Path) -> None:
    started: list[subprocess.Popen[str]] = []
    FaultPlan([kill_process(lambda: started[-1].pid if started else None,
                            on_nth_request_of=PHASES["pull"][0], n=2)]).install(sandbox.hubspot.server)
    config = write_config(sandbox, tmp_path)
    killed = _run(config, started)
    assert killed.returncode == -signal.SIGKILL
    [left] = sync_runs(tmp_path)
    assert left.status == "running" and left.stats["owner"]["pid"] == started[0].pid
    again = _run(config, started)
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = sync_runs(tmp_path)
    assert (first.status, second.status) == ("abandoned", "ok")
    assert first.finished_at is not None and str(started[0].pid) in first.errors["messages"][0]
