"""Shared by the signal tests of `closedloop run` and `closedloop serve`: config, phases, run rows.

The sandbox runs in the test's process and sends the signal itself, from a fault hook, at the
request that marks a phase: a contacts search (the pull), the property schema read that opens the
write-back while the rebuild is crediting (the rebuild), a batch update (the write-back).  The
request is served first, so the run goes on to notice the signal between batches.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlmodel import Session, select

from closedloop.sandbox.faults import FaultPlan, kill_process
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox
from closedloop.store.engine import make_engine
from closedloop.store.models import SyncRun

# phase -> (the request that marks it, which one of them)
PHASES = {
    "pull": ("POST /crm/v3/objects/contacts/search", 2),
    "rebuild": ("GET /crm/v3/properties/*", 1),
    "write-back": ("POST */batch/update", 2),
}
BATCH_UPDATES = "POST */batch/update"


def write_config(sandbox: RunningSandbox, tmp: Path, extra: str = "") -> Path:
    """Small search pages and write-back batches, so every phase spans several batches."""
    text = sandbox.config_yaml(store_url=f"sqlite:///{tmp / 'store.db'}")
    text = text.replace("  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n",
                        "  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n  search_page_size: 20\n")
    path = tmp / "closedloop.yaml"
    path.write_text(text + "writeback:\n  batch_size: 10\n" + extra, encoding="utf-8")
    return path


def sigterm_at(phase: str, pid: Callable[[], int | None], sandbox: RunningSandbox) -> FaultPlan:
    """SIGTERM to ``pid()`` once the phase's marking request has been served; every batch update
    (of this run and the ones after it) is recorded."""
    endpoint, n = PHASES[phase]
    rule = kill_process(pid, on_nth_request_of=endpoint, n=n, after_apply=True, sig=signal.SIGTERM)
    return FaultPlan([rule], record=(BATCH_UPDATES,)).install(sandbox.hubspot.server)


def sent_twice(plan: FaultPlan) -> list[tuple[str, str, str]]:
    """(object path, record id, property) sent in more than one answered batch update."""
    sent: Counter[tuple[str, str, str]] = Counter()
    for exchange in plan.recorded(BATCH_UPDATES):
        assert exchange.status in (200, 207), exchange
        for item in exchange.request_body["inputs"]:
            for name in item["properties"]:
                sent[(exchange.path, str(item["id"]), name)] += 1
    return sorted(key for key, n in sent.items() if n > 1)


def env() -> dict[str, str]:
    return {**os.environ, "CLOSEDLOOP_SANDBOX_TOKEN": SANDBOX_TOKEN, "PYTHONUNBUFFERED": "1"}


def run_cli(args: list[str], config: Path, started: list[subprocess.Popen[str]],
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`closedloop <args> --config <config>` to the end; the process is appended to ``started``
    as soon as it exists, so a fault hook can signal it."""
    proc = subprocess.Popen([sys.executable, "-m", "closedloop", *args, "--config", str(config)],
                            cwd=config.parent, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def start_serve(config: Path, stderr: IO[str]) -> subprocess.Popen[bytes]:
    """`closedloop serve` in the background, its log lines going to ``stderr``."""
    return subprocess.Popen([sys.executable, "-m", "closedloop", "serve", "--config", str(config)],
                            env=env(), stdout=subprocess.DEVNULL, stderr=stderr, cwd=config.parent)


def sync_runs(tmp: Path) -> list[SyncRun]:
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    with Session(engine) as session:
        rows = list(session.exec(select(SyncRun).order_by(SyncRun.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


def wait_for_line(log: Path, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(encoding="utf-8"))
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n{log.read_text(encoding='utf-8')}")
