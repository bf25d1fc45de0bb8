"""The ``closedloop`` command table, and the top-level help drawn from it without typer.

``COMMANDS`` names each command's module and a one-line help; ``closedloop --help`` renders the
table without importing typer or any command module (``closedloop.cli.help`` draws it), and a
command's module is imported only when that command runs (pip's command table is the model).
The typer app that runs commands is ``closedloop.cli.application``; ``app`` here resolves to it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closedloop.cli.application import app as app

ABOUT = (
    "Closed-loop marketing attribution: GA4 sessions + CRM outcomes -> credit per channel, "
    "written back to the CRM."
)
VERSION_HELP = "Print the version and exit."


@dataclass(frozen=True, slots=True)
class Entry:
    module: str  # its ``register(parent)`` adds the command (or group) to a typer app
    help: str


COMMANDS: dict[str, Entry] = {
    "demo": Entry(
        "closedloop.cli.demo",
        "Run the whole loop against the built-in sandbox on SQLite and show what it found and wrote.",
    ),
    "run": Entry(
        "closedloop.cli.run",
        "One real run: pull since the cursors, rebuild, write back what changed, record the run.",
    ),
    "writeback": Entry(
        "closedloop.cli.run",
        "Write closedloop's properties to the CRM (only changed values), or preview them with --dry-run.",
    ),
    "config": Entry(
        "closedloop.cli.config",
        "Check the YAML config and export its JSON Schema.",
    ),
    "crm": Entry(
        "closedloop.cli.crm",
        "Check the CRM side: closedloop's properties (HubSpot) or fields (Salesforce); create them.",
    ),
    "sandbox": Entry(
        "closedloop.cli.sandbox",
        "The built-in emulators of HubSpot, Salesforce and GA4, for trying configs.",
    ),
    "attribute": Entry(
        "closedloop.cli.attribute",
        "Credit conversions and value to channels under one model or all of them.",
    ),
    "report": Entry(
        "closedloop.cli.report",
        "The funnel, revenue under every model, ROI, trend, landing pages and coverage, from the store.",
    ),
    "runs": Entry(
        "closedloop.cli.report",
        "List recent runs: duration, records pulled, changes, writes, failures, API calls.",
    ),
    "quarantine": Entry(
        "closedloop.cli.report",
        "List records the APIs sent that could not be used, with the reason, instead of losing them.",
    ),
    "roi": Entry(
        "closedloop.cli.roi",
        "Cost per lead, per opportunity, CAC, ROAS, ROI and funnel rates per channel or campaign.",
    ),
    "mapping": Entry(
        "closedloop.cli.mapping",
        "Check what the channel rules do before anything is written.",
    ),
    "init": Entry(
        "closedloop.cli.init",
        "Write a commented config by asking a few questions (or from flags), and the email-hash key.",
    ),
    "forget": Entry(
        "closedloop.cli.forget",
        "Erase one person from the store (--email or --contact-id) and list what was removed per table.",
    ),
    "doctor": Entry(
        "closedloop.cli.doctor",
        "Check a config against the real services: secrets, HubSpot scopes and properties, GA4, store.",
    ),
    "serve": Entry(
        "closedloop.cli.serve",
        "Run the schedule from the config until SIGTERM; serves /healthz, /readyz and /metrics.",
    ),
}


def top_level_help() -> str:
    """What ``closedloop --help`` prints: typer's layout, the table's lines, no imports."""
    from closedloop.cli.help import screen

    options = [("--version", VERSION_HELP), ("--help", "Show this message and exit.")]
    commands = [(name, entry.help) for name, entry in COMMANDS.items()]
    return screen(
        "closedloop [OPTIONS] COMMAND [ARGS]...",
        ABOUT + " Start with `closedloop demo`, or `closedloop init` for your own accounts.",
        [("Options", options), ("Commands", commands)],
    )


def __getattr__(name: str) -> Any:
    if name == "app":
        from closedloop.cli.application import app

        return app
    raise AttributeError(name)
