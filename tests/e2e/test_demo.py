"""`closedloop demo --json` end to end, as a user runs it: the numbers must hold together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    done = subprocess.run(
        [sys.executable, "-m", "closedloop", "demo", "--json", "--contacts", "400", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert Path(data["database"]) == db and db.exists()
    return data


def test_every_model_credits_exactly_the_won_revenue(demo: dict[str, Any]) -> None:
    summary = demo["summary"]
    assert summary["won_revenue"] > 0
    assert set(summary["models"]) >= {"first_touch", "last_touch", "linear", "u_shaped"}
    for model in summary["models"]:
        credited = sum(c["revenue"].get(model, 0.0) for c in summary["channels"].values())
        assert credited == pytest.approx(summary["won_revenue"], abs=0.05 * len(summary["channels"])), model


def test_credited_counts_match_the_crm(demo: dict[str, Any]) -> None:
    summary = demo["summary"]
    channels = summary["channels"].values()
    assert sum(c["contacts"] for c in channels) == pytest.approx(summary["totals"]["contacts"], abs=0.01)
    assert sum(c["won"] for c in channels) == pytest.approx(summary["totals"]["won"], abs=0.01)
    assert sum(c["deals"] for c in channels) == pytest.approx(summary["totals"]["deals"], abs=0.01)
    assert summary["totals"]["contacts"] == demo["company"]["contacts"]


def test_the_first_run_writes_and_the_second_writes_nothing(demo: dict[str, Any]) -> None:
    first, second = demo["first_run"], demo["second_run"]
    assert first["status"] == second["status"] == "ok"
    assert first["writeback"]["properties_written"] > demo["company"]["contacts"]
    assert first["writeback"]["records_failed"] == 0
    assert second["writeback"]["properties_written"] == 0
    assert second["writeback"]["objects_written"] == 0
    assert not any("batch/update" in endpoint for endpoint in second["api_calls"])
    assert second["rebuild"]["credits"]["changed"] == 0


def test_api_calls_are_reported_by_endpoint(demo: dict[str, Any]) -> None:
    calls = demo["first_run"]["api_calls"]
    assert any(e.startswith("hubspot POST /crm/v3/objects/contacts/search") for e in calls)
    assert any(e.startswith("ga4 POST /v1beta/properties/") for e in calls)
    written = demo["first_run"]["writeback"]["by_property"]
    for object_type in ("contacts", "deals"):
        updates = sum(calls[f"hubspot POST /crm/v3/objects/{object_type}/batch/update"].values())
        objects = written[f"{object_type}.closedloop_touch_count"]  # every object gets a touch count
        assert updates == -(-objects // 100), object_type  # full batches of 100, one partial at most


def test_the_crm_now_holds_the_attribution(demo: dict[str, Any]) -> None:
    sample = demo["crm_sample"]
    deal = next(v for k, v in sample.items() if k.startswith("deal"))
    assert deal["closedloop_attribution_model"] == demo["summary"]["primary_model"]
    assert deal["closedloop_primary_channel"] in demo["summary"]["channels"]
    assert float(deal["closedloop_days_to_close"]) >= 0
