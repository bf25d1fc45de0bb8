"""What every command shares: the consoles, the config option, progress, the clock.

Loading the config is ``closedloop.config.loader.load_config``; a ``ConfigError`` it raises is
printed and mapped to its exit code once, in ``closedloop.cli.errors``, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from closedloop.config.models import Config

console = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for logs and grep

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path of the YAML config.", show_default=True)]
DEFAULT_CONFIG = Path("closedloop.yaml")


def load(path: Path) -> Config:
    """The validated config; a ``ConfigError`` goes up to the error table."""
    from closedloop.config.loader import load_config

    return load_config(path)


@contextmanager
def progress_line(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step; silent when output is JSON or not a terminal."""
    if not enabled:
        yield lambda _msg: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda msg: progress.update(task, description=msg)


def now() -> datetime:
    return datetime.now(UTC)
