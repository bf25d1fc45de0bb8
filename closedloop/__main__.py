"""`python -m closedloop` is the `closedloop` command."""

from closedloop.cli import app

app(prog_name="closedloop")
