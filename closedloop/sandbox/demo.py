"""`closedloop demo`: the whole loop against the built-in sandbox, on a SQLite file.

Two runs back to back: the first pulls, attributes and writes; the second proves that nothing
changed is written again.  Everything runs in process and stops when the demo ends.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from closedloop.attribution.roi import RoiReport, roi_report
from closedloop.config.models import Config
from closedloop.mapping.channels import ChannelMapper
from closedloop.report.roi_query import read_credits, read_days_lead_to_won, read_spend
from closedloop.report.summary import channel_summary
from closedloop.sandbox.company import Company
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import RunningSandbox, start_sandbox
from closedloop.sandbox.launch_salesforce import RunningSalesforceSandbox, start_salesforce_sandbox
from closedloop.sandbox.salesforce import SalesforceState
from closedloop.store.engine import open_store, session_scope
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import RunReport, run_once

Progress = Callable[[str], None]


@dataclass(slots=True)
class DemoResult:
    first: RunReport
    second: RunReport
    summary: dict[str, Any]
    database: str
    company: dict[str, int]
    seconds: dict[str, float]
    crm_sample: dict[str, dict[str, Any]]
    roi: RoiReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "company": self.company,
            "seconds": self.seconds,
            "summary": self.summary,
            "first_run": {
                **self.first.stats(),
                "status": self.first.status,
                "errors": self.first.errors,
                "api_calls": self.first.api_calls,
            },
            "second_run": {
                **self.second.stats(),
                "status": self.second.status,
                "errors": self.second.errors,
                "api_calls": self.second.api_calls,
            },
            "crm_sample": self.crm_sample,
            "roi": {"rows": [r.as_dict() for r in self.roi.rows], "total": self.roi.total.as_dict()},
        }


def run_demo(
    *,
    contacts: int = 2000,
    seed: int = 7,
    database: Path | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    crm: str = "hubspot",
) -> DemoResult:
    """``crm`` picks the emulated CRM (hubspot or salesforce); GA4 and the company are the same."""
    say = progress or (lambda _msg: None)
    now = now or datetime.now(UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say(f"generating a company of {contacts:,} contacts")
    company = generate_company(contacts=contacts, seed=seed, now=now)
    timings["generate"] = time.perf_counter() - t0
    if database is None:
        database = Path(tempfile.mkdtemp(prefix="closedloop-demo-")) / "closedloop.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    if database.exists():
        database.unlink()
    url = f"sqlite:///{database}"
    with _start(crm, company, now=now) as sandbox:
        config = sandbox.config(store_url=url)
        engine = open_store(url)
        try:
            reports = []
            for label in ("first", "second"):
                t = time.perf_counter()
                connectors = build_connectors(config)
                reports.append(
                    run_once(
                        engine=engine,
                        config=config,
                        sources=connectors.sources,
                        writer=connectors.writer,
                        log=connectors.log,
                        now=now,
                        progress=_prefixed(say, f"[{label} run] "),
                    )
                )
                timings[f"{label}_run"] = time.perf_counter() - t
            summary = channel_summary(engine, config).as_dict()
            roi = demo_roi(engine, config)
            sample = (
                salesforce_sample(sandbox.salesforce.state)
                if isinstance(sandbox, RunningSalesforceSandbox)
                else _crm_sample(sandbox, config.writeback.property_prefix)
            )
        finally:
            engine.dispose()
    timings["total"] = time.perf_counter() - t0
    return DemoResult(
        first=reports[0],
        second=reports[1],
        summary=summary,
        database=str(database),
        company={"contacts": len(company.contacts), "deals": len(company.deals), "sessions": len(company.sessions)},
        seconds={k: round(v, 2) for k, v in timings.items()},
        crm_sample=sample,
        roi=roi,
    )


def _start(crm: str, company: Company, *, now: datetime) -> RunningSandbox | RunningSalesforceSandbox:
    if crm == "salesforce":
        return start_salesforce_sandbox(company, now=now)
    if crm != "hubspot":
        raise ValueError(f"crm must be hubspot or salesforce, not {crm!r}")
    return start_sandbox(company, now=now)


def salesforce_sample(state: SalesforceState) -> dict[str, dict[str, Any]]:
    """One won Opportunity and its primary Contact, as the org now holds them (closedloop fields only)."""

    def own(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k.startswith("Closedloop_") and v is not None}

    won = next((o for o in state.all_rows("Opportunity") if o["IsWon"]), None)
    if won is None:
        return {}
    out = {f"Opportunity {won['Id']} ({won['Name']})": own(won)}
    role = next(
        (r for r in state.all_rows("OpportunityContactRole") if r["OpportunityId"] == won["Id"] and r["IsPrimary"]),
        None,
    )
    contact = state.get("Contact", role["ContactId"]) if role else None
    if contact is not None:
        out[f"Contact {contact['Id']}"] = own(contact)
    return out


def demo_roi(engine: Engine, config: Config) -> RoiReport:
    """ROI per channel from the sandbox's GA4 ad cost, under the primary model."""
    with session_scope(engine) as session:
        spend, _currencies = read_spend(session, ChannelMapper.from_config(config.mapping), file_origins=[], since=None)
        credits = read_credits(session, config.attribution.primary_model)
        days = read_days_lead_to_won(session)
    return roi_report(spend, credits, days, group_by="channel")


def _prefixed(say: Progress, prefix: str) -> Progress:
    return lambda message: say(prefix + message)


def _crm_sample(sandbox: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """What a marketer now sees in the CRM: one won deal and its first contact, read from the sandbox."""
    won = next((d for d in sandbox.company.deals if d.stage_history and d.stage_history[-1].stage == "closedwon"), None)
    if won is None:
        return {}
    deal = {k: v for k, v in sandbox.hubspot.state.get_properties("deals", won.id).items() if k.startswith(prefix)}
    out: dict[str, dict[str, Any]] = {f"deal {won.id} ({won.name})": deal}
    if won.contact_ids:
        contact = sandbox.hubspot.state.get_properties("contacts", won.contact_ids[0])
        out[f"contact {won.contact_ids[0]}"] = {k: v for k, v in contact.items() if k.startswith(prefix)}
    return out
