"""GA4 rows of no one: ``(not set)``, ``(other)`` and empty client ids, with thresholding metadata.

Such a row folds many visitors together; grouped as one giant non-converting path it bent the
Markov and Shapley fits.  The rebuild keeps them out of every journey and counts them; the
report metadata GA4 sends (thresholding, the "(other)" row, sampling) lands in the run record.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from closedloop.config.attribution import AttributionConfig
from closedloop.report.coverage import CoverageFigure, coverage_figures
from closedloop.report.period import Period
from closedloop.sandbox.company import Company
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store import models as m
from closedloop.store.engine import open_store
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODELS = AttributionConfig(models=["first_touch", "linear", "u_shaped", "markov", "shapley"])
METADATA = {
    "subjectToThresholding": True,
    "dataLossFromOtherRow": True,
    "samplingMetadatas": [{"samplesReadCount": "5000", "samplingSpaceSize": "20000"}],
}


def run(
    company: Company, db: Path, metadata: dict[str, Any] | None = None
) -> tuple[RunReport, list[Any], dict[str, CoverageFigure]]:
    with start_sandbox(company, now=NOW, burst_limit=100_000) as sandbox:
        if metadata:
            sandbox.ga4.state.report_metadata = metadata
        url = f"sqlite:///{db}"
        engine = open_store(url)
        config = sandbox.config(store_url=url).model_copy(update={"attribution": MODELS})
        connectors = build_connectors(config, sleep=lambda _s: None)
        report = run_once(engine=engine, config=config, sources=connectors.sources, writer=None,
                          log=connectors.log, now=NOW)
        with Session(engine) as session:
            figures = {f.key: f for f in coverage_figures(session, "u_shaped", Period())}
            credits = [tuple(r) for r in session.execute(select(
                col(m.Credit.conversion_id), col(m.Credit.touchpoint_id), col(m.Credit.model),
                col(m.Credit.weight), col(m.Credit.revenue)).order_by(
                col(m.Credit.conversion_id), col(m.Credit.touchpoint_id), col(m.Credit.model)))]
        engine.dispose()
    return report, credits, figures


def test_rows_of_no_one_are_counted_and_change_no_credit(tmp_path: Path) -> None:
    clean = generate_company(contacts=120, seed=3, now=NOW)
    clean_report, clean_credits, _ = run(clean, tmp_path / "clean.db")
    assert clean_report.status == "ok", clean_report.errors
    noisy = generate_company(contacts=120, seed=3, now=NOW)
    # Sessions GA4 could not tie to a client id, as it serves them: 30 of each kind, each on
    # its own minute and source, so none of them collapses into another row.
    extra = []
    for n, session in enumerate(s for s in noisy.sessions if not s.click_ids):
        if n >= 90:
            break
        extra.append(replace(session, client_id=("(not set)", "(other)", "")[n % 3], contact_id=""))
    noisy.sessions.extend(extra)
    report, credits, figures = run(noisy, tmp_path / "noisy.db", METADATA)
    assert report.status == "ok", report.errors
    assert report.rebuild is not None and clean_report.rebuild is not None
    assert report.rebuild.sessions_not_a_person == 90
    assert clean_report.rebuild.sessions_not_a_person == 0
    assert report.rebuild.sessions_anonymous == clean_report.rebuild.sessions_anonymous
    assert report.rebuild.sessions_matched == clean_report.rebuild.sessions_matched
    # Every credit under every model, Markov and Shapley included, exactly as without them.
    assert credits == clean_credits
    pulled = report.pulled["ga4.sessions"]
    pages = pulled["batches"]
    assert pulled["pages_subject_to_thresholding"] == pages
    assert pulled["pages_with_other_row_loss"] == pages
    assert pulled["pages_sampled"] == pages and pulled["sampled_events_read"] == 5000 * pages
    assert "pages_subject_to_thresholding" not in clean_report.pulled["ga4.sessions"]
    # The report's coverage figures say so.
    assert figures["sessions_not_a_person"].part == 90
    assert figures["pages_subject_to_thresholding"].part == pages == figures["pages_subject_to_thresholding"].whole
    assert figures["pages_with_other_row_loss"].part == pages
