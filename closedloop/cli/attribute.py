"""``closedloop attribute PATHS.csv``: any model over an analyst's own path data.

Also runnable alone (``python -m closedloop.attribution.command``), which is how the benchmark
times the whole process from reading the CSV to printing.  Run alone, a plain command line
(one file, known options) skips typer altogether, and ``markov_1``..``markov_4`` without
``--config`` skip the settings (pydantic): those imports cost a fifth of a million-journey
run.  Anything else (``--help``, a typo, a bad value) goes to typer, so help and usage errors
look the same either way.

No ``from __future__ import annotations`` here: typer reads the annotations of the command
built in ``_typer_command``, where ``typer`` is a local name.
"""

import csv
import io
import json
import os
import sys

if __name__ == "__main__":
    # Before numpy loads: the Markov solves are tiny, and starting OpenBLAS's thread pool takes
    # longer than any of them (and forking a worker is safer without those threads).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from closedloop.attribution.names import MARKOV_MODEL_NAMES
from closedloop.attribution.pathfile import PathFileError, read_path_file
from closedloop.attribution.pathfile_fast import (
    DEFAULT_CONVERSIONS_COLUMN,
    DEFAULT_PATH_COLUMN,
    DEFAULT_SEPARATOR,
    PathColumns,
)

if TYPE_CHECKING:
    import typer

    from closedloop.attribution.batch import FloatArray
    from closedloop.config.attribution import AttributionConfig

FORMATS = ("table", "csv", "json")
# Markov models whose only setting, the order, is in their name.
_ORDER_IN_NAME = tuple(name for name in MARKOV_MODEL_NAMES if name != "markov")


class UsageError(ValueError):
    """A bad option value; ``param_hint`` names the option as the command line spells it."""

    def __init__(self, message: str, param_hint: str) -> None:
        super().__init__(message)
        self.param_hint = param_hint


class Credits(Protocol):
    @property
    def model(self) -> str: ...
    @property
    def channel_names(self) -> tuple[str, ...]: ...
    @property
    def conversions(self) -> "FloatArray": ...
    @property
    def value(self) -> "FloatArray": ...


@dataclass(frozen=True, slots=True)
class AttributeRequest:
    """One ``attribute`` invocation, as parsed from the command line."""

    paths_file: Path
    model: str = "markov"
    output_format: str = "table"
    columns: PathColumns = field(default_factory=PathColumns)
    separator: str = DEFAULT_SEPARATOR
    config_file: Path | None = None


@dataclass(frozen=True, slots=True)
class _MarkovCredits:
    model: str
    channel_names: tuple[str, ...]
    conversions: "FloatArray"
    value: "FloatArray"


def run_attribute(request: AttributeRequest) -> str:
    """The rendered credits; raises ``UsageError`` for bad options, ``PathFileError`` for bad data."""
    if request.output_format not in FORMATS:
        raise UsageError(f"{request.output_format!r}; use one of {', '.join(FORMATS)}", "--format")
    if request.config_file is None and request.model in _ORDER_IN_NAME:
        from closedloop.attribution.markov import markov_attribution

        # Direct channels and step days shape only heuristics, so the defaults are harmless.
        markov = markov_attribution(_read(request), int(request.model.rsplit("_", 1)[1]))
        credits = _MarkovCredits(request.model, markov.channel_names, markov.conversions, markov.value)
        return render([credits_as_dict(credits)], request.output_format, many=False)
    config = _load_config(request.config_file)
    valid = config.model_names()
    if request.model != "all" and request.model not in valid:
        raise UsageError(f"unknown model {request.model!r}; valid: all, {', '.join(valid)}", "--model")
    batch = _read(request, config)
    from closedloop.attribution.registry import channel_credits

    names = list(valid) if request.model == "all" else [request.model]
    results = [credits_as_dict(channel_credits(name, batch, config)) for name in names]
    return render(results, request.output_format, many=request.model == "all")


def _read(request: AttributeRequest, config: "AttributionConfig | None" = None) -> Any:
    settings: dict[str, Any] = {}
    if config is not None:
        settings = {"direct_channels": config.direct_channels, "step_days": config.path_step_days}
    return read_path_file(request.paths_file, columns=request.columns, separator=request.separator, **settings)


def _load_config(file: Path | None) -> "AttributionConfig":
    """An attribution YAML: either the attribution section alone or a file with ``attribution:``."""
    from pydantic import ValidationError

    from closedloop.config.attribution import AttributionConfig

    if file is None:
        return AttributionConfig()
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{file}: {error}", "--config") from None
    if isinstance(data, dict) and isinstance(data.get("attribution"), dict):
        data = data["attribution"]
    try:
        return AttributionConfig.model_validate(data)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or '(root)'}: {item['msg']}" for item in error.errors()
        )
        raise UsageError(f"{file}: {details}", "--config") from None


def credits_as_dict(credits: Credits) -> dict[str, Any]:
    order = sorted(range(len(credits.channel_names)), key=credits.channel_names.__getitem__)
    return {
        "model": credits.model,
        "channels": {
            credits.channel_names[code]: {
                "conversions": float(credits.conversions[code]),
                "value": float(credits.value[code]),
            }
            for code in order
        },
    }


def render(results: list[dict[str, Any]], output_format: str, *, many: bool) -> str:
    if output_format == "json":
        return json.dumps(results if many else results[0], indent=2)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["model", "channel", "conversions", "value"])
        for result in results:
            for channel, figures in result["channels"].items():
                writer.writerow([result["model"], channel, repr(figures["conversions"]), repr(figures["value"])])
        return buffer.getvalue().rstrip("\n")
    return _render_table(results)


def _render_table(results: list[dict[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    for result in results:
        table = Table(title=f"model: {result['model']}")
        table.add_column("channel")
        table.add_column("conversions", justify="right")
        table.add_column("value", justify="right")
        for channel, figures in result["channels"].items():
            table.add_row(channel, f"{figures['conversions']:,.2f}", f"{figures['value']:,.2f}")
        console.print(table)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue().rstrip("\n")


def _typer_command() -> Callable[..., None]:
    import typer

    def attribute(
        paths_file: Annotated[Path, typer.Argument(help="Path-level CSV (channelattribution format)")],
        model: Annotated[str, typer.Option("--model", "-m", help="A model name, or 'all'")] = "markov",
        output_format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
        path_column: Annotated[str, typer.Option(help="Column of the paths")] = DEFAULT_PATH_COLUMN,
        conversions_column: Annotated[
            str, typer.Option(help="Column of conversions per path")
        ] = DEFAULT_CONVERSIONS_COLUMN,
        value_column: Annotated[
            str | None, typer.Option(help="Column of conversion value [total_conversion_value]")
        ] = None,
        null_column: Annotated[
            str | None, typer.Option(help="Column of non-converting journeys [total_null]")
        ] = None,
        separator: Annotated[str, typer.Option(help="Channel separator in a path")] = DEFAULT_SEPARATOR,
        config_file: Annotated[
            Path | None, typer.Option("--config", help="YAML with the attribution settings")
        ] = None,
    ) -> None:
        """Credit conversions and value to channels under one model or all of them."""
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
            raise typer.BadParameter(str(error), param_hint=error.param_hint) from None
        except PathFileError as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(output)

    return attribute


def register(app: "typer.Typer") -> None:
    """Add the ``attribute`` command to the main app."""
    app.command("attribute")(_typer_command())


def standalone_app() -> "typer.Typer":
    import typer

    app = typer.Typer(add_completion=False)
    app.command()(_typer_command())
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


def main(argv: Sequence[str]) -> int:
    """Exit status of the standalone command."""
    request = parse_plain_command_line(argv)
    if request is not None:
        try:
            output = run_attribute(request)
        except PathFileError as error:
            sys.stderr.write(f"Error: {error}\n")
            return 1
        except UsageError:
            pass  # typer words it
        else:
            sys.stdout.write(output + "\n")
            return 0
    standalone_app()(list(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
