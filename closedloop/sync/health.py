"""What the container shows its orchestrator: /healthz, /readyz and /metrics (Prometheus text).

/healthz answers while the process can serve HTTP at all; /readyz only while the process can do
its job: the store answers, its schema is at the newest migration (a replica started with older
code than the schema, or before `migrate`, must not take traffic or jobs) and every secret file
the config names can be read (a token file the process cannot open fails every run).  Ready does
not wait for the first run to finish: a run can take an hour, and a run's own failures are what
/metrics and `closedloop runs` report.  The server is the standard library's threaded HTTP
server: a probe stuck on a slow database never blocks the next one.

Nothing here shows personal data: the endpoints answer with counts, job and stream names, API
endpoints and statuses, never a record.  /metrics may require a bearer token
(``schedule.metrics_token``), compared in constant time.
"""

from __future__ import annotations

import hmac
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, text

from closedloop.sync.scheduler import JobOutcome

Readiness = Callable[[], tuple[bool, str]]
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Thread-safe counters and gauges of this process, rendered in Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.pulled: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self.write_failures: Counter[str] = Counter()
        self.api_calls: Counter[tuple[str, str, str]] = Counter()
        self.last_success: dict[str, float] = {}
        self.last_duration: dict[str, float] = {}
        self.lease: dict[str, int] = {}

    def run_finished(self, job: str, outcome: JobOutcome, *, finished_at: datetime, duration_s: float) -> None:
        with self._lock:
            self.runs[(job, outcome.status)] += 1
            self.last_duration[job] = duration_s
            if outcome.status == "ok":
                self.last_success[job] = finished_at.timestamp()
            self.pulled.update(outcome.records_pulled)
            self.written[job] += outcome.properties_written
            self.write_failures[job] += outcome.write_failures
            for key, statuses in outcome.api_calls.items():
                service, _, endpoint = key.partition(" ")
                for status, n in statuses.items():
                    self.api_calls[(service, endpoint, str(status))] += n

    def lease_held(self, job: str, held: bool) -> None:
        with self._lock:
            self.lease[job] = int(held)

    def tick_skipped(self, job: str, reason: str) -> None:
        with self._lock:
            self.skipped[(job, reason)] += 1

    def seed_last_success(self, job: str, finished_at: datetime) -> None:
        """After a restart, the last success recorded in the store keeps the staleness alert honest."""
        with self._lock:
            self.last_success.setdefault(job, finished_at.timestamp())

    def render(self) -> str:
        with self._lock:
            families: list[tuple[str, str, str, list[tuple[dict[str, str], float]]]] = [
                ("closedloop_runs_total", "counter", "Runs finished, by job and status",
                 [({"job": j, "status": s}, n) for (j, s), n in sorted(self.runs.items())]),
                ("closedloop_ticks_skipped_total", "counter", "Ticks this replica did not run, by reason",
                 [({"job": j, "reason": r}, n) for (j, r), n in sorted(self.skipped.items())]),
                ("closedloop_last_success_timestamp_seconds", "gauge", "End of the last run with status ok",
                 [({"job": j}, t) for j, t in sorted(self.last_success.items())]),
                ("closedloop_last_run_duration_seconds", "gauge", "Wall time of the last run",
                 [({"job": j}, t) for j, t in sorted(self.last_duration.items())]),
                ("closedloop_records_pulled_total", "counter", "Records stored from the sources, by stream",
                 [({"stream": s}, n) for s, n in sorted(self.pulled.items())]),
                ("closedloop_properties_written_total", "counter", "CRM property values written",
                 [({"job": j}, n) for j, n in sorted(self.written.items())]),
                ("closedloop_write_failures_total", "counter", "CRM records whose write failed",
                 [({"job": j}, n) for j, n in sorted(self.write_failures.items())]),
                ("closedloop_api_calls_total", "counter", "Remote API calls by service, endpoint and status",
                 [({"service": sv, "endpoint": ep, "status": st}, n)
                  for (sv, ep, st), n in sorted(self.api_calls.items())]),
                ("closedloop_lease_held", "gauge", "1 while this replica holds the job's lease",
                 [({"job": j}, v) for j, v in sorted(self.lease.items())]),
            ]
        lines: list[str] = []
        for name, kind, help_text, samples in families:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def store_readiness(engine: Engine) -> Readiness:
    """Ready when the store answers and its alembic revision is the newest this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from closedloop.store.engine import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())

    def check() -> tuple[bool, str]:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(conn).get_current_heads())
        except Exception as exc:  # any failure to reach the store means not ready; say which kind only
            return False, f"store unreachable ({type(exc).__name__})"
        if current != heads:
            have = ", ".join(sorted(current)) or "none"
            return False, f"schema at revision {have}, code expects {', '.join(sorted(heads))}"
        return True, "ready"

    return check


def files_readiness(files: list[tuple[str, str]]) -> Readiness:
    """Ready while every (field, path) names a file this process can read; the content is never shown."""
    from closedloop.config.loader import file_unreadable

    def check() -> tuple[bool, str]:
        for field_name, path in files:
            reason = file_unreadable(path)
            if reason:
                return False, f"secret file of {field_name} ({path}): {reason}"
        return True, "ready"

    return check


def all_ready(*checks: Readiness) -> Readiness:
    """Ready when every check is; the first one that is not says why."""

    def check() -> tuple[bool, str]:
        for one in checks:
            ready, reason = one()
            if not ready:
                return False, reason
        return True, "ready"

    return check


class HealthServer:
    """/healthz, /readyz, /metrics on a background thread; ``port`` is the bound one (0 picks)."""

    def __init__(
        self, *, host: str, port: int, metrics: Metrics, readiness: Readiness, metrics_token: str | None = None
    ) -> None:
        handler = _handler(metrics, readiness, metrics_token)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve_health(
    *, host: str, port: int, metrics: Metrics, readiness: Readiness, metrics_token: str | None = None
) -> Iterator[HealthServer]:
    server = HealthServer(
        host=host, port=port, metrics=metrics, readiness=readiness, metrics_token=metrics_token
    ).start()
    try:
        yield server
    finally:
        server.stop()


def _authorized(header: str | None, token: str | None) -> bool:
    """No token configured: open.  Else ``Authorization: Bearer <token>``, compared in constant time."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _handler(metrics: Metrics, readiness: Readiness, metrics_token: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "closedloop"
        sys_version = ""

        def do_GET(self) -> None:  # the name http.server dispatches to
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "ok\n")
            elif path == "/readyz":
                ready, reason = readiness()
                self._send(200 if ready else 503, reason + "\n")
            elif path == "/metrics":
                if _authorized(self.headers.get("Authorization"), metrics_token):
                    self._send(200, metrics.render(), content_type=_CONTENT_TYPE)
                else:
                    self._send(401, "a bearer token is required (schedule.metrics_token)\n",
                               extra={"WWW-Authenticate": 'Bearer realm="closedloop metrics"'})
            else:
                self._send(404, "not found; try /healthz, /readyz or /metrics\n")

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(
            self,
            status: int,
            body: str,
            *,
            content_type: str = "text/plain; charset=utf-8",
            extra: dict[str, str] | None = None,
        ) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # probes every few seconds would drown the run log

    return Handler
