"""``closedloop attribute PATHS.csv``: any model over an analyst's own path data.

Also runnable alone (``python -m closedloop.attribution.command``), which is how the benchmark
times the whole process from reading the CSV to printing.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from closedloop.attribution.pathfile import (
    DEFAULT_CONVERSIONS_COLUMN,
    DEFAULT_PATH_COLUMN,
    DEFAULT_SEPARATOR,
    PathColumns,
    PathFileError,
    read_path_file,
)
from closedloop.attribution.registry import ChannelCredits, channel_credits
from closedloop.config.attribution import AttributionConfig

FORMATS = ("table", "csv", "json")


def _load_config(file: Path | None) -> AttributionConfig:
    """An attribution YAML: either the attribution section alone or a file with ``attribution:``."""
    if file is None:
        return AttributionConfig()
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise typer.BadParameter(f"{file}: {error}", param_hint="--config") from None
    if isinstance(data, dict) and isinstance(data.get("attribution"), dict):
        data = data["attribution"]
    try:
        return AttributionConfig.model_validate(data)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or '(root)'}: {item['msg']}"
            for item in error.errors()
        )
        raise typer.BadParameter(f"{file}: {details}", param_hint="--config") from None


def credits_as_dict(credits: ChannelCredits) -> dict[str, Any]:
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
                writer.writerow(
                    [result["model"], channel, repr(figures["conversions"]), repr(figures["value"])]
                )
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
    if output_format not in FORMATS:
        raise typer.BadParameter(
            f"{output_format!r}; use one of {', '.join(FORMATS)}", param_hint="--format"
        )
    config = _load_config(config_file)
    valid = config.model_names()
    if model != "all" and model not in valid:
        raise typer.BadParameter(
            f"unknown model {model!r}; valid: all, {', '.join(valid)}", param_hint="--model"
        )
    try:
        batch = read_path_file(
            paths_file,
            columns=PathColumns(
                path=path_column,
                conversions=conversions_column,
                value=value_column,
                nulls=null_column,
            ),
            separator=separator,
            direct_channels=config.direct_channels,
            step_days=config.path_step_days,
        )
    except PathFileError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None
    names = list(valid) if model == "all" else [model]
    results = [credits_as_dict(channel_credits(name, batch, config)) for name in names]
    typer.echo(render(results, output_format, many=model == "all"))


def register(app: typer.Typer) -> None:
    """Add the ``attribute`` command to the main app."""
    app.command("attribute")(attribute)


def standalone_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command()(attribute)
    return app


if __name__ == "__main__":
    standalone_app()(sys.argv[1:])
