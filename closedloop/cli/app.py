"""The `closedloop` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from closedloop import __version__
from closedloop.cli_support import DEFAULT_CONFIG, ConfigOption, console, err, load_or_exit, now, progress_line
from closedloop.config.models import Config

app = typer.Typer(
    name="closedloop",
    help="Closed-loop marketing attribution: GA4 sessions + CRM outcomes -> credit per channel, "
    "written back to the CRM.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold tokens; tracebacks must never show them
)
config_app = typer.Typer(help="Check the YAML config and export its JSON Schema.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The built-in emulators of HubSpot and GA4, for trying configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")


def _version(value: bool) -> None:
    if value:
        console.print(f"closedloop {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """closedloop pulls, maps, attributes and writes back. Start with `closedloop demo`."""


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(min=50, max=200_000, help="Contacts in the synthetic company.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic company; same seed, same company.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    db: Annotated[Path | None, typer.Option(help="SQLite file to keep (default: a temporary file).")] = None,
) -> None:
    """Run the whole loop against the built-in sandbox on SQLite and show what it found and wrote."""
    from closedloop.attribution.roi_command import roi_table
    from closedloop.demo import run_demo
    from closedloop.report.summary import ChannelRow, ChannelSummary
    from closedloop.report.terminal import (
        api_calls_table,
        channel_table,
        revenue_chart,
        writeback_table,
    )

    with progress_line(not as_json) as say:
        result = run_demo(contacts=contacts, seed=seed, database=db, now=now(), progress=say)
    data = result.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    s = data["summary"]
    summary = ChannelSummary(
        s["primary_model"],
        s["models"],
        [
            ChannelRow(name, v["sessions"], v["contacts"], v["deals"], v["won"], v["revenue"])
            for name, v in s["channels"].items()
        ],
        s["won_revenue"],
        s["totals"],
    )
    company = data["company"]
    console.rule("[bold]closedloop demo")
    console.print(
        f"Synthetic company: {company['contacts']:,} contacts, {company['deals']:,} deals, "
        f"{company['sessions']:,} web sessions. Store: {data['database']}"
    )
    console.print(channel_table(summary))
    console.print(revenue_chart(summary))
    console.print(f"Won revenue {s['won_revenue']:,.0f}; every model credits exactly that much.")
    console.print(roi_table(result.roi, title=f"ROI by channel under {s['primary_model']} (spend: GA4 ad cost)"))
    console.print(writeback_table(data["first_run"]["writeback"]))
    console.print(api_calls_table(data["first_run"]["api_calls"], title="API calls of the first run"))
    second = data["second_run"]["writeback"] or {}
    console.print(
        f"Second run, immediately after: [bold]{second.get('properties_written', 0)}[/] "
        f"properties written, {second.get('records_failed', 0)} failed."
    )
    for title, props in data["crm_sample"].items():
        console.print(f"[bold]In the CRM now[/], {title}:")
        for key, value in props.items():
            console.print(f"   {key} = {value}")
    secs = data["seconds"]
    console.print(
        f"Done in {secs['total']:.1f}s (first run {secs['first_run']:.1f}s, second {secs['second_run']:.1f}s)."
    )


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
    no_pull: Annotated[
        bool, typer.Option("--no-pull", help="Recompute from stored data only (after a mapping or model change).")
    ] = False,
) -> None:
    """One real run: pull since the cursors, rebuild, write back what changed, record the run."""
    from closedloop.report.terminal import api_calls_table, writeback_table
    from closedloop.store.engine import open_store
    from closedloop.sync.factory import build_connectors
    from closedloop.sync.pipeline import run_once

    cfg = load_or_exit(config)
    engine = open_store(cfg.store.url)
    connectors = build_connectors(cfg)
    with progress_line(not as_json) as say:
        report = run_once(
            engine=engine,
            config=cfg,
            sources=connectors.sources,
            writer=connectors.writer,
            log=connectors.log,
            now=now(),
            progress=say,
            pull=not no_pull,
        )
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "run_id": report.run_id,
                    "status": report.status,
                    "errors": report.errors,
                    **report.stats(),
                    "api_calls": report.api_calls,
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
        for error in report.errors:
            err.print(f"[red]error:[/] {error}")
    if report.status != "ok":
        raise typer.Exit(1)


@app.command()
def writeback(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written; write nothing.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to print in a dry run.")] = 50,
) -> None:
    """Write closedloop's properties to the CRM (only changed values), or preview them with --dry-run."""
    from rich.table import Table

    from closedloop.store.engine import open_store
    from closedloop.sync.derive import rebuild
    from closedloop.sync.factory import build_connectors
    from closedloop.sync.writeback import dry_run as plan
    from closedloop.sync.writeback import run_writeback

    cfg = load_or_exit(config)
    engine = open_store(cfg.store.url)
    if dry_run:
        with progress_line(True) as say:
            rebuild(engine, cfg, progress=say)  # from stored data only, so the preview follows the config
        changes = plan(engine, cfg)
        if not changes:
            console.print("Nothing to write: the CRM already holds every value closedloop owns.")
            return
        table = Table(title=f"{len(changes):,} property values would be written", title_justify="left")
        for col in ("Object", "Property", "Old", "New"):
            table.add_column(col)
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
    stats = run_writeback(engine, cfg, connectors.writer, now=now())
    console.print(
        f"Wrote {stats.properties_written:,} values on {stats.objects_written:,} objects; "
        f"{stats.records_failed:,} failed."
    )


@config_app.command("validate")
def config_validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check the config; every problem is listed with file, line and field."""
    cfg = load_or_exit(config)
    console.print(
        f"[green]{config}: valid.[/] CRM {cfg.crm}; store {cfg.store.url.split('://')[0]}; "
        f"models {', '.join(cfg.attribution.models)}"
    )


@config_app.command("schema")
def config_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the JSON Schema of the whole config, for editors to validate and autocomplete the YAML."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "closedloop config"
    text = json.dumps(schema, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {output}")


@sandbox_app.command("serve")
def sandbox_serve(
    contacts: Annotated[int, typer.Option(min=10, help="Contacts in the synthetic company.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic company.")] = 7,
    hubspot_port: Annotated[int, typer.Option(help="Port of the HubSpot emulator (0: any free port).")] = 0,
    ga4_port: Annotated[int, typer.Option(help="Port of the GA4 emulator (0: any free port).")] = 0,
    config_out: Annotated[Path, typer.Option(help="Where to write a config pointing at the sandbox.")] = Path(
        "closedloop.sandbox.yaml"
    ),
    store: Annotated[str, typer.Option(help="Store URL written into that config.")] = "sqlite:///closedloop-sandbox.db",
) -> None:
    """Serve the HubSpot and GA4 emulators on 127.0.0.1 until Ctrl-C, for trying a config by hand."""
    import signal
    import threading

    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import SANDBOX_TOKEN, start_sandbox

    started = now()
    company = generate_company(contacts=contacts, seed=seed, now=started)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with start_sandbox(company, now=started, hubspot_port=hubspot_port, ga4_port=ga4_port) as sandbox:
        config_out.write_text(sandbox.config_yaml(store_url=store), encoding="utf-8")
        console.print(f"HubSpot emulator: {sandbox.hubspot.url}   (token: {SANDBOX_TOKEN})")
        console.print(f"GA4 emulator:     {sandbox.ga4.url}   (property {company.ga4_property_id})")
        console.print(f"Config written to {config_out}. In another shell:")
        console.print(f"  export CLOSEDLOOP_SANDBOX_TOKEN={SANDBOX_TOKEN}; closedloop run --config {config_out}")
        console.print("Ctrl-C to stop.")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    console.print("Sandbox stopped.")


def _register_subcommands() -> None:
    """Commands owned by other subpackages register themselves here."""
    from closedloop.attribution.command import register as register_attribute
    from closedloop.attribution.roi_command import register as register_roi
    from closedloop.mapping.command import register as register_mapping
    from closedloop.report.commands import register as register_report
    from closedloop.sync.command import register as register_serve

    register_attribute(app)
    register_report(app)
    register_roi(app)
    register_mapping(app)
    register_serve(app)


_register_subcommands()


def entrypoint() -> None:
    """The console script: errors a user can act on become one clear line and exit 1."""
    from sqlalchemy.exc import OperationalError

    from closedloop.connectors.errors import ClosedloopAPIError

    try:
        app(prog_name="closedloop")
    except ClosedloopAPIError as exc:
        err.print(f"[bold red]The service refused:[/] {escape(str(exc))}")
        sys.exit(1)
    except OperationalError as exc:
        err.print(f"[bold red]The store cannot be used:[/] {escape(str(exc.orig))}")
        sys.exit(1)
    except OSError as exc:
        err.print(f"[bold red]{escape(type(exc).__name__)}:[/] {escape(str(exc))}")
        sys.exit(1)
