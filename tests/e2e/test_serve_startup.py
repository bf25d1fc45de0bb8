"""`closedloop serve` start-up as an operator meets it: the default bind, a taken port, the run at
start, /readyz that follows the secrets, a /metrics token, and endpoints that show no person."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox

pytestmark = pytest.mark.slow
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    company = generate_company(contacts=60, seed=9, now=NOW)
    with start_sandbox(company, now=NOW, burst_limit=100_000) as running:
        yield running


def _config(sandbox: RunningSandbox, tmp: Path, extra: str = "") -> Path:
    token = tmp / "hubspot_token"
    token.write_text(SANDBOX_TOKEN, encoding="utf-8")
    text = sandbox.config_yaml(store_url=f"sqlite:///{tmp / 'store.db'}").replace(
        "access_token: ${CLOSEDLOOP_SANDBOX_TOKEN}", f"access_token_file: {token}")
    assert "access_token_file" in text
    path = tmp / "closedloop.yaml"
    path.write_text(text + "schedule:\n  jobs:\n    run:\n      interval_minutes: 60\n" + extra, encoding="utf-8")
    return path


def _serve(config: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CLOSEDLOOP_HOST", "CLOSEDLOOP_PORT")}
    with log.open("w", encoding="utf-8") as stderr:
        return subprocess.Popen([sys.executable, "-m", "closedloop", "serve", "--config", str(config), *args],
                                env={**environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=stderr, cwd=config.parent)


def _wait_for(log: Path, pattern: str, timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(encoding="utf-8"))
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in:\n{log.read_text(encoding='utf-8')}")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_taken_port_is_one_line_naming_the_port_and_the_setting(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "serve.log"
        proc = _serve(_config(sandbox, tmp_path), log, env={"CLOSEDLOOP_PORT": str(port)})
        assert proc.wait(timeout=60) == 2
    text = log.read_text(encoding="utf-8")
    errors = [line for line in text.splitlines() if "already in use" in line]
    assert len(errors) == 1 and f"port {port} on 127.0.0.1" in errors[0]
    assert "schedule.health_port" in errors[0] and "--port" in errors[0]
    assert "Traceback" not in text and "Errno" not in text


def test_missing_secret_file_refuses_start_with_file_and_line(sandbox: RunningSandbox, tmp_path: Path) -> None:
    config = _config(sandbox, tmp_path)
    (tmp_path / "hubspot_token").unlink()
    done = subprocess.run([sys.executable, "-m", "closedloop", "serve", "--config", str(config), "--port", "0"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 3
    line = next(line for line in config.read_text().splitlines() if "access_token_file" in line)
    number = config.read_text().splitlines().index(line) + 1
    assert f"{config}:{number}" in done.stderr and "hubspot.access_token_file" in done.stderr
    assert "file not found" in done.stderr and "Traceback" not in done.stderr


def test_serve_runs_at_start_readyz_follows_secrets_metrics_token_no_personal_data(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    config = _config(sandbox, tmp_path, "  metrics_token: ${METRICS_TOKEN}\n")
    log = tmp_path / "serve.log"
    proc = _serve(config, log, "--port", "0", env={"METRICS_TOKEN": "scrape-me"})
    try:
        found = _wait_for(log, r"health endpoints on http://([\d.]+):(\d+)")
        assert found.group(1) == "127.0.0.1", "binds this machine only unless told otherwise"
        base = f"http://127.0.0.1:{found.group(2)}"
        assert _get(base + "/readyz") == (200, "ready\n")
        # The first run starts now, not at the next hourly tick.
        _wait_for(log, r"job run: tick \S+ finished: ok", timeout=120)
        assert _get(base + "/metrics")[0] == 401
        assert _get(base + "/metrics", {"Authorization": "Bearer wrong-token"})[0] == 401
        status, metrics = _get(base + "/metrics", {"Authorization": "Bearer scrape-me"})
        assert status == 200 and 'closedloop_runs_total{job="run",status="ok"} 1' in metrics
        bodies = [metrics] + [_get(base + path)[1] for path in ("/healthz", "/readyz", "/nope", "/metrics")]
        # (HubSpot ids are bare numbers a count could equal, so emails and GA client ids are the test.)
        people = [c.email for c in sandbox.company.contacts] + [
            cid for c in sandbox.company.contacts for cid in c.ga_client_ids]
        assert len(people) > 60
        leaked = [p for p in people if any(re.search(rf"\b{re.escape(p)}\b", body) for body in bodies)]
        assert not leaked, f"personal data on an endpoint: {leaked[:3]}"
        assert "scrape-me" not in log.read_text(encoding="utf-8")
        # A secret the process can no longer read: not ready, and it says which one.
        token = tmp_path / "hubspot_token"
        token.rename(tmp_path / "moved")
        status, reason = _get(base + "/readyz")
        assert status == 503 and "hubspot.access_token_file" in reason and "file not found" in reason
        (tmp_path / "moved").rename(token)
        assert _get(base + "/readyz") == (200, "ready\n")
    finally:
        assert _stop(proc) == 0, log.read_text(encoding="utf-8")[-3000:]
