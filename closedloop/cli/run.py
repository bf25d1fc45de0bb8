"""``closedloop run`` and ``closedloop writeback``: one real run, or only its write-back (or a preview of it)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, err, load, now, progress_line

app = typer.Typer()


def register(parent: typer.Typer) -> None:
    parent.command()(run)
    parent.command()(writeback)



@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
    no_pull: Annotated[
        bool, typer.Option("--no-pull", help="Recompute from stored data only (after a mapping or model change).")
    ] = False,
) -> None:
    """One real run: pull since the cursors, rebuild, write back what changed, record the run."""
    from closedloop.cli.progress import CountingWriter
    from closedloop.report.coverage import store_coverage
    from closedloop.report.period import report_currency
    from closedloop.report.terminal import api_calls_table, coverage_table, writeback_table
    from closedloop.store.engine import open_store
    from closedloop.sync.factory import build_connectors
    from closedloop.sync.pipeline import run_once

    cfg = load(config)
    engine = open_store(cfg.store.url)
    connectors = build_connectors(cfg)
    from closedloop.sync.interrupt import stop_on_signals  # SIGTERM: finish the batch, record interrupted

    with stop_on_signals(lambda name: err.print(f"{name} received: stopping after the batch in flight")) as stop, \
            progress_line(not as_json) as say:
        report = run_once(
            should_stop=stop,
            engine=engine,
            config=cfg,
            sources=connectors.sources,
            writer=None if connectors.writer is None else CountingWriter(connectors.writer, say),
            log=connectors.log,
            now=now(),
            progress=say,
            pull=not no_pull,
        )
    coverage = store_coverage(cfg.store.url, cfg.attribution.primary_model)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "run_id": report.run_id,
                    "status": report.status,
                    "errors": report.errors,
                    **report.stats(),
                    "api_calls": report.api_calls,
                    "coverage": [f.as_dict() for f in coverage],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    else:
        console.print(f"Run {report.run_id}: [bold]{report.status}[/] in {report.duration_s:.1f}s")
        for stream, counts in report.pulled.items():
            console.print(f"  pulled {stream}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        stats = report.stats()
        if report.rebuild is not None and report.rebuild.ambiguous_identities:
            err.print(
                f"[yellow]{report.rebuild.ambiguous_identities:,} identity key(s) belong to several contacts[/] "
                "and tie no session (closedloop does not guess), e.g.:"
            )
            for example in report.rebuild.ambiguous_examples:
                err.print(f"  {escape(example)}")
        console.print(writeback_table(stats["writeback"]))
        console.print(api_calls_table(report.api_calls))
        console.print(coverage_table(coverage, currency=report_currency(cfg)))
        for error in report.errors:
            err.print(f"[red]error:[/] {error}")
    if report.status not in ("ok", "interrupted"):  # interrupted: stopped on request, exit 0
        raise typer.Exit(1)


@app.command()
def writeback(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written; write nothing.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to print in a dry run.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Write closedloop's properties to the CRM (only changed values), or preview them with --dry-run."""
    from closedloop.report.fit import Col, FitTable
    from closedloop.store.engine import open_store
    from closedloop.sync.factory import build_connectors
    from closedloop.sync.preview import preview_changes
    from closedloop.sync.writeback import run_writeback

    cfg = load(config)
    engine = open_store(cfg.store.url)
    if dry_run:
        # Computed on a copy where the stored credits come from another config: the store is
        # left exactly as it was, so a real run afterwards still has every change to make.
        with progress_line(not as_json) as say:
            preview = preview_changes(engine, cfg, progress=say)
        changes = preview.changes
        if preview.basis == "stale":
            err.print(
                f"[yellow]The stored credits come from another config ({preview.stored_fingerprint or 'none'}, "
                f"this one is {preview.config_fingerprint})[/]: the preview shows what they would write; "
                "`closedloop run --no-pull` rebuilds with this config first."
            )
        if as_json:
            rows = [{"object_type": c.object_type, "object_id": c.object_id, "property": c.property,
                     "old": c.old, "new": c.new} for c in changes[:limit]]
            payload = {"basis": preview.basis, "changes": len(changes), "shown": rows}
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        if not changes:
            console.print("Nothing to write: the CRM already holds every value closedloop owns.")
            return
        table = FitTable(f"{len(changes):,} property values would be written",
                         [Col(name, "left", wrap=True) for name in ("Object", "Property", "Old", "New")])
        for c in changes[:limit]:
            table.add_row(f"{c.object_type}/{c.object_id}", c.property, "" if c.old is None else c.old, c.new)
        console.print(table)
        if len(changes) > limit:
            console.print(f"... and {len(changes) - limit:,} more (--limit to see more)")
        return
    connectors = build_connectors(cfg)
    if connectors.writer is None:
        err.print("No CRM is configured to write to.")
        raise typer.Exit(2)
    from closedloop.cli.progress import CountingWriter

    with progress_line(not as_json) as say:
        stats = run_writeback(engine, cfg, CountingWriter(connectors.writer, say), now=now())
    if as_json:
        fields = ("objects_written", "properties_written", "records_failed", "records_given_up", "by_property")
        sys.stdout.write(json.dumps({k: getattr(stats, k) for k in fields}, indent=2, default=str) + "\n")
        return
    console.print(
        f"Wrote {stats.properties_written:,} values on {stats.objects_written:,} objects; "
        f"{stats.records_failed:,} failed."
    )
