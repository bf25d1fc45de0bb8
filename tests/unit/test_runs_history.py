"""`closedloop runs` shows what went wrong in each run: failed streams, warnings by kind with an
example, and interrupted/abandoned runs with their recorded reason, in the table (80 columns)
and in ``--json``.  Run rows are written by the code that writes them in a real run
(RunReport.stats, mark_abandoned), so a change of their shape breaks this test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from report_store import write_config
from rich.cells import cell_len
from sqlalchemy import Engine
from typer.testing import CliRunner

from closedloop.report.fit import render_text
from closedloop.report.history import run_notes_table, runs_rows, runs_table
from closedloop.store.engine import open_store, session_scope
from closedloop.store.models import SyncRun
from closedloop.sync.pipeline import RunReport
from closedloop.sync.runs import mark_abandoned

os.environ.setdefault("REPORT_TEST_TOKEN", "not-used")
AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
EXAMPLE = "contact 123456: createdate '2026-11-02T10:00:00' has no time zone; read as UTC"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _store(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    engine = open_store(url)
    clean = RunReport(run_id=1, started_at=AT, status="ok", duration_s=12.0)
    partial = RunReport(run_id=2, started_at=AT + timedelta(hours=1), status="partial", duration_s=30.0,
                        failed_streams=["hubspot.deals"],
                        errors=["hubspot.deals: the paging cursor did not advance (after='abc')"],
                        warnings={"naive_timestamp": 3, "value_longer_than_column": 2, "unknown_deal_stage": 1},
                        warning_examples={"naive_timestamp": [EXAMPLE, "contact 2: ..."],
                                          "value_longer_than_column": ["contacts.utm_campaign"],
                                          "unknown_deal_stage": ["deal 77: stage 'x' is not in pipeline 'default'"]})
    stopped = RunReport(run_id=3, started_at=AT + timedelta(hours=2), status="interrupted", duration_s=4.0,
                        errors=["stopped after batch 2 of hubspot.contacts"],
                        warnings={"pipelines_empty": 1}, warning_examples={"pipelines_empty": ["results: null"]})
    owner = {"host": socket.gethostname()[:80], "pid": _dead_pid(), "pid_start": None, "holder": None}
    with session_scope(engine) as session:
        for report in (clean, partial, stopped):
            session.add(SyncRun(id=report.run_id, job="run", started_at=report.started_at, finished_at=AT,
                                status=report.status, stats=report.stats(), api_calls={"GET /x": {"200": 7}},
                                errors={"messages": report.errors}))
        session.add(SyncRun(id=4, job="serve", started_at=AT + timedelta(hours=3), status="running",
                            stats={"owner": owner}))
    assert mark_abandoned(engine, now=AT + timedelta(hours=4)) == [4]
    return url, engine


def _shows(text: str, phrase: str) -> bool:
    """``phrase`` is in the text, perhaps folded over lines of one column."""
    return "".join(phrase.split()) in "".join(text.split())


def test_json_carries_warnings_failed_streams_and_statuses(tmp_path: Path) -> None:
    _, engine = _store(tmp_path)
    rows = {row["run"]: row for row in runs_rows(engine, limit=10)}
    assert [row["run"] for row in runs_rows(engine, limit=10)] == [4, 3, 2, 1]
    assert {n: rows[n]["status"] for n in rows} == {1: "ok", 2: "partial", 3: "interrupted", 4: "abandoned"}
    assert rows[2]["failed_streams"] == ["hubspot.deals"]
    assert rows[2]["warnings"]["counts"] == {"naive_timestamp": 3, "value_longer_than_column": 2,
                                             "unknown_deal_stage": 1}
    assert rows[2]["warnings"]["examples"]["naive_timestamp"] == [EXAMPLE, "contact 2: ..."]
    assert rows[3]["warnings"]["counts"] == {"pipelines_empty": 1}
    assert rows[1]["failed_streams"] == [] and rows[1]["warnings"]["counts"] == {}
    assert rows[4]["errors"][0].startswith("abandoned: its process")
    assert rows[1]["api_calls"] == 7 and rows[2]["seconds"] == 30.0
    assert json.loads(json.dumps(rows[2])) == rows[2]  # plain JSON, no datetimes


def test_table_fits_80_columns_and_names_what_went_wrong(tmp_path: Path) -> None:
    _, engine = _store(tmp_path)
    main = render_text(runs_table(engine, limit=10))
    notes_table = run_notes_table(engine, limit=10)
    assert notes_table is not None
    notes = render_text(notes_table)
    for text in (main, notes):
        assert all(cell_len(line) <= 80 for line in text.splitlines()), text
        assert "…" not in text
    assert all(status in main for status in ("interrupted", "abandoned", "partial"))
    lines = main.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Run") and " Warn " in line)
    end = lines[at].index(" Warn ") + len(" Warn")  # figures are right-aligned under their header
    warn = {line.split()[0]: line[:end].split()[-1] for line in lines[at + 2 : at + 6]}
    assert warn == {"4": "0", "3": "1", "2": "6", "1": "0"}  # each run's warnings, all kinds summed
    assert "Warn = warnings" in main
    for phrase in ("failed streams: hubspot.deals", "3 naive_timestamp", EXAMPLE, "2 value_longer_than_column",
                   "1 unknown_deal_stage", "1 pipelines_empty", "stopped after batch 2 of hubspot.contacts",
                   "abandoned: its process", "the paging cursor did not advance"):
        assert _shows(notes, phrase), (phrase, notes)
    assert not _shows(notes, "contact 2: ...")  # one example per kind in the table; all in --json
    note_runs = {cells[0] for cells in map(str.split, notes.splitlines()) if len(cells) > 1 and cells[0].isdigit()
                 and cells[1] in ("ok", "partial", "failed", "interrupted", "abandoned")}
    assert note_runs == {"2", "3", "4"}  # the clean run has no notes


def test_clean_history_has_no_notes_table(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'clean.db'}")
    with session_scope(engine) as session:
        report = RunReport(run_id=1, started_at=AT, status="ok")
        session.add(SyncRun(id=1, started_at=AT, status="ok", stats=report.stats()))
    assert run_notes_table(engine, limit=5) is None


def test_runs_command_prints_both_tables_and_json(tmp_path: Path) -> None:
    from closedloop.cli.application import app

    url, _ = _store(tmp_path)
    config = write_config(tmp_path, url)
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "--config", str(config)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "What went wrong" in shown.output and _shows(shown.output, "failed streams: hubspot.deals")
    as_json = runner.invoke(app, ["runs", "--config", str(config), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)[2]["failed_streams"] == ["hubspot.deals"]
