"""``closedloop forget``: erase one person from the store on request, and say what was removed."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from closedloop.cli.console import DEFAULT_CONFIG, ConfigOption, console, load


def register(parent: typer.Typer) -> None:
    parent.command()(forget)


def forget(
    email: Annotated[
        str | None, typer.Option("--email", help="The person's email address (hashed, never stored).")
    ] = None,
    contact_id: Annotated[
        list[str] | None, typer.Option("--contact-id", help="A CRM contact id; repeat for several.")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Purge one person (their contacts, identities, sessions, touchpoints, credits, write-back state)."""
    from closedloop.config.hashkey import resolve_hash_key
    from closedloop.connectors.hashing import hash_email
    from closedloop.store.engine import open_store
    from closedloop.store.purge import forget_person

    if not email and not contact_id:
        raise typer.BadParameter("give --email or --contact-id", param_hint="--email")
    if email is not None and "@" not in email:
        raise typer.BadParameter("not an email address", param_hint="--email")
    cfg = load(config)
    digest = hash_email(email, resolve_hash_key(cfg.privacy.hash_key_file)) if email else None
    engine = open_store(cfg.store.url)
    try:
        result = forget_person(engine, email_hash=digest, contact_ids=contact_id or ())
    finally:
        engine.dispose()
    if as_json:
        out = {"contact_ids": result.contact_ids, "removed": result.removed, "total": sum(result.removed.values())}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    if not result.removed:
        console.print("Nobody matching that was found in the store; nothing was removed.")
        return
    found = ", ".join(result.contact_ids) or "(no contact row; identities only)"
    console.print(f"Forgot contact(s) {found}. Rows removed:")
    for table, count in result.removed.items():
        console.print(f"  {table:<20} {count:>8,}")
    console.print("Delete the person in the CRM too, or the next run pulls them back.")
