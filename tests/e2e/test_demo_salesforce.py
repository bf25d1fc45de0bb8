"""`closedloop demo --crm salesforce` end to end, beside `--crm hubspot` on the same company.

Both emulated CRMs are filled from one seeded company, so the loop must find the same
attribution: won revenue, credited revenue per model and channel, conversions by kind.  A
difference means the org's mapping of the company, the connector's parsing or the store's
folding (converted Leads, contact roles, campaign responses) lost or bent something.

Both runs see the same clock (the demo builds its company relative to now, and GA4 serves
minutes), so the comparison is exact and not subject to when the test runs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# `python -m closedloop`, with the command's clock frozen (a fake clock, nothing else changed).
FROZEN_CLI = (
    "import sys, datetime, closedloop.cli.console as console\n"
    "console.now = lambda: datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)\n"
    "from closedloop.cli import entrypoint\n"
    "entrypoint(sys.argv[1:])\n"
)


def run_demo(crm: str, db: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", FROZEN_CLI, "demo", "--json", "--contacts", "400", "--crm", crm, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("demos")
    return {crm: run_demo(crm, root / f"{crm}.db") for crm in ("hubspot", "salesforce")}


def store_totals(db: str) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conversions = dict(conn.execute("SELECT kind, COUNT(*) FROM conversions GROUP BY kind").fetchall())
        credited = {
            f"{model} / {channel}": round(revenue, 2)
            for model, channel, revenue in conn.execute(
                "SELECT model, channel, SUM(revenue) FROM credits GROUP BY model, channel"
            )
        }
    return {"conversions": conversions, "credited": credited}


def test_both_crms_give_the_same_attribution(demos: dict[str, dict[str, Any]]) -> None:
    hubspot, salesforce = demos["hubspot"], demos["salesforce"]
    assert salesforce["company"] == hubspot["company"]
    assert salesforce["summary"]["won_revenue"] == hubspot["summary"]["won_revenue"] > 0
    assert salesforce["summary"]["totals"] == hubspot["summary"]["totals"]
    hs, sf = store_totals(hubspot["database"]), store_totals(salesforce["database"])
    assert sf["conversions"] == hs["conversions"]
    assert set(hs["conversions"]) == {"contact_created", "deal_created", "deal_won"}
    assert sf["credited"] == hs["credited"]
    # The campaign responses landed where the portal's offline imports land, through the rule.
    assert any(key.endswith(" / Offline") and value > 0 for key, value in sf["credited"].items())


def test_salesforce_demo_reports_like_the_hubspot_demo(demos: dict[str, dict[str, Any]]) -> None:
    hubspot, salesforce = demos["hubspot"], demos["salesforce"]
    assert set(salesforce) == set(hubspot)
    first, second = salesforce["first_run"], salesforce["second_run"]
    assert first["status"] == second["status"] == "ok"
    assert first["writeback"]["records_failed"] == 0
    assert first["writeback"]["objects_written"] == hubspot["first_run"]["writeback"]["objects_written"]
    assert second["writeback"]["properties_written"] == 0
    assert not any("composite" in e or "jobs/ingest" in e for e in second["api_calls"])
    usage = first["usage"]["salesforce"]
    assert usage["api_allocation"] > 0 and usage["api_usage_last"] >= usage["api_usage_first"]
    deal, contact = salesforce["crm_sample"].values()
    assert deal["Closedloop_Primary_Channel__c"] and contact["Closedloop_First_Touch_Channel__c"]
