"""What every command shares: the consoles, the config option, progress, the clock.

Loading the config is ``closedloop.config.loader.load_config``; a ``ConfigError`` it raises is
printed and mapped to its exit code once, in ``closedloop.cli.errors``, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from closedloop.cli.progress import ProgressSink
    from closedloop.config.models import Config

console = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for logs and grep

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path of the YAML config.", show_default=True)]
DEFAULT_CONFIG = Path("closedloop.yaml")


def load(path: Path, *, check_files: bool = True) -> Config:
    """The validated config, every file it names readable; a ``ConfigError`` goes up to the error table."""
    from closedloop.config.loader import load_config

    return load_config(path, check_files=check_files)


@contextmanager
def progress_line(enabled: bool) -> Iterator[ProgressSink]:
    """Bars with counts, rate and ETA on a terminal; periodic plain lines on stderr otherwise
    (piped, ``docker exec``, a log file); nothing when ``enabled`` is False (JSON output)."""
    if not enabled:
        yield lambda _msg, _step=None: None
        return
    from closedloop.cli.progress import bars, log_lines

    with (bars if err.is_terminal else log_lines)(err) as report:
        yield report


def now() -> datetime:
    return datetime.now(UTC)
