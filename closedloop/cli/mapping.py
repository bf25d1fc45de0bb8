"""``closedloop mapping test`` and ``closedloop mapping explain``: the admin's view of the rules.

Both read only.  ``explain`` needs nothing but the mapping section, so it still works when the
CRM secrets of the config are not set in the admin's shell; ``test`` reads the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, load

if TYPE_CHECKING:
    from closedloop.config.mapping import MappingConfig

app = typer.Typer(help="Check what the channel rules do before anything is written.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="mapping")


def load_mapping(path: Path) -> MappingConfig:
    """The mapping section, validated with file:line errors; defaults when the file is absent.

    Problems outside the mapping section (an unset CRM secret, say) are mentioned, not fatal.
    """
    from pydantic import ValidationError

    from closedloop.config.loader import load_config
    from closedloop.config.mapping import MappingConfig
    from closedloop.errors import ConfigError, Problem

    if not path.exists():
        console.print(f"[dim]{path} not found: using the built-in mapping defaults[/dim]")
        return MappingConfig()
    try:
        return load_config(path).mapping
    except ConfigError as exc:
        mapping_problems = [p for p in exc.problems if p.field.startswith("mapping")]
        data = _yaml_mapping(path)
        if mapping_problems or data is None:
            raise ConfigError(mapping_problems or exc.problems) from None
        console.print(
            f"[yellow]{len(exc.problems)} problem(s) outside mapping: (run `closedloop config "
            "validate`); using the mapping section alone[/yellow]"
        )
        try:
            return MappingConfig.model_validate(data.get("mapping") or {})
        except ValidationError as invalid:  # the loader found no mapping problem; be brief
            raise ConfigError([Problem(str(path), None, "mapping", str(invalid))]) from None


def _yaml_mapping(path: Path) -> dict[str, object] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


@app.command("explain")
def explain_command(
    source: Annotated[str, typer.Option(help="utm_source / session source")] = "",
    medium: Annotated[str, typer.Option(help="utm_medium / session medium")] = "",
    campaign: Annotated[str, typer.Option()] = "",
    content: Annotated[str, typer.Option()] = "",
    term: Annotated[str, typer.Option()] = "",
    landing_page: Annotated[str, typer.Option("--landing-page")] = "",
    referrer: Annotated[str, typer.Option()] = "",
    click_id: Annotated[
        list[str] | None, typer.Option("--click-id", help="Kind present: gclid, fbclid, msclkid")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every failed check")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Which rule gives this touch its channel, and why the rules before it did not."""
    from closedloop.mapping.channels import ChannelMapper
    from closedloop.mapping.explain import render_explanation
    from closedloop.mapping.utm import RawTouch

    mapper = ChannelMapper.from_config(load_mapping(config))
    raw = RawTouch(
        source=source,
        medium=medium,
        campaign=campaign,
        content=content,
        term=term,
        landing_page=landing_page,
        referrer=referrer,
        click_ids=frozenset(click_id or ()),
    )
    console.print(render_explanation(mapper.explain(raw), verbose=verbose))


@app.command("test")
def test_command(
    config: ConfigOption = DEFAULT_CONFIG,
    top: Annotated[int, typer.Option(help="Unmapped combinations to list")] = 25,
) -> None:
    """Apply the rules to the sessions in the store: channels, gaps, rules that never match."""
    from closedloop.mapping.channels import ChannelMapper
    from closedloop.mapping.report import mapping_test_report, render_report
    from closedloop.report.mapping_rows import session_touches

    full = load(config)
    mapper = ChannelMapper.from_config(full.mapping)
    console.print(render_report(mapping_test_report(session_touches(full.store.url), mapper), top=top))
