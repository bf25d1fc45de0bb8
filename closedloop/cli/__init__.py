"""The face: every typer command, and nothing else.

A command parses its options, calls one function of a part and renders what comes back.  Each
command module imports the parts it needs only inside its command, and the typer app
(``closedloop.cli.application``) imports a command module only when that command runs.  This package's
own import loads nothing at all (``app`` is resolved on first use).

``entrypoint`` answers the command lines people type most without typer: ``closedloop``,
``--help`` and ``--version`` from the command table, and ``closedloop attribute ...`` through
``closedloop.cli.attribute.main`` (a plain command line skips typer; anything odd falls back to
it).  Typer, click and rich cost a tenth of a second or more before the first line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.cli.application import app as app


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """The console script ``closedloop`` (and ``python -m closedloop``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args == ["--help"]:
        from closedloop.cli.main import top_level_help

        sys.stdout.write(top_level_help())
        # typer exits 2 when no command is given (no_args_is_help); keep that for scripts.
        raise SystemExit(0 if args else 2)
    if args == ["--version"]:
        from closedloop import __version__

        sys.stdout.write(f"closedloop {__version__}\n")
        raise SystemExit(0)
    if args[0] == "attribute":
        # Before numpy loads: the Markov solves are tiny, and starting OpenBLAS's thread pool
        # takes longer than any of them.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from closedloop.cli.attribute import main

        raise SystemExit(main(args[1:], prog_name="closedloop attribute"))
    from closedloop.cli.application import app

    app(args, prog_name="closedloop")


def __getattr__(name: str) -> Any:
    if name == "app":
        from closedloop.cli.application import app

        return app
    raise AttributeError(name)
