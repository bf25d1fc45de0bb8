"""``closedloop sandbox serve``: the emulators on 127.0.0.1 for trying a config by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from closedloop.cli.console import console, now

app = typer.Typer(
    help="The built-in emulators of HubSpot, Salesforce and GA4, for trying configs.", no_args_is_help=True
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="sandbox")


@app.command("serve")
def sandbox_serve(
    contacts: Annotated[int, typer.Option(min=10, help="Contacts in the synthetic company.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic company.")] = 7,
    hubspot_port: Annotated[
        int, typer.Option(help="Port of the CRM emulator, HubSpot or Salesforce (0: any free port).")
    ] = 0,
    ga4_port: Annotated[int, typer.Option(help="Port of the GA4 emulator (0: any free port).")] = 0,
    config_out: Annotated[Path, typer.Option(help="Where to write a config pointing at the sandbox.")] = Path(
        "closedloop.sandbox.yaml"
    ),
    store: Annotated[str, typer.Option(help="Store URL written into that config.")] = "sqlite:///closedloop-sandbox.db",
    crm: Annotated[str, typer.Option(help="The emulated CRM: hubspot or salesforce.")] = "hubspot",
) -> None:
    """Serve the CRM (HubSpot or Salesforce) and GA4 emulators on 127.0.0.1 until Ctrl-C, for trying a config."""
    import signal
    import threading

    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import SANDBOX_TOKEN, start_sandbox

    if crm not in ("hubspot", "salesforce"):
        raise typer.BadParameter("--crm must be hubspot or salesforce")
    started = now()
    company = generate_company(contacts=contacts, seed=seed, now=started)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if crm == "salesforce":
        from closedloop.sandbox.launch_salesforce import start_salesforce_sandbox

        with start_salesforce_sandbox(company, now=started, salesforce_port=hubspot_port, ga4_port=ga4_port) as org:
            config_out.write_text(org.config_yaml(store_url=store), encoding="utf-8")
            console.print(f"Salesforce emulator: {org.salesforce.url}   (JWT bearer, CA {org.salesforce.ca_file})")
            console.print(f"GA4 emulator:        {org.ga4.url}   (property {company.ga4_property_id})")
            console.print(f"Config written to {config_out}. In another shell:")
            console.print(f"  closedloop run --config {config_out}")
            _wait(stop)
    else:
        with start_sandbox(company, now=started, hubspot_port=hubspot_port, ga4_port=ga4_port) as sandbox:
            config_out.write_text(sandbox.config_yaml(store_url=store), encoding="utf-8")
            console.print(f"HubSpot emulator: {sandbox.hubspot.url}   (token: {SANDBOX_TOKEN})")
            console.print(f"GA4 emulator:     {sandbox.ga4.url}   (property {company.ga4_property_id})")
            console.print(f"Config written to {config_out}. In another shell:")
            console.print(f"  export CLOSEDLOOP_SANDBOX_TOKEN={SANDBOX_TOKEN}; closedloop run --config {config_out}")
            _wait(stop)
    console.print("Sandbox stopped.")


def _wait(stop: Any) -> None:
    console.print("Ctrl-C to stop.")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
