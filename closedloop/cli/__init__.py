"""The face: every typer command, and nothing else.

A command parses its options, calls one function of a part and renders what comes back.  Each
command module imports the parts it needs only inside its command, and ``closedloop.cli.main``
imports a command module only when that command runs, so ``closedloop --help`` loads neither
SQLAlchemy nor any part.  This package's own import loads nothing at all (``app`` is resolved
on first use), so ``python -m closedloop.cli.attribute`` stays as fast as the benchmark needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.cli.main import app as app


def entrypoint() -> None:
    """The console script ``closedloop``."""
    from closedloop.cli.main import app

    app(prog_name="closedloop")


def __getattr__(name: str) -> Any:
    if name == "app":
        from closedloop.cli.main import app

        return app
    raise AttributeError(name)
