"""Benchmark: one full sync against the sandbox at a realistic latency and HubSpot's burst limit.

One command: ``/work/venv/bin/python bench/sync.py [--contacts 100000 --sessions 500000
--deals 20000 --latency 0.05]`` (``--quick`` for a 5,000-contact run that takes under a
minute).  The sandbox's HubSpot and GA4 run in a child process each (as the real services
run apart), so that neither their memory nor their share of the GIL counts against the
pipeline; the pipeline runs ``run_once`` on a SQLite file with the limiters built from config,
then runs again immediately.

It prints API calls per endpoint against the lower bound (records / batch size), the wall time
against the rate-limit floor (HubSpot calls / (burst per 10 s)), 429s (and when), the phases of
each run, the pipeline process's peak RSS, and the write calls of the second run.

The generator's deal count follows from its contacts (about one deal per five contacts), so
``--deals`` is a target that is reported against, not forced; sessions are tuned to the target
by adding anonymous visitors.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import SecretStr

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SEARCH_PAGE, HISTORY_BATCH, ASSOCIATION_BATCH, UPDATE_BATCH, GA4_PAGE = 200, 50, 1000, 100, 250_000
# GA4 answers up to 250,000 rows a call (the bound); pages of 50,000 keep the decoded page small
# in memory for a few more calls (+8 at 500,000 sessions, well inside the 5%).
GA4_PAGE_REQUESTED = 50_000


# ---- the sandbox, in a child process --------------------------------------------------------


def _anonymous_share(contacts: int, sessions: int, seed: int) -> float:
    """Anonymous visitors per contact that bring the session count near ``sessions``."""
    from closedloop.sandbox.generator import generate_company

    sample = 2000
    base = len(generate_company(contacts=sample, seed=seed, now=NOW, anonymous_per_contact=0).sessions)
    with_one = len(generate_company(contacts=sample, seed=seed, now=NOW, anonymous_per_contact=1).sessions)
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
    share = _anonymous_share(args["contacts"], args["sessions"], args["seed"])
    company = generate_company(contacts=args["contacts"], seed=args["seed"], now=NOW, anonymous_per_contact=share)
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

        hubspot.limiter.admit = counting_admit  # type: ignore[method-assign]
        server, url = hubspot, hubspot.url
    else:
        ga4 = start_ga4(company, now=NOW, latency=args["latency"])
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


# ---- the pipeline, in this process ----------------------------------------------------------


def _config(info: dict[str, Any], store_url: str) -> Any:
    from closedloop.config.attribution import AttributionConfig
    from closedloop.config.models import Config, GA4Config, HubSpotConfig, StoreConfig
    from closedloop.sandbox.launch import DEMO_MODELS, SANDBOX_TOKEN

    return Config(
        store=StoreConfig(url=store_url),
        hubspot=HubSpotConfig(base_url=info["hubspot_url"], access_token=SecretStr(SANDBOX_TOKEN), tier="starter"),
        ga4=GA4Config(
            property_id=info["property_id"], base_url=info["ga4_url"], initial_days=400, page_size=GA4_PAGE_REQUESTED
        ),
        attribution=AttributionConfig(models=DEMO_MODELS),
    )


class PhaseMemory:
    """Peak resident memory per phase of a run, sampled from /proc while it runs."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def progress(self, message: str) -> None:
        if message.startswith(("pulling ", "rebuilding", "writing back")):
            self.phase = message.split(" ")[0] + (" " + message.split(" ")[1] if message.startswith("pulling") else "")

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            rss = _current_rss_mb()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)

    def __enter__(self) -> PhaseMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run(config: Any, now: datetime, memory: PhaseMemory | None = None) -> tuple[Any, Any, float]:
    from closedloop.store.engine import open_store
    from closedloop.sync.factory import build_connectors, default_limiters
    from closedloop.sync.pipeline import run_once

    limiters = default_limiters(config)
    connectors = build_connectors(config, limiters=limiters)
    engine = open_store(config.store.url)
    started = time.monotonic()
    try:
        report = run_once(
            engine=engine, config=config, sources=connectors.sources, writer=connectors.writer,
            log=connectors.log, now=now, progress=memory.progress if memory else None,
        )
    finally:
        engine.dispose()
    return report, limiters["hubspot"], started


def _calls(report: Any, service: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for key, statuses in report.api_calls.items():
        svc, _, endpoint = key.partition(" ")
        if svc == service:
            out[endpoint] += sum(statuses.values())
    return out


def _lower_bounds(info: dict[str, Any], written: dict[str, int]) -> dict[str, int]:
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
        # Two reports (sessions, ad cost); the ad-cost report is small, one page.
        f"ga4 POST /v1beta/properties/{pid}:runReport": math.ceil(sessions / GA4_PAGE) + 1,
    }


def _objects_with_values(store_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT object_type, COUNT(DISTINCT object_id) FROM writeback_state GROUP BY object_type")
            ).all()
    finally:
        engine.dispose()
    return {str(t): int(n) for t, n in rows}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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

    child_args = {k: v for k, v in vars(args).items() if k != "db"}
    sandbox = Sandbox(child_args)
    info = sandbox.info
    print(
        f"company: {info['contacts']:,} contacts, {info['deals']:,} deals (target {args.deals:,}), "
        f"{info['sessions']:,} sessions (target {args.sessions:,}; {info['anonymous_per_contact']} anonymous "
        f"visitors per contact), generated in {info['generated_s']} s in each sandbox process"
    )
    print(f"sandbox: latency {args.latency * 1000:.0f} ms per request, HubSpot burst {args.burst} per 10 s")

    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "bench.db"
    store_url = f"sqlite:///{db}"
    config = _config(info, store_url)
    if args.burst != 100:
        config.hubspot.burst_limit = args.burst
    rss_before = _peak_rss_mb()

    with PhaseMemory() as memory:
        report1, limiter1, started1 = _run(config, NOW, memory)
    peak_first = _peak_rss_mb()
    stats1 = sandbox.stats()
    with PhaseMemory() as memory2:
        report2, _limiter2, _ = _run(config, NOW + timedelta(seconds=report1.duration_s), memory2)
    stats2 = sandbox.stats()
    sandbox.stop()

    written = _objects_with_values(store_url)
    _print_run("first run", report1)
    _print_calls(info, report1, written)
    hubspot_calls = sum(_calls(report1, "hubspot").values())
    floor_s = hubspot_calls / (args.burst / 10)
    wall = report1.duration_s
    print(
        f"\nwall time: {wall:,.1f} s; rate-limit floor {floor_s:,.1f} s "
        f"({hubspot_calls:,} HubSpot calls / {args.burst} per 10 s): {100 * (wall / floor_s - 1):+.1f}% "
        f"(target within +15%)"
    )
    calls = _calls(report1, "hubspot")
    searches = sum(n for endpoint, n in calls.items() if endpoint.endswith("/search"))
    writes = sum(n for endpoint, n in calls.items() if endpoint.endswith("/batch/update"))
    pull_s = report1.seconds.get("pull", 0.0)
    print(
        f"  pull {pull_s:,.1f} s: its {searches:,} searches alone take {searches / 5:,.1f} s at search's 5 per second; "
        f"then rebuild and write-back overlapped {wall - pull_s:,.1f} s: the {writes:,} write calls alone take "
        f"{writes / (args.burst / 10):,.1f} s; the limiter waited {limiter1.waited_s:,.1f} s in all"
    )
    _print_refusals(stats1, started1)
    _print_window_use(stats1, started1, args.burst)
    print(
        f"\npeak RSS of the pipeline process: {_peak_rss_mb():,.0f} MB (before the runs: {rss_before:,.0f} MB; "
        f"target < 400 MB); after the first run: {peak_first:,.0f} MB"
    )
    for title, sampled in (("first", memory), ("second", memory2)):
        phases = ", ".join(f"{k} {v:,.0f} MB" for k, v in sampled.peaks.items())
        print(f"  peak RSS by phase of the {title} run: {phases}")
    _print_run("second run", report2)
    writes = {k: v for k, v in _calls(report2, "hubspot").items() if not k.startswith("GET") and "search" not in k
              and "batch/read" not in k}
    print(f"  write calls in the second run: {sum(writes.values())} {dict(writes) or ''} (target 0)")
    print(f"  calls in the second run: {report2.api_calls}")
    if stats2 and stats2["refusals"]:
        print(f"  429s in the second run: {len(stats2['refusals'])}")
    tmp.cleanup()
    return 0


def _print_run(title: str, report: Any) -> None:
    seconds = ", ".join(f"{k} {v:,.1f} s" for k, v in report.seconds.items())
    print(f"\n{title}: status {report.status}, {report.duration_s:,.1f} s ({seconds})")
    if report.errors:
        print(f"  errors: {report.errors}")
    for stream, counts in report.pulled.items():
        print(f"  pulled {stream}: {dict(counts)}")
    if report.writeback is not None:
        wb = report.writeback
        print(f"  written: {wb.objects_written:,} objects, {wb.properties_written:,} values, "
              f"{wb.records_failed} failed")


def _print_calls(info: dict[str, Any], report: Any, written: dict[str, int]) -> None:
    bounds = _lower_bounds(info, written)
    actual: Counter[str] = Counter()
    for service in ("hubspot", "ga4"):
        for endpoint, n in _calls(report, service).items():
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
    statuses: Counter[str] = Counter()
    for per_status in report.api_calls.values():
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
    print(f"HubSpot calls per 10 s of the first run, searches in brackets (burst {burst}):")
    for start in range(0, len(cells), 12):
        print(f"  {start * 10:>4} s: " + " ".join(f"{c:>7}" for c in cells[start : start + 12]))


def _print_refusals(stats: dict[str, Any] | None, started: float) -> None:
    refusals = (stats or {}).get("refusals", [])
    late = [t for t, _ in refusals if t - started > 1.0]
    policies = Counter(p for _, p in refusals)
    print(f"429s received: {len(refusals)} {dict(policies) or ''}; after the first second: {len(late)} (target 0)")


if __name__ == "__main__":
    sys.exit(main())
