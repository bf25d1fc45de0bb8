"""`closedloop mapping test` and `closedloop mapping explain`: the admin's view of the rules.

Both read only.  `explain` needs nothing but the mapping section, so it still works when the
CRM secrets of the config are not set in the admin's shell; `test` reads the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from closedloop.config.mapping import MappingConfig
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.explain import render_explanation
from closedloop.mapping.identity import IdentityGraph, IdentityKey
from closedloop.mapping.report import mapping_test_report, render_report
from closedloop.mapping.utm import RawTouch

DEFAULT_CONFIG = "closedloop.yaml"
ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="closedloop.yaml; built-in defaults if absent"),
]


def register(app: typer.Typer) -> None:
    mapping_app = typer.Typer(help="Check what the channel rules do before anything is written.")
    mapping_app.command("explain")(explain_command)
    mapping_app.command("test")(test_command)
    app.add_typer(mapping_app, name="mapping")


def load_mapping(path: Path, console: Console) -> MappingConfig:
    """The mapping section, validated with file:line errors; defaults when the file is absent."""
    from closedloop.config.loader import ConfigError, load_config

    if not path.exists():
        console.print(f"[dim]{path} not found: using the built-in mapping defaults[/dim]")
        return MappingConfig()
    try:
        return load_config(path).mapping
    except ConfigError as exc:
        mapping_problems = [p for p in exc.problems if p.field.startswith("mapping")]
        if mapping_problems or not _has_yaml_mapping(path):
            for problem in mapping_problems or exc.problems:
                _say_problem(console, problem)
            raise typer.Exit(2) from None
        console.print(
            f"[yellow]{len(exc.problems)} problem(s) outside mapping: (run `closedloop config "
            "validate`); using the mapping section alone[/yellow]"
        )
        return _mapping_only(path, console)


def _say_problem(console: Console, problem: object) -> None:
    # One line per problem, never wrapped or parsed as markup: paths contain '[0]'.
    console.print(str(problem), style="red", markup=False, highlight=False, soft_wrap=True)


def _has_yaml_mapping(path: Path) -> bool:
    try:
        return isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)
    except (OSError, yaml.YAMLError):
        return False


def _mapping_only(path: Path, console: Console) -> MappingConfig:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return MappingConfig.model_validate(data.get("mapping") or {})
    except ValidationError as exc:  # already reported with lines by the loader; be brief
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every failed check")
    ] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG),
) -> None:
    """Which rule gives this touch its channel, and why the rules before it did not."""
    console = Console()
    mapper = ChannelMapper.from_config(load_mapping(config, console))
    raw = RawTouch(
        source=source, medium=medium, campaign=campaign, content=content, term=term,
        landing_page=landing_page, referrer=referrer, click_ids=frozenset(click_id or ()),
    )
    console.print(render_explanation(mapper.explain(raw), verbose=verbose))


def test_command(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    top: Annotated[int, typer.Option(help="Unmapped combinations to list")] = 25,
) -> None:
    """Apply the rules to the sessions in the store: channels, gaps, rules that never match."""
    from closedloop.config.loader import ConfigError, load_config

    console = Console()
    try:
        full = load_config(config)
    except ConfigError as exc:
        for problem in exc.problems:
            _say_problem(console, problem)
        raise typer.Exit(2) from None
    mapper = ChannelMapper.from_config(full.mapping)
    report = mapping_test_report(_store_rows(full.store.url), mapper)
    console.print(render_report(report, top=top))


def _store_rows(url: str) -> Iterator[tuple[RawTouch, int, str | None]]:
    """Sessions grouped by client and UTMs, each tied to its contact through the client id."""
    from sqlalchemy import Table, func, select
    from sqlmodel import Session

    from closedloop.store import models as m
    from closedloop.store.engine import make_engine

    identities: Table = m.ContactIdentity.__table__  # type: ignore[attr-defined]
    contacts: Table = m.Contact.__table__  # type: ignore[attr-defined]
    sessions: Table = m.WebSession.__table__  # type: ignore[attr-defined]
    engine = make_engine(url)
    with Session(engine) as session:
        keys = [
            (cid, IdentityKey(kind, value)) for kind, value, cid in session.execute(
                select(identities.c.kind, identities.c.value, identities.c.contact_id))
        ]
        merges = [
            (cid, into) for cid, into in session.execute(
                select(contacts.c.id, contacts.c.merged_into).where(
                    contacts.c.merged_into.is_not(None)))
        ]
        graph = IdentityGraph.build(keys, merges)
        grouping = (sessions.c.client_id, sessions.c.source, sessions.c.medium,
                    sessions.c.campaign, sessions.c.landing_page)
        stmt = select(*grouping, func.sum(sessions.c.sessions)).group_by(*grouping)
        for client_id, source, medium, campaign, landing_page, count in session.execute(
            stmt.execution_options(yield_per=10_000)
        ):
            raw = RawTouch(source=source or "", medium=medium or "", campaign=campaign or "",
                           landing_page=landing_page or "")
            yield raw, int(count or 0), graph.resolve(IdentityKey("ga_client_id", client_id))
