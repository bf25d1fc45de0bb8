"""``closedloop init``: a commented closedloop.yaml from a few answers, and the email-hash key.

Asks for the CRM, the GA4 property, the client-id custom dimension, the store and how secrets
are supplied (environment variables or files), or takes them all from flags with
``--non-interactive``.  The file it writes passes ``closedloop config validate`` once the
secrets it names exist; ``closedloop doctor`` then checks them against the services.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import console
from closedloop.errors import UsageError


def register(parent: typer.Typer) -> None:
    parent.command("init")(init)


def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the config.")] = Path(
        "closedloop.yaml"
    ),
    crm: Annotated[str | None, typer.Option(help="hubspot or salesforce.")] = None,
    ga4_property: Annotated[str | None, typer.Option(help="Numeric GA4 property id.")] = None,
    client_id_dimension: Annotated[
        str | None, typer.Option(help="GA4 custom dimension holding the client id.")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Store URL: sqlite:///file.db or postgresql://...")] = None,
    secrets: Annotated[str | None, typer.Option(help="How secrets are given: env (variables) or file.")] = None,
    secrets_dir: Annotated[
        str, typer.Option(help="Folder of secret files (with --secrets file).")
    ] = "/run/secrets",
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", "--yes", "-y", help="Ask nothing; take flags or defaults.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented config by asking a few questions (or from flags), and the email-hash key."""
    from closedloop.cli.init_template import Answers, render_config

    if output.exists() and not force:
        raise UsageError(f"{output} exists; use --force to overwrite it", "--output")
    ask = not non_interactive

    def pick(value: str | None, question: str, default: str, choices: tuple[str, ...] = ()) -> str:
        if value is None and ask:
            value = typer.prompt(question + (f" ({'/'.join(choices)})" if choices else ""), default=default)
        value = default if value is None else value.strip()
        if choices and value not in choices:
            raise UsageError(f"{value!r}; use one of {', '.join(choices)}", f"--{question.split()[0].lower()}")
        return value

    answers = Answers(
        crm=pick(crm, "CRM", "hubspot", ("hubspot", "salesforce")),
        ga4_property=pick(ga4_property, "GA4 property id (numeric; empty: no GA4)", ""),
        client_id_dimension=pick(client_id_dimension, "GA4 client-id custom dimension", "customUser:ga_client_id"),
        store=pick(store, "Store URL", "sqlite:///closedloop.db"),
        secrets=pick(secrets, "Secrets from", "env", ("env", "file")),
        secrets_dir=secrets_dir,
        hash_key_file=str(output.parent / "closedloop.hash_key"),
    )
    if answers.ga4_property and not answers.ga4_property.isdigit():
        raise UsageError(f"{answers.ga4_property!r} is not a numeric property id", "--ga4-property")
    text = render_config(answers)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"Wrote {output}.")
    _hash_key(answers.hash_key_file)
    for line in next_steps(answers, output):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _hash_key(path: str) -> None:
    from closedloop.config.hashkey import ensure_hash_key

    existed = Path(path).exists()
    ensure_hash_key(path)
    console.print(
        f"{'Kept the existing' if existed else 'Created the'} email-hash key {path} "
        "(back it up; every replica needs the same key).",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def next_steps(answers: object, output: Path) -> list[str]:
    from closedloop.cli.init_template import Answers, secret_names

    assert isinstance(answers, Answers)
    lines = ["Next:"]
    for name, where in secret_names(answers):
        lines.append(f"  provide {name}: {where}")
    lines.append(f"  closedloop config validate --config {output}")
    lines.append(f"  closedloop doctor --config {output}")
    return lines
