"""`python -m closedloop` is the `closedloop` command."""

from closedloop.cli import entrypoint

entrypoint()
