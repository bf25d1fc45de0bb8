"""/healthz, /readyz and /metrics over real HTTP, against a real store."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from closedloop.store.engine import make_engine
from closedloop.sync.health import Metrics, serve_health, store_readiness
from closedloop.sync.scheduler import JobOutcome

_SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$')


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the host's proxy must not see 127.0.0.1


def _get(url: str) -> tuple[int, str, str]:
    try:
        with _NO_PROXY.open(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def _samples(body: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, f"not Prometheus text format: {line!r}"
        out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def test_healthy_ready_and_metrics(engine: Engine, now: datetime) -> None:
    metrics = Metrics()
    metrics.run_finished("run", JobOutcome(
        status="ok", records_pulled={"contacts": 120, "sessions": 900}, properties_written=42, write_failures=3,
        api_calls={"hubspot POST /crm/v3/objects/contacts/search": {"200": 7, "429": 1}},
    ), finished_at=now, duration_s=12.5)
    metrics.run_finished("run", JobOutcome(status="failed"), finished_at=now, duration_s=1.5)
    metrics.lease_held("run", True)
    metrics.tick_skipped("run", "lease_held")
    with serve_health(host="127.0.0.1", port=0, metrics=metrics, readiness=store_readiness(engine)) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz")[0] == 200
        status, _, body = _get(base + "/readyz")
        assert (status, body.strip()) == (200, "ready")
        status, ctype, body = _get(base + "/metrics")
        assert _get(base + "/nope")[0] == 404
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    samples = _samples(body)
    assert samples['closedloop_runs_total{job="run",status="ok"}'] == 1
    assert samples['closedloop_runs_total{job="run",status="failed"}'] == 1
    assert samples['closedloop_last_success_timestamp_seconds{job="run"}'] == now.timestamp()
    assert samples['closedloop_last_run_duration_seconds{job="run"}'] == 1.5
    assert samples['closedloop_records_pulled_total{stream="sessions"}'] == 900
    assert samples['closedloop_properties_written_total{job="run"}'] == 42
    assert samples['closedloop_write_failures_total{job="run"}'] == 3
    assert samples['closedloop_api_calls_total{service="hubspot",endpoint="POST /crm/v3/objects/contacts/search",'
                   'status="429"}'] == 1
    assert samples['closedloop_lease_held{job="run"}'] == 1
    assert samples['closedloop_ticks_skipped_total{job="run",reason="lease_held"}'] == 1
    for family in ("runs_total", "last_success_timestamp_seconds", "api_calls_total", "lease_held"):
        assert f"# TYPE closedloop_{family} " in body


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.run_finished("run", JobOutcome(status="ok", api_calls={'ga4 POST /a"b\\c\nd': {"200": 1}}),
                         finished_at=datetime.fromtimestamp(0).astimezone(), duration_s=0.0)
    line = next(ln for ln in metrics.render().splitlines() if ln.startswith("closedloop_api_calls_total{"))
    assert 'endpoint="POST /a\\"b\\\\c\\nd"' in line
    assert "\n" not in line


def test_not_ready_before_migration_and_when_the_store_is_gone(tmp_path: Path) -> None:
    bare = make_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    with bare.begin() as conn:
        conn.execute(text("SELECT 1"))
    ready, reason = store_readiness(bare)()
    assert not ready and "revision none" in reason
    gone = make_engine("postgresql://nobody:hunter2@127.0.0.1:1/none?connect_timeout=2")
    with serve_health(host="127.0.0.1", port=0, metrics=Metrics(), readiness=store_readiness(gone)) as server:
        status, _, body = _get(f"http://127.0.0.1:{server.port}/readyz")
        alive = _get(f"http://127.0.0.1:{server.port}/healthz")[0]
    assert status == 503 and "unreachable" in body
    assert "hunter2" not in body, "the store's password must never reach a probe"
    assert alive == 200, "a dead store makes the replica unready, not dead"


@pytest.mark.parametrize("path", ["/healthz?verbose=1", "/metrics?x=y"])
def test_query_strings_are_ignored(path: str) -> None:
    with serve_health(host="127.0.0.1", port=0, metrics=Metrics(), readiness=lambda: (True, "ready")) as server:
        assert _get(f"http://127.0.0.1:{server.port}{path}")[0] == 200
