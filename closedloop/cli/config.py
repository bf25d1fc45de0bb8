"""``closedloop config validate`` and ``config schema``: check the YAML, export its JSON Schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, load

app = typer.Typer(help="Check the YAML config and export its JSON Schema.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="config")



@app.command("validate")
def config_validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check the config; every problem is listed with file, line and field."""
    cfg = load(config)
    console.print(
        f"[green]{config}: valid.[/] CRM {cfg.crm}; store {cfg.store.url.split('://')[0]}; "
        f"models {', '.join(cfg.attribution.models)}"
    )


@app.command("schema")
def config_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the JSON Schema of the whole config, for editors to validate and autocomplete the YAML."""
    from closedloop.config.models import Config

    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "closedloop config"
    text = json.dumps(schema, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {output}")
