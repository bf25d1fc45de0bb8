"""The typer app behind ``closedloop``: the lazy group over ``closedloop.cli.main.COMMANDS``.

A command's module is imported only when that command runs, and every command runs inside
``closedloop.cli.errors.guarded``.  ``closedloop --help`` and ``closedloop attribute`` usually
never get here (``closedloop.cli.entrypoint`` answers them without typer); this app serves every
other command line and the tests that drive typer directly.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from closedloop import __version__
from closedloop.cli.console import console, err
from closedloop.cli.errors import guarded
from closedloop.cli.main import ABOUT, COMMANDS, VERSION_HELP


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
    help=ABOUT,
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
        bool, typer.Option("--version", callback=_version, is_eager=True, help=VERSION_HELP)
    ] = False,
) -> None:
    """closedloop pulls, maps, attributes and writes back. Start with `closedloop demo`."""
