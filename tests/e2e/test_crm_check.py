"""`closedloop crm check [--create] [--grant]` as typed, against each emulated CRM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import SANDBOX_TOKEN, start_sandbox
from closedloop.sandbox.launch_salesforce import start_salesforce_sandbox

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


def check(config: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "CLOSEDLOOP_SANDBOX_TOKEN": SANDBOX_TOKEN}
    command = [sys.executable, "-m", "closedloop", "crm", "check", "--json", "--config", str(config), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def company() -> Any:
    return generate_company(contacts=20, seed=3, now=NOW)


@pytest.fixture
def hubspot_config(company: Any, tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    with start_sandbox(company, now=NOW) as sandbox:
        path = tmp_path / "hubspot.yaml"
        path.write_text(sandbox.config_yaml(store_url=f"sqlite:///{tmp_path / 'x.db'}"))
        yield path, sandbox


@pytest.fixture
def salesforce_config(company: Any, tmp_path: Path) -> Iterator[Path]:
    with start_salesforce_sandbox(company, now=NOW) as sandbox:
        path = tmp_path / "salesforce.yaml"
        path.write_text(sandbox.config_yaml(store_url=f"sqlite:///{tmp_path / 'x.db'}"))
        yield path


def test_hubspot_lists_missing_properties_creates_them_then_has_all(hubspot_config: tuple[Path, Any]) -> None:
    config, _sandbox = hubspot_config
    code, before = check(config)
    assert code == 1 and before["crm"] == "hubspot"
    assert before["missing"] == before["expected"] and not before["created"]
    assert not any(e.startswith("hubspot POST") for e in before["api_calls"])  # listing writes nothing
    code, created = check(config, "--create")
    assert code == 0 and sorted(created["created"]) == sorted(before["missing"]) and not created["missing"]
    code, after = check(config)
    assert code == 0 and not after["missing"] and not after["created"]


def test_salesforce_names_the_permission_set_until_the_grant(salesforce_config: Path) -> None:
    code, before = check(salesforce_config)
    assert code == 1 and before["crm"] == "salesforce" and set(before["missing"]) == set(before["expected"])
    code, created = check(salesforce_config, "--create")
    assert code == 1 and created["created"]
    # Created but not granted: invisible to the API user, and the message says where to grant.
    assert set(created["needs_grant"]) == set(created["missing"]) == set(created["expected"])
    assert "Closedloop_Integration" in created["message"]
    code, granted = check(salesforce_config, "--create", "--grant")
    assert code == 0 and granted["granted"] and not granted["missing"]
