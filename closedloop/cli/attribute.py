"""``closedloop attribute PATHS.csv``: any model over an analyst's own path data.

Also runnable alone (``python -m closedloop.cli.attribute``), which is how the benchmark times
the whole process from reading the CSV to printing.  Run alone, a plain command line (one file,
known options) skips typer altogether, and ``markov_1``..``markov_4`` without ``--config`` skip
the settings (pydantic): those imports cost a fifth of a million-journey run.  ``--help`` is
drawn by ``closedloop.cli.help`` in typer's layout; anything else (a typo, a bad value) goes to
typer, so usage errors look the same either way.  So this module imports neither typer, rich,
pydantic nor numpy at the top (``closedloop attribute`` comes here from
``closedloop.cli.entrypoint`` without typer too).

No ``from __future__ import annotations`` here: typer reads the annotations of the command
built in ``_typer_command``, where ``typer`` is a local name.
"""

import os
import sys

if __name__ == "__main__":
    # Before numpy loads: the Markov solves are tiny, and starting OpenBLAS's thread pool takes
    # longer than any of them (and forking a worker is safer without those threads).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

from closedloop.errors import ClosedloopError, UsageError

if TYPE_CHECKING:
    import typer

    from closedloop.files.pathfile_fast import PathColumns

# closedloop.files.pathfile_fast's defaults, written out so help needs no numpy (a unit
# test keeps them equal).
DEFAULT_PATH_COLUMN = "path"
DEFAULT_CONVERSIONS_COLUMN = "total_conversions"
DEFAULT_SEPARATOR = " > "

ABOUT = "Credit conversions and value to channels under one model or all of them."
HELP = {
    "paths_file": "Path-level CSV (channelattribution format)",
    "model": "A model name, or 'all'",
    "format": "table, csv or json",
    "path_column": "Column of the paths",
    "conversions_column": "Column of conversions per path",
    "value_column": "Column of conversion value [total_conversion_value]",
    "null_column": "Column of non-converting journeys [total_null]",
    "separator": "Channel separator in a path",
    "config": "YAML with the attribution settings",
}


class AttributeRequest(NamedTuple):
    """One ``attribute`` invocation, as parsed from the command line (a tuple: no dataclasses
    import on the way to the first line)."""

    paths_file: Path
    model: str = "markov"
    output_format: str = "table"
    columns: "PathColumns | None" = None  # None: the defaults
    separator: str = DEFAULT_SEPARATOR
    config_file: Path | None = None


def run_attribute(request: AttributeRequest) -> str:
    """The rendered credits; raises ``UsageError`` for bad options, ``PathFileError`` for bad
    data and ``ConfigError`` for a bad ``--config``."""
    from closedloop.files.pathfile import path_file_credits
    from closedloop.report.credits import FORMATS, render_credits

    if request.output_format not in FORMATS:
        raise UsageError(f"{request.output_format!r}; use one of {', '.join(FORMATS)}", "--format")
    config = None
    if request.config_file is not None:
        from closedloop.config.loader import load_attribution_config

        config = load_attribution_config(request.config_file)
    results = path_file_credits(
        request.paths_file, request.model, config=config, columns=request.columns, separator=request.separator
    )
    return render_credits(results, request.output_format, many=request.model == "all")


def _typer_command() -> Callable[..., None]:
    import typer

    from closedloop.files.pathfile_fast import PathColumns

    def attribute(
        paths_file: Annotated[Path, typer.Argument(help=HELP["paths_file"])],
        model: Annotated[str, typer.Option("--model", "-m", help=HELP["model"])] = "markov",
        output_format: Annotated[str, typer.Option("--format", help=HELP["format"])] = "table",
        path_column: Annotated[str, typer.Option(help=HELP["path_column"])] = DEFAULT_PATH_COLUMN,
        conversions_column: Annotated[
            str, typer.Option(help=HELP["conversions_column"])
        ] = DEFAULT_CONVERSIONS_COLUMN,
        value_column: Annotated[
            str | None, typer.Option(help=HELP["value_column"])
        ] = None,
        null_column: Annotated[
            str | None, typer.Option(help=HELP["null_column"])
        ] = None,
        separator: Annotated[str, typer.Option(help=HELP["separator"])] = DEFAULT_SEPARATOR,
        config_file: Annotated[
            Path | None, typer.Option("--config", help=HELP["config"])
        ] = None,
    ) -> None:
        """Credit conversions and value to channels under one model or all of them."""  # = ABOUT
        request = AttributeRequest(
            paths_file=paths_file,
            model=model,
            output_format=output_format,
            columns=PathColumns(path_column, conversions_column, value_column, null_column),
            separator=separator,
            config_file=config_file,
        )
        try:
            output = run_attribute(request)
        except UsageError as error:
            if error.param_hint is None:  # a bad file (PathFileError): one line, as the standalone run says it
                raise typer.Exit(_report(error)) from None
            raise typer.BadParameter(str(error), param_hint=error.param_hint) from None
        typer.echo(output)

    return attribute


def register(parent: "typer.Typer") -> None:
    """Add the ``attribute`` command to ``parent``."""
    parent.command("attribute")(_typer_command())


def typer_app() -> "typer.Typer":
    """The command as a typer app of its own (the lazy table and the standalone run use it)."""
    import typer

    app = typer.Typer(add_completion=False)
    app.command("attribute")(_typer_command())
    return app


_OPTION_FIELDS = {
    "--model": "model",
    "-m": "model",
    "--format": "output_format",
    "--separator": "separator",
    "--config": "config_file",
    "--path-column": "path",
    "--conversions-column": "conversions",
    "--value-column": "value",
    "--null-column": "nulls",
}


def help_screen(prog_name: str = "closedloop attribute") -> str:
    """``--help``, in typer's layout without typer (the command's options, from ``HELP``)."""
    from closedloop.cli.help import screen

    arguments = [("PATHS_FILE", f"{HELP['paths_file']} [required]")]
    options = [
        ("--model, -m TEXT", f"{HELP['model']} [default: markov]"),
        ("--format TEXT", f"{HELP['format']} [default: table]"),
        ("--path-column TEXT", f"{HELP['path_column']} [default: {DEFAULT_PATH_COLUMN}]"),
        ("--conversions-column TEXT", f"{HELP['conversions_column']} [default: {DEFAULT_CONVERSIONS_COLUMN}]"),
        ("--value-column TEXT", HELP["value_column"]),
        ("--null-column TEXT", HELP["null_column"]),
        ("--separator TEXT", f"{HELP['separator']} [default: '{DEFAULT_SEPARATOR}']"),
        ("--config PATH", HELP["config"]),
        ("--help", "Show this message and exit."),
    ]
    return screen(f"{prog_name} [OPTIONS] PATHS_FILE", ABOUT, [("Arguments", arguments), ("Options", options)])


def parse_plain_command_line(argv: Sequence[str]) -> AttributeRequest | None:
    """The request of a command line with one file and only known ``--option value`` pairs.

    ``None`` for anything else, which typer then handles (and explains).
    """
    values: dict[str, str] = {}
    positional: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if not argument.startswith("-") or argument == "-":
            positional.append(argument)
            continue
        name, equals, inline = argument.partition("=") if argument.startswith("--") else (argument, "", "")
        if name not in _OPTION_FIELDS:
            return None
        value = inline if equals else next(arguments, None)
        if value is None:
            return None
        values[_OPTION_FIELDS[name]] = value
    if len(positional) != 1:
        return None
    config = values.get("config_file")
    from closedloop.files.pathfile_fast import PathColumns

    return AttributeRequest(
        paths_file=Path(positional[0]),
        model=values.get("model", "markov"),
        output_format=values.get("output_format", "table"),
        columns=PathColumns(
            values.get("path", DEFAULT_PATH_COLUMN),
            values.get("conversions", DEFAULT_CONVERSIONS_COLUMN),
            values.get("value"),
            values.get("nulls"),
        ),
        separator=values.get("separator", DEFAULT_SEPARATOR),
        config_file=None if config is None else Path(config),
    )


def main(argv: Sequence[str], prog_name: str = "attribute") -> int:
    """Exit status of the command (the same codes as typer's ``closedloop attribute``)."""
    if list(argv) == ["--help"]:
        sys.stdout.write(help_screen(prog_name))
        return 0
    request = parse_plain_command_line(argv)
    if request is not None:
        try:
            output = run_attribute(request)
        except UsageError as error:
            if error.param_hint is None:  # a bad file, not a bad option: say it here
                return _report(error)
            # typer words a bad option
        except ClosedloopError as error:
            return _report(error)
        else:
            sys.stdout.write(output + "\n")
            return 0
    from closedloop.cli.errors import run_guarded

    return run_guarded(lambda: typer_app()(list(argv), prog_name=prog_name))


def _report(error: ClosedloopError) -> int:
    from closedloop.cli.errors import exit_code, message_lines

    for line in message_lines(error):
        sys.stderr.write(line + "\n")
    return exit_code(error)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
