"""``bench/sync.py --crm salesforce``: one full sync against the emulated org + GA4, then another.

The org (over TLS) and GA4 run in a child process each, filled from the same generated company
as the HubSpot bench; the pipeline runs ``run_once`` on a SQLite file in this process.  Printed:
API calls per endpoint against the lower bound (query rows / 2,000 per page; changed records /
200 per collections call, or one Bulk 2.0 job per object above the threshold), wall time, peak
RSS, and the write calls of an immediate second run.
"""

from __future__ import annotations

import gc
import math
import multiprocessing as mp
import tempfile
import time
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sync import GA4_PAGE, GA4_PAGE_REQUESTED, NOW, PhaseMemory, _anonymous_share, _calls, _peak_rss_mb, _print_run

QUERY_PAGE, COLLECTION = 2000, 200


def org_child(conn: Connection, args: dict[str, Any], service: str) -> None:
    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import start_ga4
    from closedloop.sandbox.salesforce import start_salesforce

    share = _anonymous_share(args["contacts"], args["sessions"], args["seed"])
    company = generate_company(contacts=args["contacts"], seed=args["seed"], now=NOW, anonymous_per_contact=share)
    server: Any
    info: dict[str, Any] = {"property_id": company.ga4_property_id, "contacts": len(company.contacts),
                            "deals": len(company.deals), "sessions": len(company.sessions)}
    if service == "salesforce":
        server = start_salesforce(company, now=NOW, latency=args["latency"], daily_limit=1_000_000)
        state = server.state
        info.update(url=server.url, ca_file=str(server.ca_file), key_file=str(server.jwt_private_key_file),
                    rows={name: len(state.all_rows(name)) for name in (
                        "Lead", "Contact", "Opportunity", "OpportunityHistory", "OpportunityContactRole",
                        "CampaignMember")})
    else:
        server = start_ga4(company, now=NOW, latency=args["latency"])
        info.update(url=server.url)
    gc.collect()
    gc.freeze()
    conn.send(info)
    while conn.recv() != "stop":
        pass
    server.stop()
    conn.send("stopped")


def _config(sf: dict[str, Any], ga4: dict[str, Any], store_url: str) -> Any:
    from closedloop.config.attribution import AttributionConfig
    from closedloop.config.mapping import ChannelRule, MappingConfig
    from closedloop.config.models import Config, GA4Config, SalesforceConfig, StoreConfig
    from closedloop.sandbox.launch import DEMO_MODELS
    from closedloop.sandbox.launch_salesforce import CAMPAIGN_RULE
    from closedloop.sandbox.salesforce import SF_CONSUMER_KEY, SF_USERNAME

    return Config(
        store=StoreConfig(url=store_url),
        crm="salesforce",
        salesforce=SalesforceConfig(
            auth="jwt", login_url=sf["url"], username=SF_USERNAME, consumer_key=SF_CONSUMER_KEY,
            private_key_file=sf["key_file"], ca_file=sf["ca_file"], grant_field_permissions=True, bulk_poll_s=0.2,
        ),
        ga4=GA4Config(property_id=ga4["property_id"], base_url=ga4["url"], initial_days=400,
                      page_size=GA4_PAGE_REQUESTED),
        attribution=AttributionConfig(models=DEMO_MODELS),
        mapping=MappingConfig(channel_rules=[ChannelRule.model_validate(CAMPAIGN_RULE)]),
    )


def _run(config: Any, now: Any, memory: PhaseMemory) -> Any:
    from closedloop.store.engine import open_store
    from closedloop.sync.factory import build_connectors
    from closedloop.sync.pipeline import run_once

    connectors = build_connectors(config)
    engine = open_store(config.store.url)
    try:
        return run_once(engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
                        log=connectors.log, now=now, progress=memory.progress)
    finally:
        engine.dispose()


def _written(store_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT substr(object_id, 1, 3), COUNT(DISTINCT object_id) FROM writeback_state GROUP BY 1")).all()
    finally:
        engine.dispose()
    return {str(prefix): int(n) for prefix, n in rows}


def _bounds(sf: dict[str, Any], written: dict[str, int], bulk_jobs: int) -> tuple[int, int]:
    """(query pages, write calls) at least needed: rows / 2,000 per stream; changed records / 200
    per collections call, or the Bulk 2.0 jobs where the writer used them."""
    pages = sum(max(1, math.ceil(n / QUERY_PAGE)) for n in sf["rows"].values())
    writes = bulk_jobs or sum(math.ceil(n / COLLECTION) for n in written.values())
    return pages, writes


def main(args: Any) -> int:
    child_args = {k: v for k, v in vars(args).items() if k in ("contacts", "sessions", "seed", "latency")}
    ctx = mp.get_context("spawn")
    pipes: dict[str, Connection] = {}
    processes = []
    for service in ("salesforce", "ga4"):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=org_child, args=(child, child_args, service), daemon=True)
        process.start()
        pipes[service], _ = parent, processes.append(process)
    sf, ga4 = pipes["salesforce"].recv(), pipes["ga4"].recv()
    print(f"company: {sf['contacts']:,} people, {sf['deals']:,} deals (target {args.deals:,}), "
          f"{sf['sessions']:,} sessions (target {args.sessions:,}); org rows {sf['rows']}")
    print(f"sandbox: latency {args.latency * 1000:.0f} ms per request, org over TLS")
    tmp = tempfile.TemporaryDirectory()
    store_url = f"sqlite:///{args.db or Path(tmp.name) / 'bench.db'}"
    config = _config(sf, ga4, store_url)
    started = time.perf_counter()
    with PhaseMemory() as memory:
        first = _run(config, NOW, memory)
    wall = time.perf_counter() - started
    with PhaseMemory() as memory2:
        second = _run(config, NOW + timedelta(seconds=first.duration_s), memory2)
    for pipe in pipes.values():
        pipe.send("stop")
        pipe.recv()
    for process in processes:
        process.join(timeout=10)

    _print_run("first run", first)
    calls = _calls(first, "salesforce")
    print("\nSalesforce calls by endpoint (first run):")
    for endpoint, n in sorted(calls.items()):
        print(f"  {n:>7,}  {endpoint}")
    written = _written(store_url)
    queries = sum(n for e, n in calls.items() if " query" in e.lower() or "queryall" in e.lower())
    bulk_jobs = sum(n for e, n in calls.items() if e.startswith("POST") and "jobs/ingest" in e and e.endswith("ingest"))
    page_bound, write_bound = _bounds(sf, written, bulk_jobs)
    collections = sum(n for e, n in calls.items() if "composite/sobjects" in e)
    total = sum(calls.values())
    bound = page_bound + write_bound
    print(f"\nquery calls {queries:,} against {page_bound:,} pages of 2,000 rows; write calls {collections:,} "
          f"collections + {bulk_jobs:,} Bulk 2.0 jobs against {write_bound:,} (objects written {written})")
    print(f"all Salesforce calls {total:,} against the lower bound {bound:,}: {100 * (total / bound - 1):+.1f}% "
          f"(target within 2%; Bulk 2.0 job lifecycle calls and describe/limits/tooling counted in the total)")
    ga4_calls = sum(_calls(first, "ga4").values())
    print(f"GA4 calls {ga4_calls:,} against {math.ceil(sf['sessions'] / GA4_PAGE) + 1:,}")
    print(f"usage: {first.usage}")
    print(f"\nwall time of the first run: {wall:,.1f} s (pipeline {first.duration_s:,.1f} s)")
    print(f"peak RSS of the pipeline process: {_peak_rss_mb():,.0f} MB (target < 400 MB)")
    for title, sampled in (("first", memory), ("second", memory2)):
        print(f"  peak RSS by phase of the {title} run: "
              + ", ".join(f"{k} {v:,.0f} MB" for k, v in sampled.peaks.items()))
    _print_run("second run", second)
    second_calls = _calls(second, "salesforce")
    writes = {e: n for e, n in second_calls.items() if "composite" in e or "jobs/ingest" in e}
    print(f"  write calls in the second run: {sum(writes.values())} {writes or ''} (target 0)")
    tmp.cleanup()
    return 0
