"""The CLI as a user meets it: help, version, config errors, and a real run against `sandbox serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from closedloop import __version__

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "closedloop", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {}), "COLUMNS": "200"}, check=False)


def test_version_and_help_list_every_command() -> None:
    assert cli("--version").stdout.strip() == f"closedloop {__version__}"
    out = cli("--help").stdout
    for command in ("demo", "run", "report", "writeback", "runs", "attribute", "config", "sandbox", "mapping"):
        assert command in out


def test_config_validate_points_at_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "closedloop.yaml"
    bad.write_text("hubspot:\n  access_token: pat-inline-secret\n  tier: platinum\nga4:\n  property_id: x1\n")
    done = cli("config", "validate", "--config", str(bad))
    assert done.returncode == 3
    err = done.stderr
    assert f"{bad}:2" in err and "hubspot.access_token" in err
    assert f"{bad}:3" in err and "hubspot.tier" in err
    assert f"{bad}:5" in err and "ga4.property_id" in err
    assert "pat-inline-secret" not in err + done.stdout


def test_config_schema_validates_the_example_config(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    assert cli("config", "schema", "-o", str(schema_file)).returncode == 0
    schema = json.loads(schema_file.read_text())
    example = yaml.safe_load((ROOT / "config" / "closedloop.example.yaml").read_text())
    jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "stroe": {}}, schema)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "sandbox.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "closedloop", "sandbox", "serve", "--contacts", "120", "--config-out", str(config),
         "--store", f"sqlite:///{tmp_path / 'store.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not config.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert config.exists(), proc.stderr.read() if proc.stderr else "no config written"
        yield config
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "Sandbox stopped." in out


def test_run_report_runs_and_dry_run_against_sandbox_serve(served: Path) -> None:
    env = {"CLOSEDLOOP_SANDBOX_TOKEN": "sandbox-token"}
    first = cli("run", "--config", str(served), "--json", env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["status"] == "ok" and report["writeback"]["properties_written"] > 0
    assert cli("config", "validate", "--config", str(served), env=env).returncode == 0
    summary = json.loads(cli("report", "--config", str(served), "--json", env=env).stdout)
    assert summary["totals"]["contacts"] == 120
    preview = cli("writeback", "--dry-run", "--config", str(served), env=env)
    assert preview.returncode == 0 and "Nothing to write" in preview.stdout
    runs = cli("runs", "--config", str(served), env=env)
    assert runs.returncode == 0 and "ok" in runs.stdout
    no_token = {k: v for k, v in os.environ.items() if k != "CLOSEDLOOP_SANDBOX_TOKEN"}
    missing = subprocess.run([sys.executable, "-m", "closedloop", "run", "--config", str(served)],
                             capture_output=True, text=True, env=no_token, timeout=60, check=False)
    assert missing.returncode == 3 and "CLOSEDLOOP_SANDBOX_TOKEN is not set" in missing.stderr
