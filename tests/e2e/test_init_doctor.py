"""``closedloop init`` writes a config that validates; ``closedloop doctor`` checks one against
the sandbox: all good, a token without a write scope, an unregistered client-id dimension, a
service that does not answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from closedloop.config.loader import load_config
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.hubspot.oauth import FULL_SCOPES
from closedloop.sandbox.launch import SANDBOX_TOKEN, RunningSandbox, start_sandbox
from closedloop.sync.doctor import Check, run_checks

pytestmark = pytest.mark.slow
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "closedloop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, "COLUMNS": "200", **(env or {})}, check=False)


def test_init_writes_a_config_that_validates_and_the_hash_key(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    done = cli("init", "--yes", "--ga4-property", "987654", "--store", "sqlite:///x.db", "-o", "cfg/c.yaml",
               "--secrets-dir", str(secrets), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config_file = tmp_path / "cfg" / "c.yaml"
    key = tmp_path / "cfg" / "closedloop.hash_key"
    assert len(key.read_text().strip()) >= 32 and (key.stat().st_mode & 0o077) == 0
    text = config_file.read_text()
    assert text.count("\n#") >= 5  # commented
    # init names the files still to provide; until they exist the config is refused, naming them.
    service_account = secrets / "ga4-service-account.json"
    assert str(service_account) in done.stdout
    missing = cli("config", "validate", "--config", str(config_file), cwd=tmp_path, env={"HUBSPOT_TOKEN": "t"})
    assert missing.returncode == 3 and "ga4.credentials_file" in missing.stderr and "not found" in missing.stderr
    secrets.mkdir()
    service_account.write_text("{}")
    valid = cli("config", "validate", "--config", str(config_file), cwd=tmp_path, env={"HUBSPOT_TOKEN": "t"})
    assert valid.returncode == 0, valid.stderr
    config = load_config(config_file, environ={"HUBSPOT_TOKEN": "t"})
    assert config.ga4 is not None and config.ga4.property_id == "987654"
    assert config.store.url == "sqlite:///x.db" and config.crm == "hubspot"
    # Without the token's variable the written file is refused: the secret really is a reference.
    env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_TOKEN"}
    refused = subprocess.run([sys.executable, "-m", "closedloop", "config", "validate", "--config", str(config_file)],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    assert refused.returncode == 3 and "HUBSPOT_TOKEN" in refused.stderr


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "closedloop.yaml").write_text("mine\n")
    done = cli("init", "--yes", cwd=tmp_path)
    assert done.returncode == 2 and "--force" in done.stderr
    assert (tmp_path / "closedloop.yaml").read_text() == "mine\n"
    forced = cli("init", "--yes", "--force", "--crm", "salesforce", "--secrets", "file", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    config = load_config(tmp_path / "closedloop.yaml", environ={})
    assert config.crm == "salesforce" and config.salesforce is not None
    assert config.salesforce.private_key_file == "/run/secrets/salesforce_jwt_key.pem"


def test_init_asks_when_interactive(tmp_path: Path) -> None:
    answers = "hubspot\n555\ncustomEvent:cid\nsqlite:///asked.db\nfile\n"
    done = subprocess.run([sys.executable, "-m", "closedloop", "init"], input=answers, capture_output=True,
                          text=True, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    config = load_config(tmp_path / "closedloop.yaml", environ={})
    assert config.ga4 is not None and config.ga4.client_id_dimension == "customEvent:cid"
    assert config.hubspot is not None and config.hubspot.access_token_file == "/run/secrets/hubspot_token"
    assert config.store.url == "sqlite:///asked.db"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    company = generate_company(contacts=40, seed=3, now=NOW)
    with start_sandbox(company, now=NOW) as running:
        yield running


def write_config(tmp_path: Path, sandbox: RunningSandbox, *, hubspot_url: str | None = None,
                 dimension: str = "customUser:ga_client_id") -> Path:
    file = tmp_path / "doctor.yaml"
    file.write_text(
        f"store:\n  url: sqlite:///{tmp_path}/store.db\n"
        f"hubspot:\n  base_url: {hubspot_url or sandbox.hubspot.url}\n  access_token: ${{SANDBOX_TOKEN}}\n"
        f'ga4:\n  property_id: "{sandbox.company.ga4_property_id}"\n  base_url: {sandbox.ga4.url}\n'
        f"  client_id_dimension: {dimension}\n"
        f"privacy:\n  hash_key_file: {tmp_path}/key\n"
    )
    return file


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_doctor_passes_on_a_good_sandbox_config(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config = write_config(tmp_path, sandbox)
    done = cli("doctor", "--config", str(config), "--json", cwd=tmp_path, env={"SANDBOX_TOKEN": SANDBOX_TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"] is True
    assert statuses["hubspot token scopes"] == "pass"
    assert statuses["ga4 property access"] == "pass"
    assert statuses["secret hubspot.access_token"] == "pass"
    assert "fail" not in statuses.values()
    assert SANDBOX_TOKEN not in done.stdout  # never the secret itself
    text = cli("doctor", "--config", str(config), cwd=tmp_path, env={"SANDBOX_TOKEN": SANDBOX_TOKEN})
    assert text.returncode == 0 and "ready to run" in text.stdout


def test_doctor_names_the_missing_write_scope(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config = load_config(write_config(tmp_path, sandbox), environ={"SANDBOX_TOKEN": SANDBOX_TOKEN})
    sandbox.hubspot.token_info.grant(SANDBOX_TOKEN, [s for s in FULL_SCOPES if s != "crm.objects.contacts.write"])
    try:
        checks = by_name(run_checks(config))
    finally:
        sandbox.hubspot.token_info.grant(SANDBOX_TOKEN, FULL_SCOPES)
    scopes = checks["hubspot token scopes"]
    assert scopes.status == "fail"
    assert "crm.objects.contacts.write" in scopes.message and "crm.objects.deals.write" not in scopes.message
    assert checks["ga4 property access"].status == "pass"


def test_doctor_fails_an_unregistered_client_id_dimension(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config_file = write_config(tmp_path, sandbox, dimension="customUser:gacid_not_registered")
    done = cli("doctor", "--config", str(config_file), "--json", cwd=tmp_path, env={"SANDBOX_TOKEN": SANDBOX_TOKEN})
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    ga4 = checks["ga4 property access"]
    assert ga4["status"] == "fail" and "customUser:gacid_not_registered" in ga4["message"]
    assert "customUser:ga_client_id" in ga4["message"]  # what the property does register
    assert checks["hubspot token scopes"]["status"] == "pass"


def test_doctor_names_the_host_that_does_not_answer(tmp_path: Path, sandbox: RunningSandbox) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = load_config(write_config(tmp_path, sandbox, hubspot_url=f"http://127.0.0.1:{port}"),
                         environ={"SANDBOX_TOKEN": SANDBOX_TOKEN})
    checks = by_name(run_checks(config))
    scopes = checks["hubspot token scopes"]
    assert scopes.status == "fail" and f"127.0.0.1:{port}" in scopes.message, scopes
    assert checks["ga4 property access"].status == "pass"


def test_doctor_reports_an_unreadable_secret_file_without_calling(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config_file = tmp_path / "doctor.yaml"
    write_config(tmp_path, sandbox)
    config_file.write_text(config_file.read_text().replace(
        "access_token: ${SANDBOX_TOKEN}", f"access_token_file: {tmp_path}/absent_token"))
    checks = by_name(run_checks(load_config(config_file, environ={})))
    secret = checks["secret hubspot.access_token"]
    assert secret.status == "fail" and "absent_token" in secret.message
    assert checks["hubspot"].status == "fail"
