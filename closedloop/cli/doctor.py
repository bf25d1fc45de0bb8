"""``closedloop doctor``: check a config against the real services before the first run."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, load

_MARKS = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def register(parent: typer.Typer) -> None:
    parent.command("doctor")(doctor)


def doctor(
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Check the config, its secrets, the HubSpot token's scopes and properties, GA4 access and
    the client-id dimension, and the store (Salesforce fields: `closedloop crm check`).  Exit 0
    when nothing fails (a warning names something the first run will do), 1 otherwise."""
    from rich.markup import escape

    from closedloop.sync.doctor import run_checks

    checks = run_checks(load(config))
    failed = [c for c in checks if c.status == "fail"]
    if as_json:
        sys.stdout.write(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}, indent=2) + "\n")
    else:
        for check in checks:
            line = f"{_MARKS[check.status]}  {escape(check.name)}: {escape(check.message)}"
            fix = f"  [dim]-> {escape(check.fix)}[/]" if check.fix and check.status != "pass" else ""
            console.print(line + fix, markup=True, highlight=False, soft_wrap=True)
        verdict = "[green]ready to run[/]" if not failed else f"[red]{len(failed)} check(s) failed[/]"
        console.print(verdict)
    if failed:
        raise typer.Exit(1)
