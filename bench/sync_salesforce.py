"""``bench/sync.py --crm salesforce``: ``closedloop run`` against the emulated org + GA4, then again.

The org (over TLS) and GA4 run in a child process each, filled from the same generated company
as the HubSpot bench (as of the real time the bench starts); what is measured is the command
users type, ``closedloop run --config <yaml>`` on a SQLite file, in a process of its own, twice:
its wall time from spawn to exit, its peak RSS (``wait4``) and its resident memory by step, the
steps named by its stderr progress lines (the Bulk 2.0 uploads by the org's clock of their job
creations).  Printed from the run the store recorded: API calls per endpoint against the lower
bound (query rows / 2,000 per page; changed records / 200 per collections call, or one Bulk 2.0
job per object above the threshold), and the write calls of the immediate second run.
"""

from __future__ import annotations

import gc
import math
import multiprocessing as mp
import sqlite3
import tempfile
import time
from contextlib import closing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from measure import (
    CLOSEDLOOP,
    PhaseMemory,
    bench_now,
    calls_by_endpoint,
    command_env,
    failed,
    print_memory,
    print_run,
    run_closedloop,
    stored_run,
    write_config,
)
from sync import _anonymous_share, common_config, ga4_bound, ga4_bound_note

QUERY_PAGE, COLLECTION = 2000, 200
SOBJECT_BY_PREFIX = {"00Q": "Lead", "003": "Contact", "006": "Opportunity"}
BULK_UPLOADS = "Bulk 2.0 uploads"


def org_child(conn: Connection, args: dict[str, Any], service: str) -> None:
    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import start_ga4
    from closedloop.sandbox.salesforce import start_salesforce

    now = args["now"]
    share = _anonymous_share(args["contacts"], args["sessions"], args["seed"], now)
    company = generate_company(contacts=args["contacts"], seed=args["seed"], now=now, anonymous_per_contact=share)
    server: Any
    info: dict[str, Any] = {"property_id": company.ga4_property_id, "contacts": len(company.contacts),
                            "deals": len(company.deals), "sessions": len(company.sessions)}
    job_created: list[float] = []  # when the org answered each Bulk 2.0 job's creation (time.monotonic)
    if service == "salesforce":
        server = start_salesforce(company, now=now, latency=args["latency"], daily_limit=1_000_000)
        state = server.state
        info.update(url=server.url, ca_file=str(server.ca_file), key_file=str(server.jwt_private_key_file),
                    rows={name: len(state.all_rows(name)) for name in (
                        "Lead", "Contact", "Opportunity", "OpportunityHistory", "OpportunityContactRole",
                        "CampaignMember")})
        record = server.server.record

        def timed_record(endpoint: str, status: int) -> None:
            if endpoint.startswith("POST ") and endpoint.endswith("/jobs/ingest"):
                job_created.append(time.monotonic())
            record(endpoint, status)

        server.server.record = timed_record
    else:
        server = start_ga4(company, now=now, latency=args["latency"])
        info.update(url=server.url)
    gc.collect()
    gc.freeze()
    conn.send(info)
    while (command := conn.recv()) != "stop":
        if command == "jobs":
            conn.send(list(job_created))
            job_created.clear()
    server.stop()
    conn.send("stopped")


def salesforce_config(sf: dict[str, Any], ga4: dict[str, Any], db: Path) -> dict[str, Any]:
    """The config ``closedloop sandbox serve --crm salesforce`` writes, on this store, polling
    Bulk 2.0 jobs from 0.2 s on."""
    from closedloop.sandbox.launch_salesforce import CAMPAIGN_RULE
    from closedloop.sandbox.salesforce import SF_CONSUMER_KEY, SF_USERNAME

    return {
        **common_config(ga4, ga4["url"], db),
        "crm": "salesforce",
        "salesforce": {
            "auth": "jwt", "login_url": sf["url"], "username": SF_USERNAME, "consumer_key": SF_CONSUMER_KEY,
            "private_key_file": sf["key_file"], "ca_file": sf["ca_file"], "grant_field_permissions": True,
            "bulk_poll_s": 0.2,
        },
        "mapping": {"channel_rules": [dict(CAMPAIGN_RULE)]},
    }


class StepMemory(PhaseMemory):
    """Peak RSS per step, finer than the shared phases: the rebuild's steps, and the write-back's
    end (the Bulk 2.0 uploads) apart from the rebuild it overlaps."""

    STEPS = ("mapping sessions", "writing touchpoints", "reading anonymous", "attributing", "writing back deals")

    def progress(self, message: str) -> None:
        step = next((s for s in self.STEPS if message.startswith(s)), None)
        if step is not None:
            self.name("rebuild: " + step if step != "writing back deals" else "rebuild rest + writing back")
        else:
            super().progress(message)

    def bulk_jobs(self, created: list[float]) -> None:
        """The Bulk 2.0 uploads began when the org saw each job created (the command says
        nothing of them on stderr); a later progress line ends them, as it did in-process."""
        for at in created:
            self.mark(at, BULK_UPLOADS)


def _written(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT substr(object_id, 1, 3), COUNT(DISTINCT object_id) FROM writeback_state GROUP BY 1").fetchall()
    return {str(prefix): int(n) for prefix, n in rows}


def _bounds(sf: dict[str, Any], written: dict[str, int], threshold: int) -> tuple[int, int, int]:
    """(query calls, write units, Bulk 2.0 jobs) at least needed for what the run pulled and wrote.

    Query: every stream reads ``max(1, ceil(rows / 2,000))`` pages (a stream with few rows still
    costs its one call), and every stream that tracks deletions one ``queryAll`` more, at least a
    page (``ceil(deleted rows / 2,000)``; none are deleted before a first run).  Writes: one Bulk
    2.0 job per object with more than ``bulk_threshold`` changed records, and the other changed
    records 200 to a collections call, types mixed: ``ceil(sum / 200)``.
    """
    from closedloop.config.models import SalesforceConfig
    from closedloop.connectors.salesforce.streams import build_streams

    streams = build_streams(SalesforceConfig(auth="session", access_token="x", instance_url="https://x.example"),
                            multicurrency=False)
    pages = sum(max(1, math.ceil(sf["rows"].get(s.sobject, 0) / QUERY_PAGE)) for s in streams)
    pages += sum(1 for s in streams if s.deleted_kind)
    by_sobject = {SOBJECT_BY_PREFIX.get(prefix, prefix): n for prefix, n in written.items()}
    jobs = sum(1 for n in by_sobject.values() if n > threshold)
    collected = sum(n for n in by_sobject.values() if n <= threshold)
    return pages, jobs + math.ceil(collected / COLLECTION), jobs


def _kinds(calls: dict[str, int]) -> dict[str, int]:
    """Calls by what they are for: pull, write (collections, a Bulk job's creation), the rest of
    a job's lifecycle, per-run overhead (token, describe), first-run setup (fields, grants)."""
    out = dict.fromkeys(("pull", "write", "bulk lifecycle", "overhead", "setup"), 0)
    for endpoint, n in calls.items():
        if " query" in endpoint or " queryAll" in endpoint:
            kind = "pull"
        elif "composite/sobjects" in endpoint or endpoint == "POST jobs/ingest":
            kind = "write"
        elif "jobs/ingest" in endpoint:
            kind = "bulk lifecycle"
        elif "tooling/" in endpoint or "FieldPermissions" in endpoint:
            kind = "setup"
        else:
            kind = "overhead"
        out[kind] += n
    # The permission set's id is one query, made only when grants are created: setup, not pull.
    if calls.get("POST sobjects/FieldPermissions"):
        out["pull"] -= 1
        out["setup"] += 1
    return out


def main(args: Any) -> int:
    now = bench_now()
    child_args = {**{k: v for k, v in vars(args).items() if k in ("contacts", "sessions", "seed", "latency")},
                  "now": now}
    ctx = mp.get_context("spawn")
    pipes: dict[str, Connection] = {}
    processes = []
    for service in ("salesforce", "ga4"):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=org_child, args=(child, child_args, service), daemon=True)
        process.start()
        pipes[service] = parent
        processes.append(process)
    sf, ga4 = pipes["salesforce"].recv(), pipes["ga4"].recv()
    try:
        return _bench(args, sf, ga4, pipes["salesforce"], now)
    finally:
        for pipe in pipes.values():
            pipe.send("stop")
            pipe.recv()
        for process in processes:
            process.join(timeout=10)


def _bench(args: Any, sf: dict[str, Any], ga4: dict[str, Any], org: Connection, now: Any) -> int:
    print(f"company: {sf['contacts']:,} people, {sf['deals']:,} deals (target {args.deals:,}), "
          f"{sf['sessions']:,} sessions (target {args.sessions:,}) as of {now:%Y-%m-%d %H:%M:%S} UTC; "
          f"org rows {sf['rows']}")
    print(f"sandbox: latency {args.latency * 1000:.0f} ms per request, org over TLS")
    with tempfile.TemporaryDirectory() as tmp:
        db = (args.db or Path(tmp) / "bench.db").resolve()
        env = command_env()
        config_path = Path(tmp) / "closedloop.yaml"
        config = write_config(salesforce_config(sf, ga4, db), config_path, env)
        print(f"command: {CLOSEDLOOP} run --config {config_path}, twice")
        runs = []
        for title in ("first run", "second run"):
            measured = run_closedloop(config_path, env, StepMemory)
            org.send("jobs")
            created = org.recv()
            if failed(title, measured):
                return 1
            assert isinstance(measured.memory, StepMemory)
            measured.memory.bulk_jobs(created)
            runs.append((measured, stored_run(db)))
        written = _written(db)
    (first_m, first), (second_m, second) = runs

    print_run("first run", first, first_m)
    calls = calls_by_endpoint(first, "salesforce")
    print("\nSalesforce calls by endpoint (first run):")
    for endpoint, n in sorted(calls.items()):
        print(f"  {n:>7,}  {endpoint}")
    threshold = config.salesforce.bulk_threshold
    page_bound, write_bound, job_bound = _bounds(sf, written, threshold)
    kinds = _kinds(calls)
    bulk_jobs = calls.get("POST jobs/ingest", 0)
    collections = sum(n for e, n in calls.items() if "composite/sobjects" in e)
    loop, bound = kinds["pull"] + kinds["write"], page_bound + write_bound
    print(f"\nobjects written {written}; Bulk 2.0 above {threshold:,} changed records of one object")
    print(f"query calls {kinds['pull']:,} against {page_bound:,} (per stream max(1, ceil(rows / 2,000)), "
          f"plus one queryAll per stream that tracks deletions)")
    print(f"write calls {collections:,} collections + {bulk_jobs:,} Bulk 2.0 jobs against {write_bound:,} "
          f"({job_bound} jobs, one per object above the threshold, + ceil(other changed records / 200))")
    print(f"pull + write calls {loop:,} against the lower bound {bound:,}: {100 * (loop / bound - 1):+.1f}% "
          f"(target within 2%; a Bulk 2.0 job counted once, as the issue's bound counts it)")
    lifecycle_bound = 3 * job_bound  # upload, UploadComplete, one status read that finds it done
    http, http_bound = loop + kinds["bulk lifecycle"], bound + lifecycle_bound
    print(f"  every HTTP call of pull and write, Bulk 2.0 lifecycle included ({kinds['bulk lifecycle']:,} upload, "
          f"close and status calls; bound 3 a job): {http:,} against {http_bound:,}: "
          f"{100 * (http / http_bound - 1):+.1f}%")
    print(f"  besides: per-run overhead {kinds['overhead']:,} (token, describes), first-run setup {kinds['setup']:,} "
          f"(CustomField, FieldPermissions, the permission set's id); all calls {sum(calls.values()):,}")
    ga4_page = config.ga4.page_size
    ga4_calls = sum(calls_by_endpoint(first, "ga4").values())
    print(f"GA4 calls {ga4_calls:,} against {ga4_bound(sf['sessions'], ga4_page):,} "
          f"({ga4_bound_note(sf['sessions'], ga4_page)})")
    print(f"usage: {first['stats'].get('usage')}")
    run_s = first["stats"].get("duration_s", 0.0)
    print(f"\nwall time of the first `closedloop run` (spawn to exit): {first_m.wall_s:,.1f} s "
          f"(the run itself {run_s:,.1f} s)")
    print_memory([("first", first_m), ("second", second_m)])
    print_run("second run", second, second_m)
    second_calls = calls_by_endpoint(second, "salesforce")
    writes = {e: n for e, n in second_calls.items() if "composite" in e or "jobs/ingest" in e}
    print(f"  write calls in the second run: {sum(writes.values())} {writes or ''} (target 0)")
    return 0
