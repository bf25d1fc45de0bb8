"""SIGKILL at several points of `closedloop run`, then a restart: nothing lost, nothing twice.

The sandbox runs in this process; the real CLI runs as a subprocess, and a fault hook kills it
with SIGKILL when it reaches a given request, either before the sandbox serves it or right
after the sandbox applied it (a write the client never hears about).  The restart must bring
the store and the CRM to exactly what a clean run produces, with no (object, property, value)
sent to the CRM twice across the kill and the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from run_snapshots import COMPARED_TABLES, crm_snapshot, store_snapshot

from closedloop.sandbox.company import Company
from closedloop.sandbox.faults import Exchange, FaultPlan, kill_process
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
from closedloop.store.engine import open_store

REPO = Path(__file__).resolve().parents[2]
# The CLI reads the real clock, so the company and GA4's "today" are built around the present.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
BATCH_UPDATE = "POST */batch/update"


@dataclass(frozen=True, slots=True)
class KillPoint:
    name: str
    endpoint: str
    n: int
    after_apply: bool = False


KILL_POINTS = [
    KillPoint("mid contacts pull", "POST /crm/v3/objects/contacts/search", 2),
    KillPoint("mid deals pull", "POST /crm/v4/associations/deals/contacts/batch/read", 1),
    KillPoint("first batch update applied, answer unseen", BATCH_UPDATE, 1, after_apply=True),
    KillPoint("mid write-back, third batch in flight", BATCH_UPDATE, 3),
]


@dataclass(slots=True)
class Snapshot:
    store: dict[str, list[tuple[Any, ...]]]
    crm: dict[tuple[str, str], dict[str, str | None]]
    writes: set[tuple[str, str, str, str]]


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(contacts=150, seed=11, now=NOW)


def config_file(sandbox: RunningSandbox, tmp: Path) -> Path:
    """The sandbox's own YAML, with pages and batches small enough to be killed in between."""
    text = sandbox.config_yaml(store_url=f"sqlite:///{tmp / 'store.db'}")
    text = text.replace("  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n",
                        "  access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}\n  search_page_size: 50\n")
    text = text.replace("  initial_days: 400\n", "  initial_days: 400\n  page_size: 400\n")
    assert "search_page_size" in text and "page_size: 400" in text
    path = tmp / "closedloop.yaml"
    path.write_text(text + "writeback:\n  batch_size: 40\n")
    return path


def cli_run(config: Path, started: list[subprocess.Popen[str]]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOSEDLOOP_SANDBOX_TOKEN": SANDBOX_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "closedloop", "run", "--config", str(config), "--json"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    started.append(proc)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def applied_writes(exchanges: list[Exchange]) -> Counter[tuple[str, str, str, str]]:
    """(object type, id, property, value) of every write the CRM applied, counted."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for exchange in exchanges:
        if exchange.status not in (200, 207):
            continue
        kind = exchange.path.split("/")[4]
        done = {str(r["id"]) for r in (exchange.response_body or {}).get("results", [])}
        for item in exchange.request_body["inputs"]:
            if str(item["id"]) in done:
                for prop, value in item["properties"].items():
                    out[(kind, str(item["id"]), prop, value)] += 1
    return out


@pytest.fixture(scope="module")
def clean(company: Company, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshot]:
    tmp = tmp_path_factory.mktemp("clean")
    started: list[subprocess.Popen[str]] = []
    with start_sandbox(company, now=NOW) as sandbox:
        plan = FaultPlan(record=(BATCH_UPDATE,)).install(sandbox.hubspot.server)
        done = cli_run(config_file(sandbox, tmp), started)
        assert done.returncode == 0, done.stderr[-3000:]
        writes = applied_writes(plan.recorded())
        assert writes and max(writes.values()) == 1
        engine = open_store(f"sqlite:///{tmp / 'store.db'}")
        snapshot = Snapshot(store_snapshot(engine), crm_snapshot(sandbox), set(writes))
        engine.dispose()
    assert sum(len(v) for v in snapshot.crm.values()) == len(writes)
    yield snapshot


@pytest.mark.parametrize("point", KILL_POINTS, ids=[p.name for p in KILL_POINTS])
def test_sigkill_then_restart_equals_a_clean_run(
    company: Company, clean: Snapshot, tmp_path: Path, point: KillPoint
) -> None:
    started: list[subprocess.Popen[str]] = []

    def current_pid() -> int | None:
        return started[-1].pid if started else None

    with start_sandbox(company, now=NOW) as sandbox:
        plan = FaultPlan(
            [kill_process(current_pid, on_nth_request_of=point.endpoint, n=point.n, after_apply=point.after_apply)],
            record=(BATCH_UPDATE,),
        ).install(sandbox.hubspot.server)
        config = config_file(sandbox, tmp_path)
        killed = cli_run(config, started)
        assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])
        assert plan.fired("kill_process") == 1
        if point.after_apply:  # the sandbox did apply the write the client died waiting for
            # (not necessarily the last exchange: with two calls in flight, the other one's body
            # may be cut off by the kill and answered 400 after it)
            assert any(exchange.status == 200 for exchange in plan.recorded())
        restarted = cli_run(config, started)
        assert restarted.returncode == 0, restarted.stderr[-3000:]
        writes = applied_writes(plan.recorded())
        crm = crm_snapshot(sandbox)
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store = store_snapshot(engine)
    engine.dispose()

    twice = {k: n for k, n in writes.items() if n > 1}
    assert not twice, f"{point.name}: {len(twice)} writes sent twice, e.g. {sorted(twice)[:5]}"
    assert set(writes) == clean.writes  # every value a clean run writes, and nothing else
    for name in COMPARED_TABLES:
        assert len(store[name]) == len({repr(r) for r in store[name]}), f"{name} holds duplicate rows"
        assert store[name] == clean.store[name], name
    differing = [key for key in clean.crm if crm.get(key) != clean.crm[key]]
    assert not differing, f"{point.name}: {len(differing)} CRM objects differ, first {differing[:3]}"
