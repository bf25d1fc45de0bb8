"""Pulling a stream into the store: large pages commit in slices, the cursor with the last."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from closedloop.records import Batch, WebSessionRecord
from closedloop.store import models as m
from closedloop.sync import pipeline
from closedloop.sync.cursors import load_cursor
from closedloop.sync.pipeline import COMMIT_RECORDS, pull_stream

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STREAM = "ga4.sessions"


class OnePage:
    """A source with one page of sessions, as GA4 answers a report of 50,000 rows."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def streams(self) -> Sequence[str]:
        return [STREAM]

    def pull(self, stream: str, cursor: dict[str, Any] | None, *, now: datetime) -> Iterator[Batch]:
        sessions = [
            WebSessionRecord(f"{i}.1", NOW - timedelta(minutes=i), "google", "cpc", "brand", "/")
            for i in range(self.rows)
        ]
        yield Batch(STREAM, sessions, {"through": "2026-11-20"})


def _sessions(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(m.WebSession)).scalar_one())


def test_a_large_page_commits_in_slices_and_moves_the_cursor_with_the_last(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = COMMIT_RECORDS // 3 + 1
    rows = 2 * COMMIT_RECORDS + extra
    commits: list[int] = []
    store_records, store_batch = pipeline.store_records, pipeline.store_batch

    def counting_records(session: Any, records: Any) -> Any:
        commits.append(len(records))
        return store_records(session, records)

    def failing_batch(session: Any, batch: Batch, *, now: datetime, **_options: Any) -> Any:
        raise RuntimeError("killed before the page's last slice")

    monkeypatch.setattr(pipeline, "store_records", counting_records)
    monkeypatch.setattr(pipeline, "store_batch", failing_batch)
    with pytest.raises(RuntimeError, match="last slice"):
        pull_stream(engine, OnePage(rows), STREAM, now=NOW, progress=lambda _m: None)
    # Slices before the last are committed; the cursor is not, so the page is pulled again.
    assert commits == [COMMIT_RECORDS, extra]
    assert _sessions(engine) == COMMIT_RECORDS + extra
    with Session(engine) as session:
        assert load_cursor(session, STREAM) is None

    monkeypatch.setattr(pipeline, "store_batch", store_batch)
    totals = pull_stream(engine, OnePage(rows), STREAM, now=NOW, progress=lambda _m: None)
    assert totals["web_sessions"] == rows and _sessions(engine) == rows  # upserts: nothing twice
    with Session(engine) as session:
        assert load_cursor(session, STREAM) == {"through": "2026-11-20"}
