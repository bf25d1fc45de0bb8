"""What every command shares: the consoles, the config option, loading it, progress, the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from closedloop.config.loader import ConfigError, load_config
from closedloop.config.models import Config

console = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for logs and grep

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path of the YAML config.", show_default=True)]
DEFAULT_CONFIG = Path("closedloop.yaml")


def load_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[bold red]The config cannot be used[/] ({len(exc.problems)} problem(s)):")
        for problem in exc.problems:
            where = escape(f"{problem.file}:{problem.line or '?'}")
            err.print(f"  [yellow]{where}[/]  [bold]{escape(problem.field or '(root)')}[/]  {escape(problem.message)}")
        raise typer.Exit(2) from None


@contextmanager
def progress_line(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step; silent when output is JSON or not a terminal."""
    if not enabled:
        yield lambda _msg: None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda msg: progress.update(task, description=msg)


def now() -> datetime:
    return datetime.now(UTC)
