"""The ``closedloop`` app: a command table read lazily, and the one place errors become exit codes.

``COMMANDS`` names each command's module and a one-line help; ``closedloop --help`` renders the
table without importing any command module, and a command's module is imported only when that
command runs (pip's command table is the model).  Every command runs inside
``closedloop.cli.errors.guarded``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from closedloop import __version__
from closedloop.cli.console import console, err
from closedloop.cli.errors import guarded


@dataclass(frozen=True, slots=True)
class Entry:
    module: str  # its ``register(parent)`` adds the command (or group) to a typer app
    help: str


COMMANDS: dict[str, Entry] = {
    "demo": Entry(
        "closedloop.cli.demo",
        "Run the whole loop against the built-in sandbox on SQLite and show what it found and wrote.",
    ),
    "run": Entry(
        "closedloop.cli.run",
        "One real run: pull since the cursors, rebuild, write back what changed, record the run.",
    ),
    "writeback": Entry(
        "closedloop.cli.run",
        "Write closedloop's properties to the CRM (only changed values), or preview them with --dry-run.",
    ),
    "config": Entry(
        "closedloop.cli.config",
        "Check the YAML config and export its JSON Schema.",
    ),
    "sandbox": Entry(
        "closedloop.cli.sandbox",
        "The built-in emulators of HubSpot and GA4, for trying configs.",
    ),
    "attribute": Entry(
        "closedloop.cli.attribute",
        "Credit conversions and value to channels under one model or all of them.",
    ),
    "report": Entry(
        "closedloop.cli.report",
        "Show the channel table and revenue chart from what is in the store now.",
    ),
    "runs": Entry(
        "closedloop.cli.report",
        "List recent runs: duration, records pulled, changes, writes, failures, API calls.",
    ),
    "quarantine": Entry(
        "closedloop.cli.report",
        "List records the APIs sent that could not be used, with the reason, instead of losing them.",
    ),
    "roi": Entry(
        "closedloop.cli.roi",
        "Cost per lead, per opportunity, CAC, ROAS, ROI and funnel rates per channel or campaign.",
    ),
    "mapping": Entry(
        "closedloop.cli.mapping",
        "Check what the channel rules do before anything is written.",
    ),
    "serve": Entry(
        "closedloop.cli.serve",
        "Run the schedule from the config until SIGTERM; serves /healthz, /readyz and /metrics.",
    ),
}


class _Listed(TyperCommand):
    """What help shows for a command not yet imported: its name and its line of help."""


def load_command(name: str) -> Any:
    """The real click command (or group) ``name``, importing its module now."""
    module = importlib.import_module(COMMANDS[name].module)
    root = typer.Typer()
    root.callback()(_no_options)
    module.register(root)
    group = typer.main.get_command(root)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _no_options() -> None:
    """Makes ``root`` a group, so each command keeps its own name."""


class LazyGroup(TyperGroup):
    """Lists the table without imports; resolves a command by importing its module."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in COMMANDS:
            return _Listed(cmd_name, help=COMMANDS[cmd_name].help)
        return found

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Listed) and name is not None:
            command = load_command(name)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        with guarded(lambda line: err.print(line, markup=False, highlight=False)):
            return super().invoke(ctx)


app = typer.Typer(
    name="closedloop",
    cls=LazyGroup,
    help="Closed-loop marketing attribution: GA4 sessions + CRM outcomes -> credit per channel, "
    "written back to the CRM.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold tokens; tracebacks must never show them
)


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
