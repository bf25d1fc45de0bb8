"""Benchmark: ``closedloop run`` against the sandbox at a realistic latency and HubSpot's burst limit.

One command: ``.venv/bin/python bench/sync.py [--contacts 100000 --sessions 500000
--deals 20000 --latency 0.05]`` (``--quick`` for a 5,000-contact run that takes under a
minute).  The sandbox's HubSpot and GA4 run in a child process each (as the real services
run apart).  What is measured is the command users type: ``closedloop run --config <yaml>``
(the console script beside this Python), started as a process of its own on a SQLite file with
a config written for the sandbox, then started again immediately.  Per run: the wall time from
spawn to exit, the process's peak RSS as the kernel counts it (``wait4``), and its resident
memory every 50 ms by phase, the phases named by the progress lines it prints on stderr.  The
run's own figures (phase seconds, records, API calls by endpoint and status) are read from the
store afterwards, where the run recorded them.

It prints API calls per endpoint against the lower bound (records / batch size), the wall time
against the rate-limit floor (HubSpot calls / (burst per 10 s)), 429s (and when), the phases of
each run, the peak RSS of each ``closedloop run`` process, and the write calls of the second run.

The generator's deal count follows from its contacts (about one deal per five contacts), so
``--deals`` is a target that is reported against, not forced; sessions are tuned to the target
by adding anonymous visitors.  The company is generated as of the real time the bench starts
(the command runs on the real clock), so the company's present is the run's present.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from measure import (  # bench/ is the script's directory
    CLOSEDLOOP,
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

SEARCH_PAGE, HISTORY_BATCH, ASSOCIATION_BATCH, UPDATE_BATCH = 200, 50, 1000, 100
GA4_MAX_PAGE = 250_000  # rows GA4 answers at most in one runReport call


# ---- the sandbox, in a child process --------------------------------------------------------


def _anonymous_share(contacts: int, sessions: int, seed: int, now: datetime) -> float:
    """Anonymous visitors per contact that bring the session count near ``sessions``."""
    from closedloop.sandbox.generator import generate_company

    sample = 2000
    base = len(generate_company(contacts=sample, seed=seed, now=now, anonymous_per_contact=0).sessions)
    with_one = len(generate_company(contacts=sample, seed=seed, now=now, anonymous_per_contact=1).sessions)
    per_contact = base / sample
    per_anonymous = max(1e-9, (with_one - base) / sample)
    return max(0.0, (sessions / max(1, contacts) - per_contact) / per_anonymous)


def sandbox_child(conn: Connection, args: dict[str, Any], service: str) -> None:
    """One service of the sandbox (``hubspot`` or ``ga4``) around the generated company.

    Each service runs in a process of its own, as the real ones do: in one process, the GA4
    emulator building a 50,000-row page held the interpreter lock for seconds while HubSpot's
    answers waited behind it, which no real pipeline sees.
    """
    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import start_ga4, start_hubspot

    started = time.perf_counter()
    now = args["now"]
    share = _anonymous_share(args["contacts"], args["sessions"], args["seed"], now)
    company = generate_company(contacts=args["contacts"], seed=args["seed"], now=now, anonymous_per_contact=share)
    generated_s = time.perf_counter() - started
    server: Any
    refusals: list[tuple[float, str]] = []
    admitted: list[tuple[float, bool]] = []
    if service == "hubspot":
        hubspot = start_hubspot(company, latency=args["latency"], burst_limit=args["burst"])
        admit = hubspot.limiter.admit

        def counting_admit(*, search: bool) -> Any:
            verdict = admit(search=search)
            if not verdict.allowed:
                refusals.append((time.monotonic(), verdict.policy))
            else:
                admitted.append((time.monotonic(), search))
            return verdict

        hubspot.limiter.admit = counting_admit  # type: ignore[method-assign]  # the sandbox child counts what it admits
        server, url = hubspot, hubspot.url
    else:
        ga4 = start_ga4(company, now=now, latency=args["latency"])
        server, url = ga4, ga4.url
    # The loaded company is millions of objects that live as long as the process: a full
    # collection walking them all paused every answer for seconds (a real service does not).
    gc.collect()
    gc.freeze()
    conn.send(
        {
            "url": url,
            "property_id": company.ga4_property_id,
            "contacts": len(company.contacts),
            "deals": len(company.deals),
            "sessions": len(company.sessions),
            "anonymous_per_contact": round(share, 3),
            "generated_s": round(generated_s, 1),
        }
    )
    while True:
        command = conn.recv()
        if command == "stats":
            conn.send({"refusals": list(refusals), "admitted": list(admitted), "calls": dict(server.server.calls)})
            refusals.clear()
            admitted.clear()
            server.server.reset_calls()
        elif command == "stop":
            server.stop()
            conn.send("stopped")
            return


class Sandbox:
    """The two services in their processes, driven over pipes."""

    def __init__(self, args: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self._pipes: dict[str, Connection] = {}
        self._processes: list[Any] = []
        for service in ("hubspot", "ga4"):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=sandbox_child, args=(child, args, service), daemon=True)
            process.start()
            self._pipes[service] = parent
            self._processes.append(process)
        hubspot, ga4 = (self._pipes[s].recv() for s in ("hubspot", "ga4"))
        self.info = {**hubspot, "hubspot_url": hubspot["url"], "ga4_url": ga4["url"]}

    def stats(self) -> dict[str, Any]:
        """429s and admitted calls (HubSpot) since the last call; the counters start again."""
        for pipe in self._pipes.values():
            pipe.send("stats")
        hubspot, _ga4 = (self._pipes[s].recv() for s in ("hubspot", "ga4"))
        return hubspot

    def stop(self) -> None:
        for pipe in self._pipes.values():
            pipe.send("stop")
        for pipe in self._pipes.values():
            pipe.recv()
        for process in self._processes:
            process.join(timeout=10)


# ---- the config the command reads -----------------------------------------------------------


def common_config(info: dict[str, Any], ga4_url: str, db: Path) -> dict[str, Any]:
    """Store, GA4, models and the email hash key beside the store: what both CRMs' configs share.

    GA4's page size is left at the product's default: the bench runs what users get.
    """
    from closedloop.sandbox.launch import DEMO_MODELS

    return {
        "version": 1,
        "store": {"url": f"sqlite:///{db}"},
        "ga4": {"property_id": str(info["property_id"]), "base_url": ga4_url, "initial_days": 400},
        "attribution": {"models": list(DEMO_MODELS)},
        "privacy": {"hash_key_file": f"{db}.hash_key"},
    }


# ---- figures --------------------------------------------------------------------------------


def _lower_bounds(info: dict[str, Any], written: dict[str, int], ga4_page: int) -> dict[str, int]:
    """Records / batch size per endpoint; the update bound counts objects that got any value."""
    contacts, deals, sessions = info["contacts"], info["deals"], info["sessions"]
    pid = info["property_id"]
    return {
        "hubspot POST /crm/v3/objects/contacts/search": math.ceil(contacts / SEARCH_PAGE),
        # A first pull lists deals with their history, 50 a call, after one search for the newest change.
        "hubspot GET /crm/v3/objects/deals": math.ceil(deals / HISTORY_BATCH),
        "hubspot POST /crm/v3/objects/deals/search": 1,
        "hubspot POST /crm/v4/associations/deals/contacts/batch/read": math.ceil(deals / ASSOCIATION_BATCH),
        "hubspot POST /crm/v3/objects/contacts/batch/update": math.ceil(written.get("contacts", 0) / UPDATE_BATCH),
        "hubspot POST /crm/v3/objects/deals/batch/update": math.ceil(written.get("deals", 0) / UPDATE_BATCH),
        "hubspot GET /crm/v3/pipelines/deals": 1,
        # Two reports: sessions a page of the configured size each; ad cost is small, one page.
        f"ga4 POST /v1beta/properties/{pid}:runReport": ga4_bound(sessions, ga4_page),
    }


def ga4_bound(sessions: int, page: int) -> int:
    return math.ceil(sessions / page) + 1


def ga4_bound_note(sessions: int, page: int) -> str:
    return (f"GA4 bound: ceil({sessions:,} sessions / {page:,}, the configured page size) + 1 for the ad-cost "
            f"report = {ga4_bound(sessions, page):,}; GA4 answers at most {GA4_MAX_PAGE:,} rows a call "
            f"({ga4_bound(sessions, GA4_MAX_PAGE):,} calls at that size)")


def _objects_with_values(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT object_type, COUNT(DISTINCT object_id) FROM writeback_state GROUP BY object_type"
        ).fetchall()
    return {str(t): int(n) for t, n in rows}




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=500_000)
    parser.add_argument("--deals", type=int, default=20_000, help="target, reported against (see above)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--burst", type=int, default=100, help="HubSpot calls per 10 s (sandbox and tier)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="5,000 contacts, 25,000 sessions")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp file)")
    parser.add_argument("--crm", choices=("hubspot", "salesforce"), default="hubspot")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts, args.sessions, args.deals = 5_000, 25_000, 1_000
    if args.crm == "salesforce":
        from sync_salesforce import main as salesforce_main  # bench/ is the script's directory

        return salesforce_main(args)

    from closedloop.sandbox.launch import SANDBOX_TOKEN

    now = bench_now()
    child_args = {**{k: v for k, v in vars(args).items() if k != "db"}, "now": now}
    sandbox = Sandbox(child_args)
    try:
        return _bench(args, sandbox, SANDBOX_TOKEN, now)
    finally:
        sandbox.stop()


def _bench(args: Any, sandbox: Sandbox, token: str, now: datetime) -> int:
    info = sandbox.info
    print(
        f"company: {info['contacts']:,} contacts, {info['deals']:,} deals (target {args.deals:,}), "
        f"{info['sessions']:,} sessions (target {args.sessions:,}; {info['anonymous_per_contact']} anonymous "
        f"visitors per contact) as of {now:%Y-%m-%d %H:%M:%S} UTC, generated in {info['generated_s']} s "
        f"in each sandbox process"
    )
    print(f"sandbox: latency {args.latency * 1000:.0f} ms per request, HubSpot burst {args.burst} per 10 s")

    with tempfile.TemporaryDirectory() as tmp:
        db = (args.db or Path(tmp) / "bench.db").resolve()
        values = common_config(info, info["ga4_url"], db)
        hubspot: dict[str, Any] = {"base_url": info["hubspot_url"], "access_token": "${CLOSEDLOOP_SANDBOX_TOKEN}",
                                   "tier": "starter"}
        if args.burst != 100:
            hubspot["burst_limit"] = args.burst
        values = {**values, "crm": "hubspot", "hubspot": hubspot}
        env = command_env({"CLOSEDLOOP_SANDBOX_TOKEN": token})
        config_path = Path(tmp) / "closedloop.yaml"
        config = write_config(values, config_path, env)
        print(f"command: {CLOSEDLOOP} run --config {config_path}, twice")

        first = run_closedloop(config_path, env)
        stats1 = sandbox.stats()
        if failed("first run", first):
            return 1
        report1 = stored_run(db)
        second = run_closedloop(config_path, env)
        stats2 = sandbox.stats()
        if failed("second run", second):
            return 1
        report2 = stored_run(db)
        written = _objects_with_values(db)

    print_run("first run", report1, first)
    _print_calls(info, report1, written, config.ga4.page_size)
    calls = calls_by_endpoint(report1, "hubspot")
    hubspot_calls = sum(calls.values())
    floor_s = hubspot_calls / (args.burst / 10)
    wall = first.wall_s
    print(
        f"\nwall time of `closedloop run` (spawn to exit): {wall:,.1f} s; rate-limit floor {floor_s:,.1f} s "
        f"({hubspot_calls:,} HubSpot calls / {args.burst} per 10 s): {100 * (wall / floor_s - 1):+.1f}% "
        f"(target within +15%)"
    )
    stats = report1["stats"]
    searches = sum(n for endpoint, n in calls.items() if endpoint.endswith("/search"))
    writes = sum(n for endpoint, n in calls.items() if endpoint.endswith("/batch/update"))
    pull_s, run_s = stats["seconds"].get("pull", 0.0), stats.get("duration_s", 0.0)
    print(
        f"  of which the run itself {run_s:,.1f} s (start-up, and the report after it, {wall - run_s:,.1f} s); "
        f"pull {pull_s:,.1f} s: its {searches:,} searches alone take {searches / 5:,.1f} s at search's 5 per "
        f"second; then rebuild and write-back overlapped {run_s - pull_s:,.1f} s: the {writes:,} write calls "
        f"alone take {writes / (args.burst / 10):,.1f} s"
    )
    first_call = _first_call(stats1, first.started)
    print(f"  first HubSpot call {first_call - first.started:,.1f} s after the process started")
    _print_refusals(stats1, first_call)
    _print_window_use(stats1, first_call, args.burst)
    print()
    print_memory([("first", first), ("second", second)])
    print_run("second run", report2, second)
    writes2 = {k: v for k, v in calls_by_endpoint(report2, "hubspot").items()
               if not k.startswith("GET") and "search" not in k and "batch/read" not in k}
    print(f"  write calls in the second run: {sum(writes2.values())} {dict(writes2) or ''} (target 0)")
    print(f"  calls in the second run: {report2['api_calls']}")
    if stats2 and stats2["refusals"]:
        print(f"  429s in the second run: {len(stats2['refusals'])}")
    return 0


def _first_call(stats: dict[str, Any] | None, default: float) -> float:
    """When the sandbox saw the run's first HubSpot call (time.monotonic, shared by processes)."""
    times = [t for t, _ in (stats or {}).get("admitted", [])] + [t for t, _ in (stats or {}).get("refusals", [])]
    return min(times, default=default)


def _print_calls(info: dict[str, Any], run: dict[str, Any], written: dict[str, int], ga4_page: int) -> None:
    bounds = _lower_bounds(info, written, ga4_page)
    actual: Counter[str] = Counter()
    for service in ("hubspot", "ga4"):
        for endpoint, n in calls_by_endpoint(run, service).items():
            actual[f"{service} {endpoint}"] = n
    print(f"\n{'endpoint':<66} {'calls':>7} {'bound':>7} {'over':>7}")
    bounded_actual = bounded_bound = 0
    for key in sorted(set(actual) | set(bounds)):
        n, bound = actual.get(key, 0), bounds.get(key)
        if bound is None:
            print(f"{key:<66} {n:>7,} {'setup':>7}")
            continue
        bounded_actual += n
        bounded_bound += bound
        over = f"{100 * (n / bound - 1):+.1f}%" if bound else "-"
        print(f"{key:<66} {n:>7,} {bound:>7,} {over:>7}")
    setup = sum(actual.values()) - bounded_actual
    total = sum(actual.values())
    print(
        f"total: {total:,} calls; lower bound {bounded_bound:,} (+{setup} one-off property setup calls): "
        f"{100 * (total / (bounded_bound + setup) - 1):+.1f}% counting setup in the bound, "
        f"{100 * (total / bounded_bound - 1):+.1f}% not (target within 5%)"
    )
    print(ga4_bound_note(info["sessions"], ga4_page))
    statuses: Counter[str] = Counter()
    for per_status in run["api_calls"].values():
        statuses.update(per_status)
    print(f"statuses: {dict(statuses)}")


def _print_window_use(stats: dict[str, Any] | None, started: float, burst: int) -> None:
    """Calls the sandbox admitted per 10 s of the run (searches in brackets): where the window
    went unused is where the run fell behind its floor."""
    admitted = (stats or {}).get("admitted", [])
    if not admitted:
        return
    per: Counter[int] = Counter()
    searches: Counter[int] = Counter()
    for at, search in admitted:
        slot = int((at - started) // 10)
        per[slot] += 1
        searches[slot] += search
    cells = [f"{per[i]}({searches[i]})" for i in range(max(per) + 1)]
    print(f"HubSpot calls per 10 s of the first run from its first call, searches in brackets (burst {burst}):")
    for start in range(0, len(cells), 12):
        print(f"  {start * 10:>4} s: " + " ".join(f"{c:>7}" for c in cells[start : start + 12]))


def _print_refusals(stats: dict[str, Any] | None, started: float) -> None:
    refusals = (stats or {}).get("refusals", [])
    late = [t for t, _ in refusals if t - started > 1.0]
    policies = Counter(p for _, p in refusals)
    print(f"429s received: {len(refusals)} {dict(policies) or ''}; after the first second of calls: {len(late)} "
          f"(target 0)")


if __name__ == "__main__":
    sys.exit(main())
