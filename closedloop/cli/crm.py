"""``closedloop crm check``: which closedloop properties/fields the CRM lacks; create them if asked."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, load

app = typer.Typer(help="Check the CRM side of the loop: closedloop's properties or custom fields.",
                  no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="crm")


@app.command("check")
def crm_check(
    config: ConfigOption = DEFAULT_CONFIG,
    create: Annotated[bool, typer.Option("--create", help="Create the missing properties or fields.")] = False,
    grant: Annotated[
        bool,
        typer.Option("--grant", help="Salesforce: also grant field access (FieldPermissions) on the permission set."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the closedloop properties (HubSpot) or fields (Salesforce) that are missing; exit 1 while any is."""
    from closedloop.sync.crm_check import crm_check as check

    result = check(load(config), create=create, grant=grant)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        console.print(f"[bold]{result.crm}[/]: {len(result.expected)} closedloop properties expected")
        for label, names in (("created", result.created), ("granted", result.granted), ("missing", result.missing)):
            for name in names:
                console.print(f"  {label:8} {name}")
        style = "green" if result.ok else "yellow"
        console.print(f"[{style}]{result.message}[/]")
    if not result.ok:
        raise typer.Exit(1)
