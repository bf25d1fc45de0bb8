"""``closedloop sandbox serve``: the emulators on 127.0.0.1 for trying a config by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import console, now

app = typer.Typer(help="The built-in emulators of HubSpot and GA4, for trying configs.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="sandbox")



@app.command("serve")
def sandbox_serve(
    contacts: Annotated[int, typer.Option(min=10, help="Contacts in the synthetic company.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic company.")] = 7,
    hubspot_port: Annotated[int, typer.Option(help="Port of the HubSpot emulator (0: any free port).")] = 0,
    ga4_port: Annotated[int, typer.Option(help="Port of the GA4 emulator (0: any free port).")] = 0,
    config_out: Annotated[Path, typer.Option(help="Where to write a config pointing at the sandbox.")] = Path(
        "closedloop.sandbox.yaml"
    ),
    store: Annotated[str, typer.Option(help="Store URL written into that config.")] = "sqlite:///closedloop-sandbox.db",
) -> None:
    """Serve the HubSpot and GA4 emulators on 127.0.0.1 until Ctrl-C, for trying a config by hand."""
    import signal
    import threading

    from closedloop.sandbox.generator import generate_company
    from closedloop.sandbox.launch import SANDBOX_TOKEN, start_sandbox

    started = now()
    company = generate_company(contacts=contacts, seed=seed, now=started)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with start_sandbox(company, now=started, hubspot_port=hubspot_port, ga4_port=ga4_port) as sandbox:
        config_out.write_text(sandbox.config_yaml(store_url=store), encoding="utf-8")
        console.print(f"HubSpot emulator: {sandbox.hubspot.url}   (token: {SANDBOX_TOKEN})")
        console.print(f"GA4 emulator:     {sandbox.ga4.url}   (property {company.ga4_property_id})")
        console.print(f"Config written to {config_out}. In another shell:")
        console.print(f"  export CLOSEDLOOP_SANDBOX_TOKEN={SANDBOX_TOKEN}; closedloop run --config {config_out}")
        console.print("Ctrl-C to stop.")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    console.print("Sandbox stopped.")
