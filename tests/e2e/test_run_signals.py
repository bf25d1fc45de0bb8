"""`closedloop run` under SIGTERM in each phase, and a SIGKILLed run marked abandoned by the next.

The sandbox runs in this process and sends the signal itself, from a fault hook, at the request
that marks a phase: a contacts search (the pull), the property schema read that opens the
write-back while the rebuild is crediting (the rebuild), a batch update (the write-back).  The
request is served first, so the run goes on to notice the signal between batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from closedloop.sandbox.company import Company
from closedloop.sandbox.faults import FaultPlan, kill_process
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
from closedloop.store.engine import make_engine
from closedloop.store.models import SyncRun

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PHASES = {
    "pull": ("POST /crm/v3/objects/contacts/search", 2),
    "rebuild": ("GET /crm/v3/properties/*", 1),
    "write-back": ("POST */batch/update", 2),
}


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=150, seed=5, now=NOW)


def _config(sandbox: RunningSandbox, tmp: Path) -> Path:
    text = sandbox.config_yaml(store_url=f"sqlite:///{tmp / 'store.db'}")
    text = text.replace("  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n",
                        "  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n  search_page_size: 20\n")
    path = tmp / "closedloop.yaml"
    path.write_text(text + "writeback:\n  batch_size: 10\n", encoding="utf-8")
    return path


def _run(config: Path, started: list[subprocess.Popen[str]]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOSEDLOOP_SANDBOX_TOKEN": SANDBOX_TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "closedloop", "run", "--config", str(config), "--json"],
                            cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _runs(tmp: Path) -> list[SyncRun]:
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    with Session(engine) as session:
        rows = list(session.exec(select(SyncRun).order_by(SyncRun.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


@pytest.fixture
def sandbox(company: Company) -> Iterator[RunningSandbox]:
    with start_sandbox(company, now=NOW, latency=0.01, burst_limit=100_000) as running:
        yield running


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigterm_in_each_phase_records_interrupted_and_exits_0(
    sandbox: RunningSandbox, tmp_path: Path, phase: str
) -> None:
    endpoint, n = PHASES[phase]
    started: list[subprocess.Popen[str]] = []
    plan = FaultPlan([kill_process(lambda: started[-1].pid if started else None, on_nth_request_of=endpoint, n=n,
                                   after_apply=True, sig=signal.SIGTERM)]).install(sandbox.hubspot.server)
    done = _run(_config(sandbox, tmp_path), started)
    assert plan.fired("kill_process") == 1, f"the {phase} phase was never reached"
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SIGTERM received" in done.stderr
    [run] = _runs(tmp_path)
    assert run.status == "interrupted", (run.status, run.errors)
    assert run.finished_at is not None
    assert not any("locked" in m for m in run.errors.get("messages", [])), run.errors
    again = _run(_config(sandbox, tmp_path), started)  # the next run resumes and finishes
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r.status for r in _runs(tmp_path)] == ["interrupted", "ok"]


def test_a_sigkilled_run_is_marked_abandoned_by_the_next(sandbox: RunningSandbox, tmp_path: Path) -> None:
    started: list[subprocess.Popen[str]] = []
    FaultPlan([kill_process(lambda: started[-1].pid if started else None,
                            on_nth_request_of=PHASES["pull"][0], n=2)]).install(sandbox.hubspot.server)
    config = _config(sandbox, tmp_path)
    killed = _run(config, started)
    assert killed.returncode == -signal.SIGKILL
    [left] = _runs(tmp_path)
    assert left.status == "running" and left.stats["owner"]["pid"] == started[0].pid
    again = _run(config, started)
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = _runs(tmp_path)
    assert (first.status, second.status) == ("abandoned", "ok")
    assert first.finished_at is not None and str(started[0].pid) in first.errors["messages"][0]
